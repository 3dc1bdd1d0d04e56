"""Whole-slide images through OpenSlide (SVS, NDPI, pyramidal TIFF, ...): microns per pixel,
the pyramid level for a magnification, and tiles read on the fly at that magnification.

Magnification is converted with the usual convention 10x = 1 micron per pixel (20x = 0.5,
40x = 0.25). A tile at the target magnification is read from the coarsest level that is not
coarser than the target (never upsampled beyond ``tolerance``) and resized to the tile size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from radiogenomics.core.cases import BadCase

MICRONS_AT_10X = 10.0


def magnification_mpp(magnification: float) -> float:
    """Microns per pixel of an objective magnification (20x -> 0.5)."""
    return MICRONS_AT_10X / float(magnification)


def open_slide(patient_id: str, path: str | os.PathLike):
    """An OpenSlide handle, or BadCase naming the patient and the file."""
    import openslide

    if not os.path.isfile(path):
        raise BadCase(
            patient_id,
            str(path),
            "slide file not found",
            "give the whole-slide image in the manifest column `slide`",
            stage="pathomics",
        )
    try:
        return openslide.OpenSlide(str(path))
    except (openslide.OpenSlideError, openslide.OpenSlideUnsupportedFormatError) as error:
        raise BadCase(
            patient_id,
            str(path),
            f"unreadable slide: {error}",
            "provide an SVS, NDPI or pyramidal tiled TIFF that OpenSlide opens",
            stage="pathomics",
        ) from None


def slide_mpp(patient_id: str, path, properties) -> float:
    """Level-0 microns per pixel: ``openslide.mpp-x``, else from the objective power."""
    mpp = properties.get("openslide.mpp-x")
    if mpp:
        return float(mpp)
    power = properties.get("openslide.objective-power")
    if power:
        return magnification_mpp(float(power))
    raise BadCase(
        patient_id,
        str(path),
        "the slide states neither microns per pixel nor objective power",
        "export the slide with its resolution (TIFF resolution tags or vendor metadata)",
        stage="pathomics",
    )


@dataclass(frozen=True)
class TileGeometry:
    """How tiles at the target magnification are read from one slide."""

    level: int  # pyramid level the pixels come from
    read_px: int  # side of the square read at that level
    step0: float  # grid step (= tile side, non-overlapping) in level-0 pixels
    tile_px: int  # side of the tile handed on (after resizing)
    target_mpp: float
    slide_mpp: float  # level 0


def choose_level(
    slide_mpp0: float,
    downsamples,
    target_mpp: float,
    tile_px: int,
    tolerance: float = 0.1,
) -> TileGeometry:
    """The coarsest level whose microns per pixel are at most ``target_mpp * (1 + tolerance)``;
    the read side there covers ``tile_px`` target pixels. A slide scanned coarser than the target
    (level 0 above the tolerance) cannot give the magnification: ValueError."""
    level_mpp = slide_mpp0 * np.asarray(downsamples, dtype=float)
    usable = np.nonzero(level_mpp <= target_mpp * (1.0 + tolerance))[0]
    if usable.size == 0:
        raise ValueError(
            f"slide resolution {slide_mpp0:g} um/px is coarser than the target {target_mpp:g} "
            "um/px; choose a lower magnification"
        )
    level = int(usable[np.argmax(level_mpp[usable])])
    read_px = int(round(tile_px * target_mpp / level_mpp[level]))
    return TileGeometry(
        level=level,
        read_px=read_px,
        step0=tile_px * target_mpp / slide_mpp0,
        tile_px=int(tile_px),
        target_mpp=float(target_mpp),
        slide_mpp=float(slide_mpp0),
    )


def tile_grid(width0: int, height0: int, step0: float) -> np.ndarray:
    """Top-left corners (x, y) in level-0 pixels of the non-overlapping tiles that fit."""
    nx, ny = int(np.floor(width0 / step0 + 1e-9)), int(np.floor(height0 / step0 + 1e-9))
    xs = np.rint(np.arange(nx) * step0).astype(np.int64)
    ys = np.rint(np.arange(ny) * step0).astype(np.int64)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    return grid


def read_tile(slide, x0: int, y0: int, geometry: TileGeometry) -> np.ndarray:
    """RGB uint8 (tile_px, tile_px, 3) at the target magnification; transparent (outside the
    scanned area) pixels become white, as glass."""
    region = slide.read_region(
        (int(x0), int(y0)), geometry.level, (geometry.read_px, geometry.read_px)
    )
    background = Image.new("RGBA", region.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(background, region).convert("RGB")
    if geometry.read_px != geometry.tile_px:
        rgb = rgb.resize((geometry.tile_px, geometry.tile_px), Image.Resampling.BILINEAR)
    return np.asarray(rgb)


def thumbnail(slide, microns_per_pixel: float, slide_mpp0: float) -> tuple[np.ndarray, float]:
    """RGB thumbnail near ``microns_per_pixel`` and its scale (thumbnail px per level-0 px)."""
    width0, height0 = slide.dimensions
    scale = slide_mpp0 / microns_per_pixel
    size = (max(1, int(round(width0 * scale))), max(1, int(round(height0 * scale))))
    image = slide.get_thumbnail(size).convert("RGB")
    if image.size != size:  # get_thumbnail keeps the aspect ratio; force the exact grid
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(image), size[0] / width0
