"""CNN features of one slide's kept tiles (features.h5), read from the slide on the fly."""

import logging

from radiogenomics.pathomics.stages import features_stage
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
features_stage(
    snakemake.wildcards.patient,
    snakemake.input.slide,
    snakemake.input.tiles,
    snakemake.output.features,
    dict(snakemake.params.options),
    bool(snakemake.params.training),
    snakemake.params.seed,
)
from_snakemake(snakemake)
