"""Survival task evaluation per cohort: metrics, C comparisons, KM, td-AUC, calibration, DCA."""

import logging

from radiogenomics.evaluation.stages import evaluate_survival_stage
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
evaluate_survival_stage(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    snakemake.params.evaluation,
    snakemake.params.task_settings,
    snakemake.wildcards.task,
    snakemake.params.seed,
)
from_snakemake(snakemake)
