"""Differential expression of the high vs low score groups, volcano, PCA and heatmap."""

import logging
from pathlib import Path

from radiogenomics.genomics.pipeline import run_deg
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
result = run_deg(
    snakemake.input.counts,
    snakemake.input.samples,
    out_dir=Path(snakemake.output.deg).parent,
    figures_dir=Path(snakemake.output.volcano).parent,
    params=snakemake.params.options,
    threads=snakemake.threads,
)
logging.info("%s", result)
from_snakemake(snakemake)
