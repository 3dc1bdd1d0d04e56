"""Immune cell fractions by deconvolution against the signature matrix, high vs low tests."""

import logging
from pathlib import Path

from radiogenomics.genomics.pipeline import run_deconvolution
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
table = run_deconvolution(
    out_dir=Path(snakemake.output.deconvolution).parent,
    figures_dir=Path(snakemake.output.bars).parent,
    signature_path=snakemake.input.signature,
    params=snakemake.params.options,
    threads=snakemake.threads,
)
logging.info("%d patients deconvolved", len(table))
from_snakemake(snakemake)
