"""Survival task, step 4: SSIGN / UISS comparator scores and their Cox models."""

import logging

from radiogenomics.core.provenance import from_snakemake
from radiogenomics.models.tasks import survival_comparators_stage

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
survival_comparators_stage(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    snakemake.params.settings,
    snakemake.wildcards.task,
)
from_snakemake(snakemake)
