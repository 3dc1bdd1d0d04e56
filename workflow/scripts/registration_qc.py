"""Checkerboards of the reference phase and each registered phase for a seeded sample of patients."""

import logging
from pathlib import Path

from radiogenomics.core.provenance import from_snakemake
from radiogenomics.imaging.registration import qc_figure

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
# results/imaging/{patient}/{phase}.nii.gz and results/segment/{patient}/tumor.nii.gz
cases = {Path(path).parent.name: {"mask": path, "images": {}} for path in snakemake.input.masks}
for path in snakemake.input.images:
    cases[Path(path).parent.name]["images"][Path(path).name.removesuffix(".nii.gz")] = path
qc_figure(
    [{"patient_id": patient, **case} for patient, case in sorted(cases.items())],
    snakemake.params.reference,
    snakemake.params.window,
    snakemake.output.png,
    snakemake.output.svg,
)
from_snakemake(snakemake)
