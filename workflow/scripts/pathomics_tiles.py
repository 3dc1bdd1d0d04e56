"""Tissue tiles of one slide: tiles.parquet, thumbnail and QC thumbnail (kept tiles drawn)."""

import logging

from radiogenomics.pathomics.stages import tiles_stage
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
tiles_stage(
    snakemake.wildcards.patient,
    snakemake.input.slide,
    dict(snakemake.output.items()),
    dict(snakemake.params.options),
)
from_snakemake(snakemake)
