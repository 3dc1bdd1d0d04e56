"""Tumour mutation burden, mutation status and the top DEGs' correlation with TMB."""

import logging
from pathlib import Path

from radiogenomics.genomics.pipeline import run_tmb
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
table = run_tmb(
    out_dir=Path(snakemake.output.tmb).parent,
    maf_path=snakemake.input.maf,
    samples_path=snakemake.input.samples,
    params=snakemake.params.options,
    threads=snakemake.threads,
)
logging.info("TMB of %d patients", len(table))
from_snakemake(snakemake)
