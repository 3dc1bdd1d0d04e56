"""PyRadiomics features of one patient's regions (whole, habitats, shell) per phase."""

import logging

from radiogenomics.features.radiomics import extract_patient_files
from radiogenomics.core.io import write_json

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
# JSON, not parquet: a one-row table of ~5,000 columns takes a parquet reader half a second
write_json({"patient_id": snakemake.wildcards.patient, **features}, snakemake.output.features)
write_json({"patient_id": snakemake.wildcards.patient, **diagnostics}, snakemake.output.diagnostics)
