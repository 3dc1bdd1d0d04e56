"""Acquire the public cohort (TCIA CT + GDC clinical, counts, MAFs) into results/raw/."""

import logging
from pathlib import Path

from radiogenomics.cohort.public.acquire import fetch_public_cohort
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
raw_dir = Path(snakemake.output.manifest).parent
summary = fetch_public_cohort(
    snakemake.params.cohort,
    raw_dir,
    workdir=".",
    on_bad_case=snakemake.params.on_bad_case,
)
logging.info(
    "acquired %d patients, excluded %d; %d downloads made by this run",
    len(summary["patients"]),
    len(summary["exclusions"]),
    summary["downloads"],
)
from_snakemake(snakemake)
