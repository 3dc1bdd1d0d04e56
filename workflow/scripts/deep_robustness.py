"""ICC of deep features under seeded mask perturbation (or second-reader masks)."""

import logging

import SimpleITK as sitk

from radiogenomics.features.deep import deep_features_tables
from radiogenomics.core.io import write_tsv
from radiogenomics.features.robustness import icc_table, perturbed_mask_sets
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
options = dict(snakemake.params.options)
options.pop("fine_tune", None)  # robustness is a property of the extraction, measured untuned
robust = dict(snakemake.params.robustness)
patients, phases = list(snakemake.params.patients), list(options["phases"])
images = {p: {} for p in patients}
for path, (patient, phase) in zip(
    snakemake.input.images, [(p, ph) for p in patients for ph in phases], strict=True
):
    images[patient][phase] = path
masks = {p: sitk.ReadImage(str(m)) for p, m in zip(patients, snakemake.input.masks, strict=True)}
mask_sets = perturbed_mask_sets(
    masks,
    robust["n_perturbations"],
    seed=snakemake.params.seed,
    grow_mm=robust["grow_mm"],
    jitter_mm=robust["jitter_mm"],
    jitter_smoothing_mm=robust["jitter_smoothing_mm"],
    shift_mm=robust["shift_mm"],
)
tables = deep_features_tables(images, mask_sets, seed=snakemake.params.seed, **options)
result = icc_table({r: t.set_index("patient_id") for r, t in tables.items()}, robust["form"])
write_tsv(result, snakemake.output.robustness)
logging.info("median ICC %.3f over %d features", result["icc"].median(), len(result))
from_snakemake(snakemake)
