"""Binary task: region sets x classifiers and a radscore with a locked cutoff."""

import logging

from radiogenomics.core.provenance import from_snakemake
from radiogenomics.models.tasks import binary_model_stage

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
binary_model_stage(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    snakemake.params.settings,
    snakemake.wildcards.task,
    snakemake.params.seed,
)
from_snakemake(snakemake)
