"""Predict one batch of patients with nnU-Net v2 (the model loaded once for the batch)."""

import logging

from radiogenomics.segmentation.nnunet import predict_cases

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
channels = snakemake.params.channels
images = list(snakemake.input.images)
cases = {
    patient: images[i * len(channels) : (i + 1) * len(channels)]
    for i, patient in enumerate(snakemake.params.patients)
}
timing = predict_cases(
    snakemake.input.model, cases, snakemake.output[0], snakemake.params.folds,
    snakemake.params.checkpoint, snakemake.threads, snakemake.params.device, snakemake.params.tta,
    snakemake.params.tile_step_size,
)  # fmt: skip
logging.info("model loaded in %.1f s; %d cases", timing["load_seconds"], len(cases))
