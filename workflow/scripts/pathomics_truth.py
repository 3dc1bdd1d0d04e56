"""Synthetic runs: pathomics attention and score against the planted pattern and z."""

import logging

from radiogenomics.pathomics.stages import truth_stage
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
truth_stage(
    {
        key: snakemake.input[key]
        for key in ("attention", "predictions", "labels", "truth", "tiles", "patterns", "slides")
    },
    snakemake.output.table,
    list(snakemake.params.patients),
)
from_snakemake(snakemake)
