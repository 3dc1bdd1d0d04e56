"""One synthetic patient's whole-slide image (pyramidal TIFF) and its planted pattern map."""

import logging

import pandas as pd

from radiogenomics.core.io import atomic_path, write_json
from radiogenomics.core.provenance import from_snakemake
from radiogenomics.cohort.synthetic.slides import write_slide

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
patient = snakemake.wildcards.patient
truth = pd.read_csv(snakemake.input.truth, sep="\t", dtype={"patient_id": str})
row = truth.loc[truth["patient_id"] == patient].iloc[0]
clinical = pd.read_csv(snakemake.input.clinical, sep="\t", dtype={"patient_id": str})
grade = int(clinical.loc[clinical["patient_id"] == patient, "grade"].iloc[0])
with (
    atomic_path(snakemake.output.slide) as slide,
    atomic_path(snakemake.output.pattern) as pattern,
):
    record = write_slide(
        patient,
        float(row["z"]),
        grade,
        str(row["site"]),
        slide,
        pattern,
        seed=snakemake.params.seed,
        size_um=snakemake.params.slides["size_um"],
    )
write_json(record, snakemake.output.record)
logging.info("%s", record)
from_snakemake(snakemake)
