"""The analysis grid: where a native CT lands after isotropic resampling.

Shared by the imaging stage and the synthetic generator (whose truth maps must sit on exactly
the grid the imaging stage produces).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def resampled_size(size, spacing, new_spacing) -> list[int]:
    """Keep the physical extent: n_new = round(n * spacing / new_spacing), at least 1."""
    return [
        max(1, int(round(n * s / t))) for n, s, t in zip(size, spacing, new_spacing, strict=True)
    ]


def resampled_reference(
    size, spacing, origin, direction, new_spacing=(1.0, 1.0, 1.0)
) -> sitk.Image:
    """An empty image carrying the geometry of the resampled grid.

    The new grid covers the same physical extent as the input: the outer faces of the first
    voxels agree, so the first voxel centre moves by half the change of spacing along each axis,
    origin' = origin + D (s' - s) / 2 (D the direction matrix, s the spacing). Keeping the old
    origin instead would start the grid half an input voxel early (padding air on three faces and
    dropping real scan on the others, and shifting the mask against the CT).
    """
    spacing = np.asarray(spacing, dtype=float)
    new_spacing = np.asarray(new_spacing, dtype=float)
    direction_matrix = np.asarray(direction, dtype=float).reshape(3, 3)
    new_origin = np.asarray(origin, dtype=float) + direction_matrix @ ((new_spacing - spacing) / 2)
    reference = sitk.Image(resampled_size(size, spacing, new_spacing), sitk.sitkUInt8)
    reference.SetSpacing([float(s) for s in new_spacing])
    reference.SetOrigin([float(o) for o in new_origin])
    reference.SetDirection([float(d) for d in direction_matrix.ravel()])
    return reference


def reference_like(image: sitk.Image, new_spacing=(1.0, 1.0, 1.0)) -> sitk.Image:
    return resampled_reference(
        image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection(), new_spacing
    )


def physical_coordinates(reference: sitk.Image) -> np.ndarray:
    """Physical (x, y, z) of every voxel centre, shaped like the numpy array (z, y, x, 3)."""
    size = reference.GetSize()
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in size], indexing="ij"), axis=-1)
    spacing = np.asarray(reference.GetSpacing())
    direction = np.asarray(reference.GetDirection()).reshape(3, 3)
    points = np.asarray(reference.GetOrigin()) + (idx * spacing) @ direction.T
    return np.transpose(points, (2, 1, 0, 3))
