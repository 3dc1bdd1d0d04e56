"""Survival task: radscore, Cox models, nomogram, XGBoost + SHAP, comparator scores."""

import logging

from radiogenomics.provenance import from_snakemake
from radiogenomics.tasks import survival_model_stage

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
survival_model_stage(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    snakemake.params.settings,
    snakemake.wildcards.task,
    snakemake.params.seed,
)
from_snakemake(snakemake)
