"""Train nnU-Net v2 on the training patients' reference masks; write the model folder."""

import logging


def main(snakemake):
    from radiogenomics.segmentation.nnunet import build_model

    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
    channels = snakemake.params.channels
    images = list(snakemake.input.images)
    cases = [
        {
            "case_id": patient,
            "images": images[i * len(channels) : (i + 1) * len(channels)],
            "tumor": tumor,
            "kidney": kidney,
        }
        for i, (patient, tumor, kidney) in enumerate(
            zip(snakemake.params.patients, snakemake.input.tumors, snakemake.input.kidneys, strict=True)
        )
    ]
    record = build_model(
        cases, snakemake.output.model, snakemake.params.work, channels, snakemake.params.labels,
        snakemake.params.settings, snakemake.threads, snakemake.params.device, snakemake.params.seed,
    )  # fmt: skip
    logging.info("trained on %d cases in %.0f s", len(cases), record["train_seconds"])


# nnU-Net's planning and preprocessing start worker processes that re-import this file
if __name__ == "__main__":
    main(snakemake)  # noqa: F821
