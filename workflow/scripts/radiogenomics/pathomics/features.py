"""CNN features of the kept tiles of one slide, in one HDF5 file per slide.

The backbone is the deep-feature stage's (:func:`radiogenomics.features.deep.build_backbone`: a local
checkpoint, the local ImageNet cache, or a seeded random init; never a download). Tiles are
read from the slide on the fly in batches, ImageNet-normalised and optionally resized to
``input_size``. For training patients, ``augmented_views`` extra feature sets are computed from
stain/colour-jittered, rotated, flipped and noised copies of the tiles (S3 augments in
training only); test and external patients never get them.

File layout (``features.h5``): ``features`` (n_tiles, n_features) float32, ``coords``
(n_tiles, 2) level-0 (x, y), optional ``augmented`` (views, n_tiles, n_features); attributes
name the backbone, its weights and the tile geometry.
"""

from __future__ import annotations

import hashlib
import os

import h5py
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from radiogenomics.features import deep
from radiogenomics.core.io import atomic_path

from . import slides

STAIN_JITTER = 0.08  # optical-density scale per channel: 1 +- this (uniform)
STAIN_SHIFT = 0.03  # optical-density offset per channel
NOISE_SD = 3.0  # grey levels


def augment_tiles(tiles: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour (optical-density scale and shift per tile and channel), rotation by 90-degree
    steps, flips and Gaussian noise; uint8 (n, h, w, 3) in, uint8 out."""
    density = -np.log((tiles.astype(np.float32) + 1.0) / 256.0)
    n = len(tiles)
    scale = rng.uniform(1 - STAIN_JITTER, 1 + STAIN_JITTER, size=(n, 1, 1, 3))
    shift = rng.uniform(-STAIN_SHIFT, STAIN_SHIFT, size=(n, 1, 1, 3))
    rgb = 256.0 * np.exp(-(density * scale + shift)) - 1.0
    rgb += rng.normal(0.0, NOISE_SD, size=rgb.shape)
    out = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    for i in range(n):
        out[i] = np.rot90(out[i], k=int(rng.integers(4)))
        if rng.uniform() < 0.5:
            out[i] = out[i, :, ::-1]
    return out


def network_input(tiles: np.ndarray, input_size: int | None) -> np.ndarray:
    """uint8 (n, h, w, 3) -> float32 (n, 3, s, s), ImageNet-normalised."""
    x = torch.from_numpy(np.ascontiguousarray(tiles)).permute(0, 3, 1, 2).float() / 255.0
    if input_size and input_size != x.shape[-1]:
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", antialias=True)
    mean = torch.from_numpy(deep.IMAGENET_MEAN)[None, :, None, None]
    std = torch.from_numpy(deep.IMAGENET_STD)[None, :, None, None]
    return ((x - mean) / std).numpy()


def tile_geometry(tiles: pd.DataFrame) -> slides.TileGeometry:
    """How the tiles of a tile table (``tiles.parquet``; one slide, one geometry) are read."""
    first = tiles.iloc[0]
    return slides.TileGeometry(
        level=int(first["level"]),
        read_px=int(first["read_px"]),
        step0=float(first["tile_px"] * first["target_mpp"] / first["slide_mpp"]),
        tile_px=int(first["tile_px"]),
        target_mpp=float(first["target_mpp"]),
        slide_mpp=float(first["slide_mpp"]),
    )


def slide_features(
    patient_id: str,
    slide_path: str | os.PathLike,
    tiles: pd.DataFrame,
    out_path: str | os.PathLike,
    *,
    backbone: str = "resnet50",
    pretrained: str = "none",
    pooling: str = "avg",
    input_size: int | None = None,
    batch_size: int = 64,
    device: str = "auto",
    augmented_views: int = 0,
    seed: int = 0,
) -> dict:
    """Write ``out_path`` for the kept tiles of ``tiles``; returns the weights record."""
    kept = tiles.loc[tiles["kept"]].reset_index(drop=True)
    geometry = tile_geometry(kept)
    model, record = deep.build_backbone(backbone, pretrained, pooling, seed)
    device = deep.select_device(device)
    rng = np.random.default_rng([seed, patient_stream(patient_id)])
    slide = slides.open_slide(patient_id, slide_path)
    plain, augmented = [], [[] for _ in range(augmented_views)]
    try:
        for start in range(0, len(kept), batch_size):
            batch = kept.iloc[start : start + batch_size]
            pixels = np.stack(
                [slides.read_tile(slide, r.x, r.y, geometry) for r in batch.itertuples()]
            )
            plain.append(deep.extract(model, network_input(pixels, input_size), batch_size, device))
            for view in augmented:
                inputs = network_input(augment_tiles(pixels, rng), input_size)
                view.append(deep.extract(model, inputs, batch_size, device))
    finally:
        slide.close()
    with atomic_path(out_path, ".h5") as tmp, h5py.File(tmp, "w") as handle:
        handle["features"] = np.concatenate(plain).astype(np.float32)
        handle["coords"] = kept[["x", "y"]].to_numpy(np.int64)
        if augmented:
            handle["augmented"] = np.stack([np.concatenate(v) for v in augmented]).astype(
                np.float32
            )
        for key, value in {
            **record,
            "patient_id": patient_id,
            "tile_px": geometry.tile_px,
            "target_mpp": geometry.target_mpp,
            "input_size": int(input_size or geometry.tile_px),
            "augmented_views": int(augmented_views),
        }.items():
            handle.attrs[key] = value
    return record


def patient_stream(patient_id: str) -> int:
    """A stable integer per patient for its random stream (any id, not only SYNnnnn)."""
    return int(hashlib.sha256(patient_id.encode()).hexdigest()[:15], 16)


def read_features(path: str | os.PathLike) -> dict:
    """features, coords and (when present) augmented arrays of one ``features.h5``."""
    with h5py.File(path, "r") as handle:
        out = {key: handle[key][()] for key in ("features", "coords", "augmented") if key in handle}
        out["attrs"] = dict(handle.attrs)
    return out
