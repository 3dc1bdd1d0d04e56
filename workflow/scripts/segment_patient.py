"""One patient's final tumour (and kidney) mask: reference, nnU-Net prediction or correction."""

import json
import logging
from pathlib import Path

import SimpleITK as sitk

from radiogenomics.core.cases import BadCase
from radiogenomics.core.io import write_json, write_label_map
from radiogenomics.segmentation.masks import final_masks
from radiogenomics.segmentation.qc import qc_record

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
patient = snakemake.wildcards.patient
method = snakemake.params.method
prediction = (
    str(Path(snakemake.input.prediction) / f"{patient}.nii.gz") if method == "nnunet" else None
)
# a correction is carried from the phase it was drawn on through the patient's registration
registration_path = snakemake.input.get("registration")
registration = json.loads(Path(registration_path).read_text()) if registration_path else None
masks = final_masks(
    patient, method, sitk.ReadImage(snakemake.input.ct), snakemake.params.labels,
    snakemake.params.postprocess, snakemake.params.min_tumor_ml, prediction=prediction,
    reference=snakemake.input.reference, correction=snakemake.input.get("correction"),
    registration=registration, registration_path=registration_path or "",
    correction_sidecar=snakemake.input.get("correction_sidecar"),
)  # fmt: skip
problem = masks["problem"]
if problem and snakemake.params.on_bad_case == "fail":
    raise BadCase(problem["patient_id"], problem["file"], problem["reason"], problem["fix"], "segment")
record = qc_record(
    patient, method, masks["source"], masks["tumor"], masks["raw_tumor"], masks["kidney"],
    masks["reference"], problem,
)  # fmt: skip
write_label_map(masks["tumor"], snakemake.output.tumor)
if "kidney" in snakemake.output.keys():
    write_label_map(masks["kidney"], snakemake.output.kidney)
write_json({**record, "drawn_on": masks["drawn_on"], "problem": problem}, snakemake.output.qc)
logging.info("%s: %s (correction drawn on: %s)", patient, record, masks["drawn_on"])
