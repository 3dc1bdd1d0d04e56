"""ESTIMATE stromal, immune and ESTIMATE scores, high vs low tests."""

import logging
from pathlib import Path

from radiogenomics.genomics.pipeline import run_estimate
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
table = run_estimate(
    out_dir=Path(snakemake.output.estimate).parent,
    figures_dir=Path(snakemake.output.boxplots).parent,
    estimate_gmt=snakemake.input.estimate_gmt,
    params=snakemake.params.options,
    threads=snakemake.threads,
)
logging.info("%d patients scored", len(table))
from_snakemake(snakemake)
