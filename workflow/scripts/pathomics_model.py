"""Attention MIL (plain and gated) on the training slides, applied frozen to every slide."""

import logging

from radiogenomics.pathomics.stages import model_stage
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
model_stage(
    {key: snakemake.input[key] for key in ("clinical", "features", "tiles", "thumbnails")},
    dict(snakemake.output.items()),
    dict(snakemake.params.settings),
    list(snakemake.params.patients),
    snakemake.params.seed,
    snakemake.threads,
)
from_snakemake(snakemake)
