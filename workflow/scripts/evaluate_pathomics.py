"""Pathomics score evaluation: binary metrics and figures, subgroups, C-index, correlation."""

import logging

from radiogenomics.pathomics.stages import evaluate_stage
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
evaluate_stage(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    snakemake.params.evaluation,
    snakemake.params.task_settings,
    snakemake.params.seed,
)
from_snakemake(snakemake)
