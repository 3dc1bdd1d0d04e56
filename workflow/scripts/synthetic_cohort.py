"""Cohort-level synthetic data: clinical table, phantom parameters, omics and planted truth."""

import logging
from pathlib import Path

from radiogenomics.cohort.synthetic.generator import write_cohort_tables
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
params = {**snakemake.params.synthetic, "seed": snakemake.params.seed}
write_cohort_tables(
    params,
    raw_dir=Path(snakemake.output.clinical).parent,
    truth_dir=Path(snakemake.output.truth_patients).parent,
    reference_phase=snakemake.params.reference_phase,
    mask_phase=snakemake.params.mask_phase,
)
from_snakemake(snakemake)
