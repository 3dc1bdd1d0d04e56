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
    """An empty image carrying the geometry of the resampled grid (same origin and direction)."""
    reference = sitk.Image(resampled_size(size, spacing, new_spacing), sitk.sitkUInt8)
    reference.SetSpacing([float(s) for s in new_spacing])
    reference.SetOrigin([float(o) for o in origin])
    reference.SetDirection([float(d) for d in np.ravel(direction)])
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
