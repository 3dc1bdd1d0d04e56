"""Register every phase of one patient to the reference phase; write the transforms (or why not)."""

import json
import logging

from radiogenomics.cohort.assembly import synthetic_case_paths
from radiogenomics.imaging.ct import load_case
from radiogenomics.core.io import write_json
from radiogenomics.imaging.registration import registration_verdict

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
patient = snakemake.wildcards.patient
phases, mask_phase = snakemake.params.phases, snakemake.params.mask_phase
if snakemake.params.synthetic:
    paths = synthetic_case_paths(snakemake.input.raw)
else:
    paths = {key: snakemake.input[key] for key in snakemake.input.keys() if key != "qc"}
with open(snakemake.input.qc) as handle:
    inspection = json.load(handle)
verdict = registration_verdict(
    patient,
    inspection,
    lambda: load_case(
        patient, paths, phases, mask_phase,
        mask_label=snakemake.params.mask_label, mask_required=snakemake.params.mask_required,
    ),
    mask_phase,
    snakemake.params.registration,
    snakemake.params.seed,
    snakemake.params.on_bad_case,
    threads=snakemake.threads,
    paths=paths,
)
logging.info("%s: %s", patient, json.dumps(verdict))
write_json(verdict, snakemake.output[0])
