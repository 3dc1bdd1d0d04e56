"""Pathomics throughput: tiles per second for reading + CNN features, and the MIL fit time.

Measured in one run on one synthetic slide (the generator's default size); the baseline is
reading the tiles alone, so every row is also a ratio against it:

    python benchmarks/bench_pathomics.py [--backbones resnet18 resnet50] [--bags 100]

Rows: tile reading (OpenSlide, at 20x), reading + features per backbone on CPU (and CUDA when
present), and the fit time of the attention MIL (300 iterations, batch 64) on bags of the
measured tile count with random features of the backbone's width.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from radiogenomics import synthetic_slides  # noqa: E402
from radiogenomics.pathomics import features, mil, slides, tiling  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--bags", type=int, default=100, help="training bags of the MIL fit")
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        slide_path = Path(tmp) / "slide.tif"
        synthetic_slides.write_slide(
            "SYN0001", 0.5, "A", slide_path, Path(tmp) / "pattern.tif", seed=1
        )
        tiles, _ = tiling.tile_slide("SYN0001", slide_path)
        kept = tiles[tiles["kept"]]
        first = kept.iloc[0]
        geometry = slides.choose_level(0.5, (1, 4, 16), first["target_mpp"], int(first["tile_px"]))
        handle = slides.open_slide("SYN0001", slide_path)
        start = time.perf_counter()
        for row in kept.itertuples():
            slides.read_tile(handle, row.x, row.y, geometry)
        read_rate = len(kept) / (time.perf_counter() - start)
        handle.close()
        print(f"{len(kept)} tiles at 20x; reading alone: {read_rate:.1f} tiles/s (baseline)")
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        widths = {}
        for backbone in args.backbones:
            for device in devices:
                out = Path(tmp) / f"{backbone}_{device}.h5"
                start = time.perf_counter()
                features.slide_features(
                    "SYN0001", slide_path, tiles, out, backbone=backbone, device=device
                )
                rate = len(kept) / (time.perf_counter() - start)
                widths[backbone] = features.read_features(out)["features"].shape[1]
                print(
                    f"read + {backbone} on {device}: {rate:.1f} tiles/s "
                    f"({rate / read_rate:.3f} x reading alone)"
                )
    rng = np.random.default_rng(0)
    for backbone, width in widths.items():
        bags = [rng.normal(size=(len(kept), width)).astype(np.float32) for _ in range(args.bags)]
        labels = np.arange(args.bags) % 2
        start = time.perf_counter()
        _, history = mil.train_mil(
            bags, labels, iterations=args.iterations, patience=10**6, device="cpu"
        )
        print(
            f"MIL fit on CPU, {args.bags} bags x {len(kept)} tiles x {width} features, "
            f"{int(history['iteration'].max())} iterations of 64 bags: "
            f"{time.perf_counter() - start:.1f} s"
        )


if __name__ == "__main__":
    main()
