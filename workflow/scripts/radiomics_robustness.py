"""Radiomics of one re-read patient under every rater's mask (second reader or perturbations)."""

import json
import logging
from pathlib import Path

from radiogenomics.core.io import write_json
from radiogenomics.features.raters import rater_features

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
robustness = snakemake.params.robustness
# a second reader's mask is carried from the phase it was drawn on through the registration
second_reader = snakemake.input.get("second_reader")
table = rater_features(
    snakemake.wildcards.patient,
    dict(zip(snakemake.params.phases, snakemake.input.phases)),
    dict(zip(snakemake.params.habitat_phases, snakemake.input.habitat_phases)),
    snakemake.input.tumor,
    snakemake.input.model,
    snakemake.input.params,
    regions=snakemake.params.regions,
    margin_mm=snakemake.params.margin_mm,
    body_threshold_hu=snakemake.params.body_threshold_hu,
    second_reader=second_reader,
    registration=json.loads(Path(snakemake.input.registration).read_text()) if second_reader else None,
    second_reader_sidecar=snakemake.input.get("second_reader_sidecar"),
    registration_path=snakemake.input.get("registration", ""),
    n_perturbations=robustness["n_perturbations"],
    seed=snakemake.params.seed,
    grow_mm=robustness["grow_mm"],
    jitter_mm=robustness["jitter_mm"],
    jitter_smoothing_mm=robustness["jitter_smoothing_mm"],
    shift_mm=robustness["shift_mm"],
)
write_json(table.to_dict(orient="records"), snakemake.output[0])
logging.info("%d raters x %d features", len(table), table.shape[1] - 2)
