"""Included cohort with its split, and every excluded patient with stage and reason."""

import logging

from radiogenomics.cohort.assembly import assemble_cohort
from radiogenomics.core.io import write_tsv
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
clinical, exclusions = assemble_cohort(
    [*snakemake.input.qc, *snakemake.input.registration],
    snakemake.input.clinical,
    snakemake.params.manifest_problems,
    snakemake.params.required,
    snakemake.params.split,
    snakemake.params.seed,
    snakemake.params.on_bad_case,
    extra_exclusions=getattr(snakemake.input, "acquisition_exclusions", None),
)
logging.info("included %d patients, excluded %d", len(clinical), len(exclusions))
write_tsv(clinical, snakemake.output.clinical)
write_tsv(exclusions, snakemake.output.exclusions)
from_snakemake(snakemake)
