"""Apply the frozen habitat model and draw the peritumoral shell for one patient; write both as
label maps with a 3D Slicer colour table beside each."""

import logging

from radiogenomics.core.io import write_color_table, write_label_map
from radiogenomics.regions.habitats import patient_region_images, region_color_tables

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
habitats, peri = patient_region_images(
    snakemake.input.model,
    dict(zip(snakemake.params.phases, snakemake.input.phases)),
    snakemake.input.tumor,
    margin_mm=snakemake.params.margin_mm,
    body_threshold_hu=snakemake.params.body_threshold_hu,
)
write_label_map(habitats, snakemake.output.habitats)
write_label_map(peri, snakemake.output.peri)
for name, (entries, comments) in region_color_tables(
    snakemake.input.model, snakemake.params.margin_mm
).items():
    write_color_table(entries, snakemake.output[f"{name}_ctbl"], comments)
