"""One radiomics table for the cohort, and the PyRadiomics diagnostics beside it."""

import logging

from radiogenomics.features.radiomics import combine_patient_tables
from radiogenomics.core.io import write_parquet, write_tsv
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
features, diagnostics = combine_patient_tables(snakemake.input.features, snakemake.input.diagnostics)
write_parquet(features, snakemake.output.features)
write_tsv(diagnostics, snakemake.output.diagnostics)
logging.info("%d patients x %d features", *features.shape)
from_snakemake(snakemake)
