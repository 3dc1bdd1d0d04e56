"""S5 multi-phase CNN: phase-subset models, predictions, AUC comparison, Grad-CAM figure."""

import logging

from radiogenomics.features.deep import endpoint_labels
from radiogenomics.core.figure_writer import save_figure
from radiogenomics.core.io import read_tsv, write_tsv
from radiogenomics.models.multiphase import case_slices, gradcam_figure, multiphase_study
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
options = dict(snakemake.params.options)
phases = list(options.pop("phases"))
endpoint, horizon = options.pop("endpoint"), options.pop("horizon_months", None)
slice_keys = ("margin_mm", "size", "channels", "voi_mm", "slice_spacing_mm")
slice_options = {k: options.pop(k) for k in slice_keys if k in options}
patients = list(snakemake.params.patients)
images = {p: {} for p in patients}
for path, (patient, phase) in zip(
    snakemake.input.images, [(p, ph) for p in patients for ph in phases], strict=True
):
    images[patient][phase] = path
clinical = read_tsv(snakemake.input.clinical, dtype={"patient_id": str})
labels = endpoint_labels(clinical, endpoint, horizon, cohort=None)
cohorts = dict(zip(clinical["patient_id"], clinical["cohort"], strict=True))
predictions, metrics, variants = multiphase_study(
    images,
    dict(zip(patients, snakemake.input.masks, strict=True)),
    labels,
    cohorts,
    phases,
    slice_options=slice_options,
    seed=snakemake.params.seed,
    **options,
)
write_tsv(predictions.assign(region_set="+".join(phases)), snakemake.output.predictions)
write_tsv(metrics, snakemake.output.metrics)
full_model = variants[tuple(phases)][0]
examples = [p for p in sorted(labels) if cohorts.get(p) == "test"][:4]
cases = case_slices(
    {p: images[p] for p in examples},
    {p: m for p, m in zip(patients, snakemake.input.masks, strict=True) if p in examples},
    phases,
    **slice_options,
)
examples = [p for p in examples if set(cases[p]) == set(phases)]
figure = gradcam_figure(full_model, cases, examples, title=f"Grad-CAM ({endpoint})")
for path in snakemake.output.figure:  # results/figures/multiphase_gradcam.{png,svg}
    save_figure(figure, path)
logging.info("AUC table:\n%s", metrics.to_string())
from_snakemake(snakemake)
