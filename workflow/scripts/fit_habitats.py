"""Fit the population habitat model on training voxels; K by BIC; BIC table and figure."""

import logging

from radiogenomics.core.io import write_json, write_tsv
from radiogenomics.regions.habitats import bic_figure, bic_table, fit_habitat_model
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
model = fit_habitat_model(
    list(snakemake.input),
    snakemake.params.k_range,
    snakemake.params.seed,
    snakemake.params.bic_tolerance,
    outlier_z=snakemake.params.outlier_z,
)
description = model.to_dict()
write_json(description, snakemake.output.model)
write_tsv(bic_table(model), snakemake.output.bic)
bic_figure(description, snakemake.output.png, snakemake.output.svg)
logging.info("chose K=%d", description["k"])
for outlier in description["screened_out"]:
    logging.warning("left out of the habitat fit (voxel outlier): %s", outlier)
from_snakemake(snakemake)
