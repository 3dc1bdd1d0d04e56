"""Deep features (S1, S4): one CNN feature table for the cohort, plus the weights used."""

import logging

from radiogenomics.features.deep import deep_features_table, endpoint_labels
from radiogenomics.core.io import read_tsv, write_json, write_parquet
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
options = dict(snakemake.params.options)
fine_tune = dict(options.pop("fine_tune", None) or {})
patients, phases = list(snakemake.params.patients), list(options["phases"])
images = {p: {} for p in patients}
for path, (patient, phase) in zip(
    snakemake.input.images, [(p, ph) for p in patients for ph in phases], strict=True
):
    images[patient][phase] = path
labels = None
if fine_tune.pop("enabled", False):
    clinical = read_tsv(snakemake.input.clinical, dtype={"patient_id": str})
    labels = endpoint_labels(
        clinical, fine_tune.pop("endpoint"), fine_tune.pop("horizon_months", None)
    )
    logging.info("fine-tuning on %d training patients", len(labels))
table = deep_features_table(
    images,
    dict(zip(patients, snakemake.input.masks, strict=True)),
    seed=snakemake.params.seed,
    fine_tune_labels=labels,
    fine_tune=fine_tune,
    **options,
)
write_parquet(table, snakemake.output.features)
write_json(table.attrs, snakemake.output.provenance)
logging.info("%d patients x %d deep features", table.shape[0], table.shape[1] - 1)
from_snakemake(snakemake)
