"""Synthetic H&E whole-slide images (S3): one small pyramidal tiled TIFF per patient.

A slide is glass (no pen marks) with one tissue section: eosin-pink stroma with hematoxylin
nuclei. High-grade tumours (ISUP III-IV) show foci of an "aggressive" pattern (dense, large,
dark nuclei); low-grade ones (I-II) show none, as a pathologist assigns the grade by the worst
focus. The foci's area fraction rises with the patient's latent aggressiveness z, the variable
that also drives grade, stage and recurrence in :mod:`radiogenomics.cohort.synthetic.generator`.
Foci rather than a z-proportional share of the whole section: when the label followed the
pattern's area, mean pooling was already optimal and attention had nothing to find. The planted
pattern map (0 glass, 1 tissue, 2 aggressive tissue) is written beside the truth tables so that
tile attention can be checked against it.

Maps are drawn on a coarse grid (``MAP_UM`` microns per pixel) and the texture at full
resolution; the pyramid has downsamples 1, 4, 16 like scanner SVS files, and the microns per
pixel are stored in the TIFF resolution tags, which OpenSlide reports as ``openslide.mpp-x``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

STREAM_SLIDE = 7  # random stream of the slides (streams 1-3 are the cohort's, see synthetic.py)
DEFAULTS = {"size_um": [2000.0, 1600.0]}
MAP_UM = 4.0  # resolution of the tissue and pattern maps
GLASS_LABEL, TISSUE_LABEL, AGGRESSIVE_LABEL = 0, 1, 2  # values of the pattern map
PYRAMID_DOWNSAMPLES = (1, 4, 16)
TIFF_TILE = 256
# Scanners per site: microns per pixel at level 0 and a stain shift (RGB offsets) of the lab.
SITES = {
    "A": {"mpp": 0.5, "stain_shift": (0.0, 0.0, 0.0)},
    "B": {"mpp": 0.5, "stain_shift": (-6.0, 4.0, 6.0)},
    "C": {"mpp": 0.45, "stain_shift": (8.0, -6.0, -4.0)},
}
HIGH_GRADE = 3  # ISUP grades from which the aggressive foci are present
AGGRESSIVE_FRACTION_RANGE = (0.05, 0.35)  # of the tissue area in high-grade tumours, from z
GLASS_RGB = (242.0, 241.0, 245.0)
STROMA_RGB = (228.0, 150.0, 190.0)
NUCLEUS_RGB = (80.0, 45.0, 125.0)
AGGRESSIVE_NUCLEUS_RGB = (55.0, 25.0, 100.0)
# Nuclei as thresholded band-passed noise: (blob sigma in microns, share of pixels that are nucleus)
NUCLEI = {"normal": (1.6, 0.10), "aggressive": (2.6, 0.38)}
GLASS_NOISE_SD = 1.2
TISSUE_NOISE_SD = 6.0


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def aggressive_fraction(z: float, grade: int, jitter: float) -> float:
    """Planted share of the tissue area with the aggressive pattern: none below
    ``HIGH_GRADE``, above it rising with z."""
    if grade < HIGH_GRADE:
        return 0.0
    low, high = AGGRESSIVE_FRACTION_RANGE
    return float(low + (high - low) * _sigmoid(1.5 * z + 0.3 * jitter))


def _smooth_noise(rng, shape, sigma_px) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px)
    return (field - field.mean()) / (field.std() + 1e-12)


def pattern_map(rng: np.random.Generator, shape: tuple[int, int], fraction: float) -> np.ndarray:
    """uint8 map (0 glass, 1 tissue, 2 aggressive tissue) on the coarse grid.

    Tissue: a lobulated ellipse (smooth-noise boundary) covering about half of the slide.
    Aggressive: smooth-noise blobs inside the tissue, thresholded at the quantile that gives
    ``fraction`` of the tissue area.
    """
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    r = np.hypot(
        (rows - shape[0] / 2) / (0.42 * shape[0]), (cols - shape[1] / 2) / (0.42 * shape[1])
    )
    boundary = 0.18 * _smooth_noise(rng, shape, 0.08 * min(shape))
    tissue = r + boundary < 0.92
    tissue = ndimage.binary_opening(tissue, iterations=2)
    blobs = _smooth_noise(rng, shape, 120.0 / MAP_UM)
    labels = tissue.astype(np.uint8)
    if fraction > 0 and tissue.any():
        cut = np.quantile(blobs[tissue], 1.0 - fraction)
        labels[tissue & (blobs > cut)] = AGGRESSIVE_LABEL
    return labels


def render_slide(
    rng: np.random.Generator, labels: np.ndarray, mpp: float, stain_shift
) -> np.ndarray:
    """RGB uint8 level-0 image for a pattern map (coarse grid of ``MAP_UM`` microns)."""
    scale = MAP_UM / mpp
    height, width = (int(round(n * scale)) for n in labels.shape)
    rows = np.minimum((np.arange(height) / scale).astype(int), labels.shape[0] - 1)
    cols = np.minimum((np.arange(width) / scale).astype(int), labels.shape[1] - 1)
    full = labels[np.ix_(rows, cols)]
    tissue, aggressive = full != GLASS_LABEL, full == AGGRESSIVE_LABEL
    image = np.empty((height, width, 3), np.float32)
    image[:] = GLASS_RGB
    # stroma: eosin with fibrous mid-frequency texture and low-frequency staining variation
    texture = 14.0 * _smooth_noise(rng, (height, width), 2.0 / mpp)
    texture += (
        10.0 * ndimage.zoom(_smooth_noise(rng, labels.shape, 8.0), scale, order=1)[:height, :width]
    )
    stroma = np.asarray(STROMA_RGB, np.float32) + np.asarray(stain_shift, np.float32)
    image[tissue] = stroma + texture[tissue, None] * np.array([0.4, 1.0, 0.6], np.float32)
    for kind, mask, colour in (
        ("normal", tissue & ~aggressive, NUCLEUS_RGB),
        ("aggressive", aggressive, AGGRESSIVE_NUCLEUS_RGB),
    ):
        sigma_um, share = NUCLEI[kind]
        field = _smooth_noise(rng, (height, width), sigma_um / mpp)
        nuclei = mask & (field > np.quantile(field, 1.0 - share))
        image[nuclei] = np.asarray(colour, np.float32) + np.asarray(stain_shift, np.float32)
    noise = rng.standard_normal((height, width, 3)).astype(np.float32)
    image += np.where(tissue[..., None], TISSUE_NOISE_SD, GLASS_NOISE_SD) * noise
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_pyramid(
    image: np.ndarray, path: str | os.PathLike, mpp: float, quality: int = 90
) -> None:
    """Tiled pyramidal TIFF (JPEG tiles), microns per pixel in the resolution tags."""
    with tifffile.TiffWriter(path) as tif:
        for index, downsample in enumerate(PYRAMID_DOWNSAMPLES):
            level = image if downsample == 1 else _downsample(image, downsample)
            pixels_per_cm = 1e4 / (mpp * downsample)
            tif.write(
                level,
                tile=(TIFF_TILE, TIFF_TILE),
                photometric="rgb",
                compression="jpeg",
                compressionargs={"level": quality},
                resolution=(pixels_per_cm, pixels_per_cm),
                resolutionunit="CENTIMETER",
                subfiletype=0 if index == 0 else 1,
            )


def _downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter reduction by an integer factor (edges that do not fill a box are cropped)."""
    h, w = (n // factor * factor for n in image.shape[:2])
    blocks = image[:h, :w].reshape(h // factor, factor, w // factor, factor, 3)
    return blocks.mean(axis=(1, 3)).round().astype(np.uint8)


def write_pattern_map(labels: np.ndarray, path: str | os.PathLike) -> None:
    """The planted map as a single-page TIFF with its microns per pixel (``MAP_UM``)."""
    pixels_per_cm = 1e4 / MAP_UM
    tifffile.imwrite(
        path, labels, resolution=(pixels_per_cm, pixels_per_cm), resolutionunit="CENTIMETER"
    )


def read_pattern_map(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """(labels, microns per pixel) of a map written by :func:`write_pattern_map`."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        x_resolution = page.tags["XResolution"].value
        return page.asarray(), 1e4 * x_resolution[1] / x_resolution[0]


def patient_number(patient_id: str) -> int:
    return int("".join(ch for ch in patient_id if ch.isdigit()))


def write_slide(
    patient_id: str,
    z: float,
    grade: int,
    site: str,
    slide_path: str | os.PathLike,
    pattern_path: str | os.PathLike,
    seed: int,
    size_um=DEFAULTS["size_um"],
) -> dict:
    """One patient's slide and planted pattern map; returns the slide's truth record."""
    rng = np.random.default_rng([seed, STREAM_SLIDE, patient_number(patient_id)])
    fraction = aggressive_fraction(z, grade, rng.normal())
    shape = tuple(int(round(s / MAP_UM)) for s in reversed(size_um))  # (rows, cols)
    labels = pattern_map(rng, shape, fraction)
    scanner = SITES[site]
    image = render_slide(rng, labels, scanner["mpp"], scanner["stain_shift"])
    write_pyramid(image, slide_path, scanner["mpp"])
    write_pattern_map(labels, pattern_path)
    tissue = labels != GLASS_LABEL
    return {
        "patient_id": patient_id,
        "grade": int(grade),
        "mpp": scanner["mpp"],
        "planted_fraction": fraction,
        "aggressive_fraction": float((labels == AGGRESSIVE_LABEL).sum() / max(tissue.sum(), 1)),
        "tissue_mm2": float(tissue.sum() * (MAP_UM / 1000.0) ** 2),
    }
