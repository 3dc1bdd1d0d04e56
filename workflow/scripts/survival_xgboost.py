"""Survival task, step 3: XGBoost combined model and SHAP."""

import logging

from radiogenomics.core.provenance import from_snakemake
from radiogenomics.models.tasks import survival_xgboost_stage

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
survival_xgboost_stage(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    snakemake.params.settings,
    snakemake.wildcards.task,
    snakemake.params.seed,
)
from_snakemake(snakemake)
