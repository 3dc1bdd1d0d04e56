"""PyRadiomics features of one patient's regions (whole, habitats, shell) per phase."""

import logging

import pandas as pd

from radiogenomics.features import extract_patient_files
from radiogenomics.io import write_json, write_parquet

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
features, diagnostics = extract_patient_files(
    patient_id=snakemake.wildcards.patient,
    phase_paths=dict(zip(snakemake.params.phases, snakemake.input.phases)),
    tumor_path=snakemake.input.tumor,
    habitats_path=snakemake.input.habitats,
    peri_path=snakemake.input.peri,
    habitat_model_path=snakemake.input.model,
    params_path=snakemake.input.params,
    regions=snakemake.params.regions,
)
write_parquet(pd.DataFrame([{"patient_id": snakemake.wildcards.patient, **features}]), snakemake.output.features)
write_json({"patient_id": snakemake.wildcards.patient, **diagnostics}, snakemake.output.diagnostics)
