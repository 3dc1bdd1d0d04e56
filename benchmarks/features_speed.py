"""Seconds per patient: features.extract_patient (filters once per phase, on a crop) versus
one RadiomicsFeatureExtractor.execute call per region, on a phantom with a ~4 cm tumour and
5 regions (whole, sub1..sub3, peri), 1 phase. Reports the ratio measured in the same run.

usage: python benchmarks/features_speed.py [size_x size_y size_z]
"""

import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from radiogenomics.features import radiomics as features  # noqa: E402


def phantom(size_xyz, seed=0):
    rng = np.random.default_rng(seed)
    shape = tuple(size_xyz[::-1])
    grid = np.indices(shape).astype(float)
    centre = np.array(shape, dtype=float)[:, None, None, None] / 2
    radius = np.sqrt(((grid - centre) ** 2).sum(0))
    whole = radius <= 20
    angle = np.arctan2(grid[1] - centre[1], grid[2] - centre[2])
    sub1 = whole & (radius <= 8)
    sub2 = whole & ~sub1 & (angle > 0)
    sub3 = whole & ~sub1 & ~sub2
    peri = (radius > 20) & (radius <= 23)
    texture = ndimage.gaussian_filter(rng.normal(size=shape), 1.0) * 120
    body = np.where(radius <= min(shape) / 2 - 2, 30, -1000)
    array = np.where(whole, 60 + 70 * sub2 + 120 * sub3, body) + texture
    image = sitk.GetImageFromArray(array.astype(np.int16))
    return image, {"whole": whole, "sub1": sub1, "sub2": sub2, "sub3": sub3, "peri": peri}


def main():
    size = tuple(int(v) for v in sys.argv[1:4]) or (160, 160, 100)
    image, regions = phantom(size)
    params = str(features.params_file())
    features.feature_names(params)  # warm-up (cached name list)
    # CPU seconds as well as wall seconds: on a shared machine CPU time is the steadier number
    wall, cpu = time.perf_counter(), time.process_time()
    shared, _ = features.extract_patient({"venous": image}, regions, params)
    shared_wall, shared_cpu = time.perf_counter() - wall, time.process_time() - cpu
    extractor = features.load_extractor(params)
    wall, cpu = time.perf_counter(), time.process_time()
    for region in regions.values():
        mask = sitk.GetImageFromArray(region.astype(np.uint8))
        mask.CopyInformation(image)
        extractor.execute(image, mask)
    direct_wall, direct_cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"image {size} voxels, tumour ~4 cm, 5 regions, {len(shared)} features")
    print(
        f"extract_patient: {shared_wall:.1f} s wall / {shared_cpu:.1f} s CPU; "
        f"direct execute x5: {direct_wall:.1f} s wall / {direct_cpu:.1f} s CPU; "
        f"speed-up {direct_wall / shared_wall:.1f}x wall, {direct_cpu / shared_cpu:.1f}x CPU"
    )


if __name__ == "__main__":
    main()
