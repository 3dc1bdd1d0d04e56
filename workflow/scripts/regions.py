"""Apply the frozen habitat model and draw the peritumoral shell for one patient."""

import logging

from radiogenomics.imaging import write_image
from radiogenomics.regions import patient_region_images

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
habitats, peri = patient_region_images(
    snakemake.input.model,
    dict(zip(snakemake.params.phases, snakemake.input.phases)),
    snakemake.input.tumor,
    margin_mm=snakemake.params.margin_mm,
    body_threshold_hu=snakemake.params.body_threshold_hu,
)
write_image(habitats, snakemake.output.habitats)
write_image(peri, snakemake.output.peri)
