"""The analysis grid keeps the scan's physical extent, checked against physical coordinates."""

import numpy as np
import pytest
import SimpleITK as sitk

from radiogenomics.imaging import grid
from radiogenomics.imaging.ct import preprocess_case

# A rotation of about 20 degrees around an oblique axis: no axis of the grid is a scanner axis.
_ANGLE, _AXIS = np.radians(20.0), np.array([1.0, 2.0, 2.0]) / 3.0
_K = np.array([[0, -_AXIS[2], _AXIS[1]], [_AXIS[2], 0, -_AXIS[0]], [-_AXIS[1], _AXIS[0], 0]])
OBLIQUE = np.eye(3) + np.sin(_ANGLE) * _K + (1 - np.cos(_ANGLE)) * _K @ _K

GEOMETRIES = {
    "3mm": ((3.0, 3.0, 3.0), np.eye(3), (20, 18, 14)),
    "2x2x4mm": ((2.0, 2.0, 4.0), np.eye(3), (28, 26, 11)),
    "oblique 2x2x4mm": ((2.0, 2.0, 4.0), OBLIQUE, (28, 26, 11)),
    "oblique 1.6x1.4x3mm": ((1.6, 1.4, 3.0), OBLIQUE, (30, 32, 15)),
}
# HU = RAMP . (x, y, z) + 40: a linear field that interpolation reproduces exactly, so any
# misplacement of the output grid shows as a wrong value.
RAMP = np.array([1.5, -1.0, 2.0])


def native_case(spacing, direction, size, origin=(-31.3, 12.7, -48.1)):
    reference = sitk.Image([int(n) for n in size], sitk.sitkUInt8)
    reference.SetSpacing(spacing)
    reference.SetOrigin(origin)
    reference.SetDirection(np.ravel(direction).tolist())
    points = grid.physical_coordinates(reference)
    ct = sitk.GetImageFromArray((points @ RAMP + 40).astype(np.float32))
    ct.CopyInformation(reference)
    # An off-centre ellipsoid (physical coordinates) as the tumour.
    centre = points.reshape(-1, 3).mean(axis=0) + np.array([3.1, -2.3, 4.2])
    radii = np.array([9.0, 7.0, 11.0])
    inside = (((points - centre) / radii) ** 2).sum(axis=-1) <= 1
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(reference)
    return ct, mask


def voxel_corners(image):
    """Physical positions of the 8 outer corners of the voxel grid (faces, not centres)."""
    size = np.asarray(image.GetSize())
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing())
    corners = np.array(np.meshgrid(*[[-0.5, n - 0.5] for n in size], indexing="ij")).reshape(3, -1).T
    return np.asarray(image.GetOrigin()) + (corners * spacing) @ direction.T


def centroid_mm(mask):
    points = grid.physical_coordinates(mask)
    return points[sitk.GetArrayViewFromImage(mask) > 0].mean(axis=0)


@pytest.mark.parametrize("name", GEOMETRIES)
def test_resampled_grid_covers_the_native_extent(name):
    spacing, direction, size = GEOMETRIES[name]
    ct, mask = native_case(spacing, direction, size)
    out, tumor = preprocess_case({"venous": ct}, mask, (1.0, 1.0, 1.0), "linear", reference="venous")
    resampled = out["venous"]
    assert np.allclose(resampled.GetDirection(), np.ravel(direction))
    # Corner by corner, along the scan's own axes: within half an output voxel.
    offsets = (voxel_corners(resampled) - voxel_corners(ct)) @ direction
    assert np.abs(offsets).max() <= 0.5 + 1e-6, offsets
    # The first faces agree exactly (the formula origin' = origin + D (s' - s) / 2).
    assert np.allclose(offsets[0], 0.0, atol=1e-6)
    # No invented air, and every voxel holds the CT value of its own physical position: the
    # linear field is exact between the native voxel centres (beyond the last centre ITK repeats
    # the edge voxel, so those voxels are compared with the field at that centre).
    values = sitk.GetArrayFromImage(resampled).astype(float)
    assert values.min() > -1000
    points = grid.physical_coordinates(resampled)
    index = (points - np.asarray(ct.GetOrigin())) @ direction / np.asarray(spacing)
    clamped = np.clip(index, 0, np.asarray(size) - 1)
    expected = (np.asarray(ct.GetOrigin()) + (clamped * spacing) @ direction.T) @ RAMP + 40
    assert np.abs(values - expected).max() <= 0.5 + 1e-3
    # The tumour's centroid stays where it was drawn.
    shift = np.linalg.norm(centroid_mm(tumor) - centroid_mm(mask))
    assert shift < 0.25, shift
    volume_native = sitk.GetArrayViewFromImage(mask).sum() * np.prod(spacing)
    assert abs(sitk.GetArrayViewFromImage(tumor).sum() - volume_native) / volume_native < 0.05


def test_resampled_origin_formula_by_hand():
    # 2 x 2 x 4 mm, identity direction: the first faces lie at -1, -1, -2 mm, so the first 1 mm
    # centres lie half a millimetre inside them.
    reference = grid.resampled_reference((10, 10, 5), (2, 2, 4), (0.0, 0.0, 0.0), np.eye(3))
    assert reference.GetOrigin() == pytest.approx((-0.5, -0.5, -1.5))
    assert reference.GetSize() == (20, 20, 20)
    # A flipped x axis (direction -1) moves the first centre the other way.
    flipped = np.diag([-1.0, 1.0, 1.0])
    reference = grid.resampled_reference((10, 10, 5), (2, 2, 4), (0.0, 0.0, 0.0), flipped)
    assert reference.GetOrigin() == pytest.approx((0.5, -0.5, -1.5))
    # Same spacing: the grid is the input grid.
    reference = grid.resampled_reference((7, 8, 9), (1, 1, 1), (3.0, 4.0, 5.0), OBLIQUE)
    assert reference.GetOrigin() == pytest.approx((3.0, 4.0, 5.0))
