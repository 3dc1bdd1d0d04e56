"""Synthetic runs: the radscore's C-index against the planted truth risk on the same patients."""

import logging

from radiogenomics.evaluation.stages import truth_stage
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
truth_stage(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    snakemake.params.evaluation,
    snakemake.params.task_settings,
    snakemake.params.seed,
)
from_snakemake(snakemake)
