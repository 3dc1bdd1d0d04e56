"""Checks of one scan that a reader does not make: complete files, finite values, which mask
label is the tumour, a measurable tumour, and intensities that are Hounsfield units.

Each check raises :class:`radiogenomics.core.cases.BadCase` naming the patient, the file and the fix.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.cases import BadCase

# Voxels below this are scanner padding outside the reconstruction circle, not air.
PADDING_BELOW_HU = -1100
BODY_THRESHOLD_HU = -500
# Air and gas: the darkest 5 % of the voxels below the body threshold (gas pockets have
# partial-volume rims), checked when the scan holds at least this many such voxels.
AIR_PERCENTILE = 5
MIN_AIR_VOXELS = 100


def nifti_expected_bytes(path: Path) -> int | None:
    """Header offset + voxel data size of a NIfTI file, from its header (None: not NIfTI)."""
    import nibabel

    try:
        image = nibabel.load(str(path))
    except Exception:  # not a NIfTI (or unreadable): the image reader reports it
        return None
    header = image.header
    if not isinstance(header, nibabel.Nifti1Header):
        return None
    voxels = int(np.prod(header.get_data_shape(), dtype=np.int64))
    # the loaded header's vox_offset is reset by nibabel; the data proxy keeps the file's
    return int(image.dataobj.offset) + voxels * header.get_data_dtype().itemsize


def _gzip_length(path: Path) -> tuple[int, str | None]:
    """Uncompressed length of a gzip file and, if the stream is damaged, why."""
    length = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 22):
                length += len(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        return length, str(error)
    return length, None


def check_file_complete(patient_id: str, path: str | Path, what: str) -> None:
    """A NIfTI file holds all the voxels its header announces (ITK reads a cut file silently).

    For .nii.gz the gzip trailer's length field is compared first (no decompression); only when
    it disagrees is the stream decompressed to find where it ends.
    """
    path = Path(path)
    if not path.is_file() or not _is_nifti(path):
        return
    expected = nifti_expected_bytes(path)
    if expected is None:
        return
    if path.name.lower().endswith(".nii"):
        actual, damage = path.stat().st_size, None
    else:
        with open(path, "rb") as handle:
            handle.seek(-4, 2)
            trailer_length = int.from_bytes(handle.read(4), "little")
        if trailer_length == expected % 2**32:
            return
        actual, damage = _gzip_length(path)
    if actual < expected or damage:
        detail = f"; the gzip stream is damaged: {damage}" if damage else ""
        raise BadCase(
            patient_id,
            path,
            f"{what} file is truncated: it holds {actual:,} of the {expected:,} bytes its header "
            f"announces{detail}",
            "copy or export the file again (an interrupted download or a full disk cuts files)",
        )


def _is_nifti(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def check_finite(patient_id: str, image: sitk.Image, path, what: str) -> None:
    """No NaN or infinite voxel (interpolation would spread it, and int16 storage turns it to 0).

    ITK's NIfTI reader replaces NaN by 0 without a word, so a floating-point NIfTI file's own
    voxels are counted (nibabel); other formats keep NaN and are counted as read.
    """
    if image.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        return
    path = Path(path)
    if path.is_file() and _is_nifti(path):
        import nibabel

        values = np.asanyarray(nibabel.load(str(path)).dataobj)
    else:
        values = sitk.GetArrayViewFromImage(image)
    bad = ~np.isfinite(values)
    if bad.any():
        raise BadCase(
            patient_id,
            path,
            f"{what} holds {int(bad.sum()):,} NaN or infinite voxel(s) of {bad.size:,}",
            "re-export the image from the scanner data, or replace the undefined voxels with a "
            "value (e.g. -1024 HU outside the body) before the study",
        )


def tumour_from_labels(
    patient_id: str, mask: sitk.Image, path, mask_label: int | None
) -> sitk.Image:
    """The binary tumour (uint8 0/1) of a mask; ``mask_label`` picks one label of several.

    Without ``mask_label`` a mask with more than one non-zero label is ambiguous (kidney +
    tumour, tumour + cyst ...) and is refused; values that are not whole numbers (a
    probability map, a mask interpolated linearly) are refused in any case.
    """
    array = sitk.GetArrayViewFromImage(mask)
    values = np.unique(array)
    if not np.all(np.isfinite(values)) or not np.array_equal(values, np.round(values)):
        odd = values[~np.isfinite(values) | (values != np.round(values))][:3]
        raise BadCase(
            patient_id,
            path,
            f"tumour mask holds values that are not labels (e.g. {', '.join(f'{v:g}' for v in odd)})",
            "export the segmentation as integer labels (threshold a probability map at 0.5)",
        )
    labels = [int(v) for v in values if v != 0]
    if mask_label is None:
        if len(labels) > 1:
            raise BadCase(
                patient_id,
                path,
                f"tumour mask has several labels {labels}: which one is the tumour is ambiguous",
                "set cohort.mask_label to the tumour's label (e.g. 2 in KiTS masks: 1 kidney, "
                "2 tumour), or export a mask with the tumour alone",
            )
        tumour = array != 0
    else:
        if labels and mask_label not in labels:
            raise BadCase(
                patient_id,
                path,
                f"tumour mask has no voxel of label {mask_label} (cohort.mask_label); labels "
                f"present: {labels}",
                "set cohort.mask_label to the tumour's label in these masks",
            )
        tumour = array == mask_label
    binary = sitk.GetImageFromArray(tumour.astype(np.uint8))
    binary.CopyInformation(mask)
    return binary


def check_tumour_volume(patient_id: str, tumour: sitk.Image, path, min_volume_mm3: float) -> None:
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(tumour)))
    volume = voxels * float(np.prod(tumour.GetSpacing()))
    if voxels and volume < min_volume_mm3:
        raise BadCase(
            patient_id,
            path,
            f"tumour volume {volume:.1f} mm3 ({voxels} voxels) is below "
            f"cohort.min_tumor_volume_mm3 = {min_volume_mm3:g}: too small for texture features",
            "check the mask (a stray label or a wrong file?), or lower cohort.min_tumor_volume_mm3",
        )


def _hu_range(settings: dict, phase: str):
    ranges = settings.get("tumour_median_hu") or {}
    return ranges.get(phase, ranges.get("default"))


def intensity_landmarks(image: sitk.Image, tumour: np.ndarray) -> dict:
    """Where air, fat and the tumour lie on this scan's intensity scale."""
    values = sitk.GetArrayViewFromImage(image)
    # every second voxel per axis: landmarks need percentiles, not every voxel
    sample = np.asarray(values[::2, ::2, ::2], dtype=float).ravel()
    scanned = sample[sample >= PADDING_BELOW_HU]
    body = scanned[scanned > BODY_THRESHOLD_HU]
    dark = scanned[scanned <= BODY_THRESHOLD_HU]
    return {
        # None: a volume cropped inside the body holds no air to check
        "air_hu": float(np.percentile(dark, AIR_PERCENTILE)) if dark.size >= MIN_AIR_VOXELS else None,
        "body": body,
        "tumour_median_hu": float(np.median(values[tumour])) if tumour.any() else np.nan,
    }


def check_intensities(
    patient_id: str, image: sitk.Image, tumour: sitk.Image, path, phase: str, settings: dict
) -> None:
    """The scan is in Hounsfield units: air, fat and tumour where they belong.

    - air: if the scan holds voxels darker than -500 HU (padding below -1100 HU left out), the
      darkest 5 % of them lie in ``air_hu`` (air around the body, bowel gas); a volume cropped
      inside the body has none and is not checked for air;
    - fat: at least ``min_fat_fraction`` of the body (> -500 HU) lies in ``fat_hu``;
    - tumour: its median lies in the phase's ``tumour_median_hu`` range.
    ``tumour`` must be on the grid of ``image``. A null setting skips that landmark. A CT
    stored without its rescale intercept (tissue near +1000) fails all three.
    """
    inside = sitk.GetArrayViewFromImage(tumour) > 0
    found = intensity_landmarks(image, inside)
    problems = []
    air = settings.get("air_hu")
    if air and found["air_hu"] is not None and not air[0] <= found["air_hu"] <= air[1]:
        problems.append(
            f"air and gas (darkest {AIR_PERCENTILE} % below {BODY_THRESHOLD_HU} HU) at "
            f"{found['air_hu']:.0f} HU (expected {air[0]}..{air[1]})"
        )
    fat, min_fraction = settings.get("fat_hu"), settings.get("min_fat_fraction")
    if fat and min_fraction:
        body = found["body"]
        fraction = float(np.mean((body >= fat[0]) & (body <= fat[1]))) if body.size else 0.0
        if fraction < min_fraction:
            problems.append(
                f"{100 * fraction:.1f} % of the body in the fat range {fat[0]}..{fat[1]} HU "
                f"(expected >= {100 * min_fraction:g} %)"
            )
    tumour_range = _hu_range(settings, phase)
    median = found["tumour_median_hu"]
    if tumour_range and not tumour_range[0] <= median <= tumour_range[1]:
        problems.append(
            f"tumour median {median:.0f} HU (expected {tumour_range[0]}..{tumour_range[1]} in the "
            f"{phase} phase)"
        )
    if problems:
        offset_hint = (
            " (values near +1000 where tissue should be: stored without its rescale intercept?)"
            if median > 800
            else ""
        )
        raise BadCase(
            patient_id,
            path,
            f"{phase} phase intensities are not plausible HU: {'; '.join(problems)}{offset_hint}",
            "export the CT in Hounsfield units (HU = stored value x RescaleSlope + "
            "RescaleIntercept); if the scan is right, widen imaging.hu_sanity",
        )
