"""Tissue tiles of one slide (S3): tissue detection on a thumbnail, a non-overlapping grid at
the target magnification, and the entropy filter (discard tiles with image entropy < 5 bits).

Tissue: Otsu's threshold on the HSV saturation of the thumbnail (glass is grey-white, stained
tissue saturated). Otsu is written out here (a dozen lines, tested against a brute-force
search) instead of pulling in scikit-image for one function.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from scipy import ndimage

from . import slides

TILE_COLUMNS = [
    "patient_id",
    "x",
    "y",
    "level",
    "read_px",
    "tile_px",
    "target_mpp",
    "slide_mpp",
    "tissue_fraction",
    "entropy",
    "kept",
    "reason",
    "thumb_x0",
    "thumb_y0",
    "thumb_x1",
    "thumb_y1",
]


def otsu_threshold(values, bins: int = 256, value_range=(0.0, 1.0)) -> float:
    """Otsu's threshold: the histogram cut that maximises the between-class variance; returned
    as the upper edge of the last bin of the lower class (values above it are foreground)."""
    counts, edges = np.histogram(np.asarray(values, float).ravel(), bins=bins, range=value_range)
    centres = (edges[:-1] + edges[1:]) / 2
    weight0 = np.cumsum(counts)
    weight1 = weight0[-1] - weight0
    sum0 = np.cumsum(counts * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean0 = sum0 / weight0
        mean1 = (sum0[-1] - sum0) / weight1
        between = weight0 * weight1 * (mean0 - mean1) ** 2
    between = np.nan_to_num(between[:-1], nan=-1.0)
    return float(edges[int(np.argmax(between)) + 1])


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation in [0, 1]: (max - min) / max of R, G, B (0 for black)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    return np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0.0)


def tissue_mask(thumb: np.ndarray, min_saturation: float = 0.05) -> np.ndarray:
    """Tissue on the thumbnail: saturation above Otsu's threshold (and above
    ``min_saturation``, so that a blank slide is not split into two kinds of glass)."""
    sat = saturation(thumb)
    mask = sat > max(otsu_threshold(sat), min_saturation)
    return ndimage.binary_opening(mask, iterations=1)


def image_entropy(tile: np.ndarray) -> float:
    """Shannon entropy in bits of the 8-bit grey-level histogram (PIL luma, ITU-R 601-2)."""
    grey = np.asarray(Image.fromarray(np.asarray(tile, np.uint8)).convert("L"))
    counts = np.bincount(grey.ravel(), minlength=256).astype(float)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def tile_slide(
    patient_id: str,
    path: str | os.PathLike,
    *,
    magnification: float = 20.0,
    tile_px: int = 224,
    min_tissue_fraction: float = 0.5,
    min_entropy: float = 5.0,
    thumbnail_um: float = 8.0,
    level_tolerance: float = 0.1,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Every grid tile of the slide with its tissue fraction, entropy and verdict; and the
    thumbnail. ``reason`` is ``background`` (tissue fraction below the minimum), ``entropy``
    (entropy below ``min_entropy``) or empty for kept tiles; entropy is only computed for
    tiles on tissue (the others are never read)."""
    slide = slides.open_slide(patient_id, path)
    try:
        mpp0 = slides.slide_mpp(patient_id, path, slide.properties)
        target = slides.magnification_mpp(magnification)
        try:
            geometry = slides.choose_level(
                mpp0, slide.level_downsamples, target, tile_px, level_tolerance
            )
        except ValueError as error:
            raise slides.BadCase(
                patient_id,
                str(path),
                str(error),
                "lower pathomics.tiles.magnification",
                stage="pathomics",
            ) from None
        thumb, scale = slides.thumbnail(slide, thumbnail_um, mpp0)
        mask = tissue_mask(thumb)
        width0, height0 = slide.dimensions
        rows = []
        for x, y in slides.tile_grid(width0, height0, geometry.step0):
            tx0, ty0 = int(np.floor(x * scale)), int(np.floor(y * scale))
            tx1 = max(int(np.ceil((x + geometry.step0) * scale)), tx0 + 1)
            ty1 = max(int(np.ceil((y + geometry.step0) * scale)), ty0 + 1)
            fraction = float(mask[ty0:ty1, tx0:tx1].mean())
            entropy, reason = np.nan, "background"
            if fraction >= min_tissue_fraction:
                entropy = image_entropy(slides.read_tile(slide, x, y, geometry))
                reason = "" if entropy >= min_entropy else "entropy"
            rows.append(
                {
                    "patient_id": patient_id,
                    "x": int(x),
                    "y": int(y),
                    "level": geometry.level,
                    "read_px": geometry.read_px,
                    "tile_px": geometry.tile_px,
                    "target_mpp": geometry.target_mpp,
                    "slide_mpp": geometry.slide_mpp,
                    "tissue_fraction": fraction,
                    "entropy": entropy,
                    "kept": reason == "",
                    "reason": reason,
                    "thumb_x0": tx0,
                    "thumb_y0": ty0,
                    "thumb_x1": tx1,
                    "thumb_y1": ty1,
                }
            )
    finally:
        slide.close()
    table = pd.DataFrame(rows, columns=TILE_COLUMNS)
    if not table["kept"].any():
        raise slides.BadCase(
            patient_id,
            str(path),
            f"no tissue tile passes the filters ({len(table)} grid tiles, "
            f"{int((table['reason'] == 'entropy').sum())} below entropy {min_entropy:g})",
            "check the slide (blank, out of focus, wrong magnification) or the tiling settings",
            stage="pathomics",
        )
    return table, thumb


def qc_thumbnail(thumb: np.ndarray, tiles: pd.DataFrame) -> Image.Image:
    """The thumbnail with kept tiles outlined in green and entropy-rejected ones in red."""
    image = Image.fromarray(thumb).convert("RGB")
    draw = ImageDraw.Draw(image)
    colours = {"": (0, 160, 0), "entropy": (220, 0, 0)}
    for row in tiles.itertuples(index=False):
        colour = colours.get(row.reason)
        if colour is not None:
            draw.rectangle(
                (row.thumb_x0, row.thumb_y0, row.thumb_x1 - 1, row.thumb_y1 - 1), outline=colour
            )
    return image
