"""Pathomics throughput: tiles per second for reading + CNN features, and the MIL fit time.

Measured in one run on one synthetic slide (the generator's default size); the baseline is
reading the tiles alone, so every row is also a ratio against it:

    python benchmarks/bench_pathomics.py [--backbones resnet18 resnet50] [--bags 100]

Rows: tile reading (OpenSlide, at 20x, with the geometry of the tile table as the workflow reads
it; the median of ``--read-passes`` passes), reading + features per backbone on CPU (and CUDA
when present; one ``slide_features`` call as the rule makes it, so building the backbone and
writing the HDF5 file are included), and the fit time of the attention MIL (300 iterations,
batch 64) on bags of the measured tile count with random features of the backbone's width.
Each row gives wall seconds and the process's CPU seconds (all its threads): on a shared
machine the wall figures grow with the load, the CPU ones much less. The load average is
printed before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from radiogenomics.cohort.synthetic import slides as synthetic_slides  # noqa: E402
from radiogenomics.pathomics import features, mil, slides, tiling  # noqa: E402


class Timer:
    """Wall and process CPU seconds of a ``with`` block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--bags", type=int, default=100, help="training bags of the MIL fit")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--read-passes", type=int, default=3)
    parser.add_argument(
        "--mil-threads",
        type=int,
        nargs="+",
        default=[torch.get_num_threads()],
        help="torch intra-op threads of the MIL fit, one fit per value",
    )
    args = parser.parse_args(argv)
    if args.bags < 10:
        parser.error("--bags must be at least 10 (the MIL holds out a stratified fifth)")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        slide_path = Path(tmp) / "slide.tif"
        synthetic_slides.write_slide(
            "SYN0001", 0.5, 3, "A", slide_path, Path(tmp) / "pattern.tif", seed=1
        )
        tiles, _ = tiling.tile_slide("SYN0001", slide_path)
        kept = tiles[tiles["kept"]]
        geometry = features.tile_geometry(kept)
        handle = slides.open_slide("SYN0001", slide_path)
        passes = []
        for _ in range(args.read_passes):
            with Timer() as timer:
                for row in kept.itertuples():
                    slides.read_tile(handle, row.x, row.y, geometry)
            passes.append((len(kept) / timer.wall, len(kept) / timer.cpu))
        handle.close()
        read_rate, read_cpu_rate = np.median(passes, axis=0)
        print(
            f"{len(kept)} of {len(tiles)} grid tiles kept at 20x (level {geometry.level}, "
            f"{geometry.read_px} px read per tile); reading alone: {read_rate:.1f} tiles/s, "
            f"{read_cpu_rate:.1f} tiles per CPU-s (median of {args.read_passes} passes; baseline)"
        )
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        widths = {}
        for backbone in args.backbones:
            for device in devices:
                out = Path(tmp) / f"{backbone}_{device}.h5"
                with Timer() as timer:
                    features.slide_features(
                        "SYN0001", slide_path, tiles, out, backbone=backbone, device=device
                    )
                rate, cpu_rate = len(kept) / timer.wall, len(kept) / timer.cpu
                widths[backbone] = features.read_features(out)["features"].shape[1]
                print(
                    f"read + {backbone} on {device}: {rate:.1f} tiles/s "
                    f"({rate / read_rate:.3f} x reading alone), {cpu_rate:.1f} tiles per CPU-s "
                    f"({cpu_rate / read_cpu_rate:.3f} x)"
                )
    rng = np.random.default_rng(0)
    for backbone, width in widths.items():
        bags = [rng.normal(size=(len(kept), width)).astype(np.float32) for _ in range(args.bags)]
        labels = np.arange(args.bags) % 2
        for threads in args.mil_threads:
            torch.set_num_threads(threads)
            with Timer() as timer:
                _, history = mil.train_mil(
                    bags, labels, iterations=args.iterations, patience=10**6, device="cpu"
                )
            print(
                f"MIL fit on CPU ({threads} threads), {args.bags} bags x {len(kept)} tiles x "
                f"{width} features, {int(history['iteration'].max())} iterations of 64 bags: "
                f"{timer.wall:.1f} s wall, {timer.cpu:.1f} CPU-s"
            )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
