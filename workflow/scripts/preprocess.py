"""Resample one patient's phases (through their registration) and tumour mask to the analysis grid."""

import json
import logging

from radiogenomics.cohort.assembly import synthetic_case_paths
from radiogenomics.imaging.ct import load_case, preprocess_case, write_image
from radiogenomics.core.io import write_label_map
from radiogenomics.imaging.registration import transforms_of

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
patient = snakemake.wildcards.patient
with open(snakemake.input.registration) as handle:
    registration = json.load(handle)
if snakemake.params.synthetic:
    paths = synthetic_case_paths(snakemake.input.raw)
else:
    paths = {key: snakemake.input[key] for key in [*snakemake.params.phases, "mask"] if key in snakemake.input.keys()}
images, mask = load_case(
    patient,
    paths,
    snakemake.params.phases,
    registration["mask_phase"],
    mask_label=snakemake.params.mask_label,
    mask_required=snakemake.params.mask_required,
)
resampled, tumor = preprocess_case(
    images,
    mask,
    snakemake.params.spacing,
    snakemake.params.interpolator,
    reference=registration["reference"],
    transforms=transforms_of(registration),
    mask_phase=registration["mask_phase"],
)
for phase, path in zip(snakemake.params.phases, snakemake.output.phases):
    write_image(resampled[phase], path)
write_image(resampled[snakemake.params.analysis_phase], snakemake.output.ct)
write_label_map(tumor, snakemake.output.reference)
logging.info("%s: resampled to %s", patient, tumor.GetSize())
