"""Survival task, step 5: predictions.tsv and radscore.json from the steps' parts."""

import logging

from radiogenomics.core.provenance import from_snakemake
from radiogenomics.models.tasks import survival_predictions_stage

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
survival_predictions_stage(dict(snakemake.input.items()), dict(snakemake.output.items()))
from_snakemake(snakemake)
