"""Radiomics of one re-read patient under every rater's mask (second reader or perturbations)."""

import logging

from radiogenomics.io import write_json
from radiogenomics.radiomics_robustness import rater_features

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
robustness = snakemake.params.robustness
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
    second_reader=snakemake.input.second_reader or None,
    n_perturbations=robustness["n_perturbations"],
    seed=snakemake.params.seed,
    grow_mm=robustness["grow_mm"],
    jitter_mm=robustness["jitter_mm"],
    jitter_smoothing_mm=robustness["jitter_smoothing_mm"],
    shift_mm=robustness["shift_mm"],
)
write_json(table.to_dict(orient="records"), snakemake.output[0])
logging.info("%d raters x %d features", len(table), table.shape[1] - 2)
