"""Survival task, step 2: Cox models, Schoenfeld test, stepwise AIC and nomogram."""

import logging

from radiogenomics.core.provenance import from_snakemake
from radiogenomics.models.tasks import survival_cox_stage

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
survival_cox_stage(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    snakemake.params.settings,
    snakemake.wildcards.task,
)
from_snakemake(snakemake)
