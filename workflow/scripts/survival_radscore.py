"""Survival task, step 1: selection chain and LASSO-Cox radscore with its locked cutoff."""

import logging

from radiogenomics.core.provenance import from_snakemake
from radiogenomics.models.tasks import survival_radscore_stage

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
survival_radscore_stage(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    snakemake.params.settings,
    snakemake.wildcards.task,
    snakemake.params.seed,
)
from_snakemake(snakemake)
