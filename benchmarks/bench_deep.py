"""Deep-feature throughput (slices per second) and the cost of the robustness stage.

All numbers are measured in one run and printed as ratios against a baseline from the same
run (resnet18 inference on CPU), so they compare across machines:

    python benchmarks/bench_deep.py [--slices 32] [--batch-size 16] [--threads 0]

Rows: resnet18/resnet50 on CPU (and on CUDA when available), slice preparation alone, and the
robustness stage (mask perturbation + re-extraction for N perturbed mask sets) relative to
plain extraction of the same patients.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from radiogenomics.features import deep, robustness  # noqa: E402


def _throughput(model, slices, batch_size, device) -> float:
    deep.extract(model, slices[:batch_size], batch_size=batch_size, device=device)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    deep.extract(model, slices, batch_size=batch_size, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(slices) / (time.perf_counter() - start)


def _phantom_cohort(n_patients: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices((40, 96, 96))
    images, masks = {}, {}
    for i in range(n_patients):
        radius = rng.uniform(8, 20)
        inside = (zz - 20) ** 2 + (yy - 48) ** 2 + (xx - 48) ** 2 <= radius**2
        hu = np.where(inside, 60.0, -80.0) + rng.normal(0, 25, inside.shape)
        images[f"P{i}"] = {"venous": sitk.GetImageFromArray(hu.astype(np.int16))}
        masks[f"P{i}"] = sitk.GetImageFromArray(inside.astype(np.uint8))
    return images, masks


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--patients", type=int, default=8, help="for the robustness rows")
    parser.add_argument("--perturbations", type=int, default=3)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    slices = rng.normal(size=(args.slices, 3, 224, 224)).astype(np.float32)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for backbone in ("resnet18", "resnet50"):
            model, _ = deep.build_backbone(backbone, "none", "avg", seed=0)
            rows.append(
                (f"{backbone} {device.type}", _throughput(model, slices, args.batch_size, device))
            )
    baseline = rows[0][1]

    volume = rng.normal(40, 30, size=(40, 96, 96)).astype(np.float32)
    mask = np.zeros(volume.shape, bool)
    mask[15:25, 30:60, 35:65] = True
    start = time.perf_counter()
    for _ in range(args.slices):
        deep.prepare_slice(volume, mask, size=224)
    rows.append(("slice preparation", args.slices / (time.perf_counter() - start)))

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"batch {args.batch_size}, {args.slices} slices at 224 px"
    )
    print(f"{'what':<22}{'slices/s':>12}{'x resnet18 cpu':>16}")
    for name, rate in rows:
        print(f"{name:<22}{rate:>12.2f}{rate / baseline:>16.3f}")

    images, masks = _phantom_cohort(args.patients)
    options = dict(
        phases=("venous",), backbone="resnet18", seed=0, device="cpu", batch_size=args.batch_size
    )
    start = time.perf_counter()
    deep.deep_features_table(images, masks, **options)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    sets = robustness.perturbed_mask_sets(masks, args.perturbations, seed=0)
    tables = deep.deep_features_tables(images, sets, **options)
    robustness.icc_table({r: t.set_index("patient_id") for r, t in tables.items()})
    robust = time.perf_counter() - start
    print(
        f"robustness ({args.perturbations} perturbations, {args.patients} patients, resnet18 "
        f"cpu): {robust:.2f} s vs plain extraction {plain:.2f} s = {robust / plain:.2f}x"
    )


if __name__ == "__main__":
    main()
