"""Reading CT (NIfTI or DICOM series), inspecting a case, resampling to the analysis grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.cases import BadCase
from .grid import reference_like
from .dicom import read_dicom_series
from .scan_checks import (
    check_file_complete,
    check_finite,
    check_intensities,
    check_tumour_volume,
    tumour_from_labels,
)

INTERPOLATORS = {
    "bspline": sitk.sitkBSpline,
    "linear": sitk.sitkLinear,
    "nearest": sitk.sitkNearestNeighbor,
}
# Geometry may differ by rounding between a mask and its image written by different tools.
GEOMETRY_TOLERANCE_MM = 1e-3


def read_image(path: str | Path, patient_id: str = "unknown") -> sitk.Image:
    """A NIfTI (or any ITK format) file, or a folder holding one DICOM series."""
    path = Path(path)
    if path.is_dir():
        return read_dicom_series(path, patient_id)
    return sitk.ReadImage(str(path))


def read_case_image(patient_id: str, path: str | Path, what: str) -> sitk.Image:
    if not str(path) or str(path) == "nan":
        raise BadCase(
            patient_id,
            f"<no {what}>",
            f"the {what} is missing from the manifest",
            f"add the {what} path to the manifest or drop the phase from imaging.phases",
        )
    if not Path(path).exists():
        raise BadCase(patient_id, path, f"{what} file does not exist", "fix the manifest path")
    try:
        image = read_image(path, patient_id)
    except BadCase:
        raise
    except Exception as error:  # SimpleITK and GDCM raise bare RuntimeErrors
        raise BadCase(
            patient_id,
            path,
            f"{what} cannot be read ({str(error).strip().splitlines()[0][:200]})",
            "re-export the image as NIfTI or a complete DICOM series",
        ) from error
    check_file_complete(patient_id, path, what)
    check_finite(patient_id, image, path, what)
    return image


def geometry(image: sitk.Image) -> dict:
    """An image's grid as JSON: size, spacing, origin, direction (x, y, z order)."""
    return {
        "size": [int(n) for n in image.GetSize()],
        "spacing": [float(s) for s in image.GetSpacing()],
        "origin": [float(o) for o in image.GetOrigin()],
        "direction": [float(d) for d in image.GetDirection()],
    }


def same_geometry(a: dict, b: dict) -> bool:
    """Two grids (:func:`geometry` records) agree up to the rounding of different tools."""
    return (
        list(a["size"]) == list(b["size"])
        and np.allclose(a["spacing"], b["spacing"], atol=GEOMETRY_TOLERANCE_MM)
        and np.allclose(a["origin"], b["origin"], atol=GEOMETRY_TOLERANCE_MM)
        and np.allclose(a["direction"], b["direction"], atol=1e-4)
    )


def same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return same_geometry(geometry(a), geometry(b))


def describe_geometry(grid: dict) -> str:
    """A :func:`geometry` record for a message."""
    return (
        f"size {tuple(grid['size'])}, spacing {tuple(round(s, 4) for s in grid['spacing'])}, "
        f"origin {tuple(round(o, 3) for o in grid['origin'])}, "
        f"direction {tuple(round(d, 4) for d in grid['direction'])}"
    )


def _geometry(image: sitk.Image) -> str:
    return describe_geometry(geometry(image))


def load_case(
    patient_id: str,
    paths: dict[str, str],
    phases: list[str],
    mask_phase: str,
    mask_key: str = "mask",
    mask_label: int | None = None,
    min_tumor_volume_mm3: float = 0.0,
    hu_sanity: dict | None = None,
    mask_required: bool = True,
):
    """Read and check one patient; raise BadCase naming the file and the fix.

    Checks: every phase present, readable, complete and finite; the mask's tumour label
    (``mask_label``, see scan_checks.tumour_from_labels) non-empty, on the grid of the phase it
    was drawn on (``mask_phase``; the other phases may lie on any grid: registration maps them),
    not touching the volume border (it would be cut off) and at least ``min_tumor_volume_mm3``;
    with ``hu_sanity`` (imaging.hu_sanity) every phase's intensities are plausible HU.
    Returns (images by phase, binary tumour mask) as SimpleITK images; the mask is None when
    the patient has none and ``mask_required`` is false (an automatic segmentation provides it).
    """
    images = {phase: read_case_image(patient_id, paths.get(phase, ""), f"{phase} phase") for phase in phases}
    mask_path = paths.get(mask_key, "")
    if not mask_required and (not str(mask_path) or str(mask_path) == "nan"):
        return images, None
    mask = tumour_from_labels(
        patient_id, read_case_image(patient_id, mask_path, "tumour mask"), mask_path, mask_label
    )
    mask_array = sitk.GetArrayViewFromImage(mask)
    if not np.any(mask_array > 0):
        raise BadCase(patient_id, mask_path, "tumour mask is empty", "re-segment the tumour")
    if mask_phase not in images:
        raise BadCase(
            patient_id,
            mask_path,
            f"the tumour mask is said to be drawn on the {mask_phase} phase, which is not one of {phases}",
            "set cohort.mask_phase (or the manifest's mask_phase column) to the phase the mask was drawn on",
        )
    image = images[mask_phase]
    if not same_grid(image, mask):
        raise BadCase(
            patient_id,
            mask_path,
            f"tumour mask is not on the grid of the {mask_phase} phase it was drawn on (mask: "
            f"{_geometry(mask)}; {mask_phase}: {_geometry(image)})",
            "export the mask on the image it was drawn on, and name that phase in cohort.mask_phase "
            "(or the manifest's mask_phase column)",
        )
    foreground = mask_array > 0
    border = (
        foreground[0].any() or foreground[-1].any() or foreground[:, 0].any()
        or foreground[:, -1].any() or foreground[:, :, 0].any() or foreground[:, :, -1].any()
    )
    if border:
        raise BadCase(
            patient_id,
            mask_path,
            "tumour touches the border of the scanned volume, so part of it may be cut off",
            "use a scan whose field of view covers the whole tumour, or exclude the patient",
        )
    check_tumour_volume(patient_id, mask, mask_path, min_tumor_volume_mm3)
    if hu_sanity:
        for phase, image in images.items():
            check_intensities(patient_id, image, mask_on_grid(mask, image), paths[phase], phase, hu_sanity)
    return images, mask


def mask_on_grid(mask: sitk.Image, image: sitk.Image) -> sitk.Image:
    """The mask on ``image``'s grid (nearest neighbour, scanner frame, no registration).

    Phases of one study share the scanner's frame, so a few millimetres of patient motion move
    the tumour's median HU little; that is all the intensity check needs before registration.
    """
    if same_grid(image, mask):
        return mask
    return sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, mask.GetPixelID())


def preprocess_case(
    images: dict[str, sitk.Image],
    mask: sitk.Image | None,
    spacing,
    interpolator: str,
    reference: str,
    transforms: dict[str, sitk.Transform] | None = None,
    mask_phase: str | None = None,
):
    """Resample every phase (HU kept as int16) and the mask (nearest neighbour) to one grid.

    The grid is the reference phase's, resampled to ``spacing``; each phase goes through its
    registration transform (reference grid -> that phase; missing = identity) so voxels
    correspond across phases, and the mask through the transform of the phase it was drawn on
    (default the reference phase). A patient without a reference mask (``None``) gets an empty
    one: the segmentation stage reads that as "no reference" (no QC comparison, not a training case).
    """
    transforms = transforms or {}
    mask_phase = mask_phase or reference
    grid = reference_like(images[reference], spacing)
    out = {}
    for phase, image in images.items():
        resampled = sitk.Resample(
            sitk.Cast(image, sitk.sitkFloat32), grid, transforms.get(phase, sitk.Transform()),
            INTERPOLATORS[interpolator], -1024.0, sitk.sitkFloat32,
        )
        # B-spline overshoots; round back to integer HU like a scanner would store them.
        out[phase] = sitk.Cast(sitk.Round(sitk.Clamp(resampled, lowerBound=-1024, upperBound=3071)), sitk.sitkInt16)
    if mask is None:  # no reference mask: an empty one on the grid
        return out, sitk.Cast(grid * 0, sitk.sitkUInt8)
    tumor = sitk.Resample(
        sitk.Cast(mask > 0, sitk.sitkUInt8), grid, transforms.get(mask_phase, sitk.Transform()),
        sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8,
    )
    return out, tumor


def write_image(image: sitk.Image, path) -> None:
    from ..core.io import atomic_path

    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)
