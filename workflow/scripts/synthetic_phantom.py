"""One synthetic patient's CT phases and reference mask (NIfTI or DICOM), truth habitats and kidney."""

import logging
import shutil
from pathlib import Path

import pandas as pd

from radiogenomics.core.io import write_json
from radiogenomics.cohort.synthetic.generator import write_phantom

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
patient = snakemake.wildcards.patient
phantoms = pd.read_csv(snakemake.input.phantoms, sep="\t", dtype={"patient_id": str})
row = phantoms.loc[phantoms["patient_id"] == patient].iloc[0]

# Written into staging folders and moved into place last: a crash leaves nothing at the final paths.
out_dir, truth = Path(snakemake.output.raw), Path(snakemake.output.truth)
staging, truth_staging = out_dir.with_name(f".{out_dir.name}.partial"), truth.parent / ".partial"
for folder in (staging, truth_staging):
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
manifest_row = write_phantom(row, staging, truth_staging, tuple(snakemake.params.spacing))
write_json(dict(manifest_row), staging / "manifest.json")
(truth_staging / "habitats.nii.gz").replace(truth)
(truth_staging / "kidney.nii.gz").replace(snakemake.output.kidney)
truth_staging.rmdir()
shutil.rmtree(out_dir, ignore_errors=True)
staging.rename(out_dir)
logging.info("wrote %s", out_dir)
