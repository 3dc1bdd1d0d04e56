"""DICOM series: read one folder into a SimpleITK image, check its slice positions.

Shared by the acquisition (downloaded series) and the imaging stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radiogenomics.core.cases import BadCase


def read_dicom_series(folder: str | Path, patient_id: str = "unknown") -> sitk.Image:
    """The single series in ``folder``; GDCM orders slices by position along the normal.

    Rescale slope/intercept are applied, so CT values come out in HU. A folder with no series
    or several series is a BadCase: the caller must say which series it means.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BadCase(
            patient_id,
            folder,
            "DICOM folder does not exist",
            "check the path in the manifest",
            stage="imaging",
        )
    series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise BadCase(
            patient_id,
            folder,
            "no DICOM series found",
            "point the manifest at a folder of .dcm files of one series",
            stage="imaging",
        )
    if len(series_ids) > 1:
        raise BadCase(
            patient_id,
            folder,
            f"{len(series_ids)} DICOM series in one folder ({', '.join(series_ids)})",
            "put each series in its own folder",
            stage="imaging",
        )
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_ids[0])
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise BadCase(
            patient_id,
            folder,
            f"unreadable DICOM series: {error}".splitlines()[0],
            "re-download the series",
            stage="imaging",
        ) from error
    try:
        check_uniform_slice_positions(*series_slice_geometry(reader, len(files)))
    except NonUniformSlices as problem:
        raise BadCase(
            patient_id,
            folder,
            f"DICOM series {series_ids[0]} ({len(files)} slices): {problem}",
            "get the complete series again (re-download or re-export it); a mask drawn on the "
            "incomplete series must be redrawn on the complete one",
            stage="imaging",
        ) from None
    return image


def series_slice_geometry(reader: sitk.ImageSeriesReader, n_slices: int):
    """Every slice's ImagePositionPatient (n x 3) and the first slice's ImageOrientationPatient
    from a reader run with MetaDataDictionaryArrayUpdateOn (no tags: no positions to check)."""

    def tag(index, key):
        return [float(v) for v in reader.GetMetaData(index, key).split("\\")]

    if not n_slices or not reader.HasMetaDataKey(0, "0020|0037"):
        return [], [1, 0, 0, 0, 1, 0]
    positions = [tag(i, "0020|0032") for i in range(n_slices) if reader.HasMetaDataKey(i, "0020|0032")]
    return positions, tag(0, "0020|0037")


class NonUniformSlices(ValueError):
    """Slice positions of a series that are not evenly spaced (a missing or repeated slice)."""


def check_uniform_slice_positions(
    positions, orientation, rel_tolerance: float = 0.1, abs_tolerance_mm: float = 0.02
) -> float | None:
    """The common slice spacing (mm) of a series, or NonUniformSlices naming the first bad gap.

    ``positions`` are the slices' ImagePositionPatient (n x 3, any order) and ``orientation``
    the six ImageOrientationPatient direction cosines. Positions are projected on the slice
    normal (row x column) and sorted. The smallest gap is taken as the spacing, because a
    missing slice can only widen a gap; a gap that differs from it by more than the tolerance
    (10% of the spacing, so positions rounded to a few decimals pass) is refused instead of
    being averaged into a wrong spacing. None for fewer than two slices.
    """
    cosines = np.asarray(orientation, dtype=float).reshape(2, 3)
    normal = np.cross(cosines[0], cosines[1])
    along = np.sort(np.asarray(positions, dtype=float).reshape(-1, 3) @ normal)
    if len(along) < 2:
        return None
    gaps = np.diff(along)
    spacing = float(gaps.min())
    tolerance = max(abs_tolerance_mm, rel_tolerance * spacing)
    if spacing <= tolerance:
        k = int(gaps.argmin())
        raise NonUniformSlices(
            f"two slices at the same position ({along[k]:.3f} mm along the slice normal)"
        )
    wrong = np.flatnonzero(np.abs(gaps - spacing) > tolerance)
    if len(wrong):
        k = int(wrong[0])
        missing = round(gaps[k] / spacing) - 1
        kind = f"about {missing} slice(s) missing" if missing >= 1 else "irregular spacing"
        raise NonUniformSlices(
            f"slice gap of {gaps[k]:.3f} mm between slices at {along[k]:.3f} and "
            f"{along[k + 1]:.3f} mm along the slice normal, where the series spacing is "
            f"{spacing:.3f} mm ({kind}); {len(wrong)} irregular gap(s) in {len(along)} slices"
        )
    return spacing
