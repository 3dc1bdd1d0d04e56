"""Survival (log-rank, Kaplan-Meier) of a median split of the top DEGs."""

import logging
from pathlib import Path

from radiogenomics.genomics.pipeline import run_prognostic
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
table = run_prognostic(
    out_dir=Path(snakemake.output.prognostic).parent,
    figures_dir=Path(snakemake.output.km).parent,
    clinical_path=snakemake.input.clinical,
    params=snakemake.params.options,
    threads=snakemake.threads,
)
logging.info("%d genes tested", len(table))
from_snakemake(snakemake)
