"""A seeded sample of one training patient's tumour-voxel features for the habitat model."""

import logging

import numpy as np

from radiogenomics.core.io import atomic_path
from radiogenomics.regions.habitats import sample_patient_voxels

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
sample = sample_patient_voxels(
    dict(zip(snakemake.params.phases, snakemake.input.phases)),
    snakemake.input.tumor,
    texture=snakemake.params.texture,
    texture_radius_mm=snakemake.params.texture_radius_mm,
    smooth_sigma_mm=snakemake.params.smooth_sigma_mm,
    n_voxels=snakemake.params.n_voxels,
    seed=snakemake.params.seed,
    patient_id=snakemake.wildcards.patient,
)
with atomic_path(snakemake.output[0]) as tmp, open(tmp, "wb") as handle:
    np.savez(handle, **sample)
logging.info("%d voxels", len(sample["features"]))
