"""Inspect one patient's raw images; write the verdict (ok, or why it is excluded)."""

import logging

from radiogenomics.cohort.assembly import inspect_case, synthetic_case_paths
from radiogenomics.core.io import write_json

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
patient = snakemake.wildcards.patient
if snakemake.params.synthetic:
    paths = synthetic_case_paths(snakemake.input.raw)
else:
    # manifest paths that do not exist are not inputs, yet the inspection must name them
    paths = {**snakemake.params.case_paths, **{key: snakemake.input[key] for key in snakemake.input.keys()}}
verdict = inspect_case(
    patient,
    paths,
    snakemake.params.phases,
    snakemake.params.mask_phase,
    snakemake.params.on_bad_case,
    expected_mask=snakemake.params.expected_mask,
    checks=snakemake.params.checks,
)
logging.info("%s: %s", patient, verdict)
write_json(verdict, snakemake.output[0])
