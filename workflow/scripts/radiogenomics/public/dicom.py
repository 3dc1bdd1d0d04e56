"""Read one DICOM series folder into a SimpleITK image (shared with the imaging stage)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radiogenomics.cases import BadCase


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
    problem = check_uniform_slices(series_slice_positions(reader, len(files)))
    if problem:
        raise BadCase(
            patient_id,
            folder,
            f"DICOM series {series_ids[0]} ({len(files)} slices): {problem}",
            "get the complete series again (re-download or re-export it); a mask drawn on the "
            "incomplete series must be redrawn on the complete one",
            stage="imaging",
        )
    return image


# Scanners write positions rounded to about 1e-3 mm; a missing slice moves one by a whole spacing.
SLICE_POSITION_TOLERANCE_MM = 0.1


def check_uniform_slices(
    positions, tolerance_mm: float = SLICE_POSITION_TOLERANCE_MM
) -> str | None:
    """Why slice positions (mm along the slice normal, any order) are not one evenly spaced
    stack, or None. Reading such a series as a volume misplaces slices (ITK assumes the first
    spacing throughout), so it must be refused, not resampled.
    """
    positions = np.sort(np.asarray(positions, dtype=float))
    if len(positions) < 3:
        return None
    gaps = np.diff(positions)
    if np.any(gaps <= tolerance_mm):
        k = int(np.argmax(gaps <= tolerance_mm))
        return (
            f"two slices share the position {positions[k]:.2f} mm (duplicated slices, or two "
            "series in one)"
        )
    spacing = float(np.median(gaps))
    odd = np.flatnonzero(np.abs(gaps - spacing) > tolerance_mm)
    if not len(odd):
        return None
    k = int(odd[0])
    missing = int(round(gaps[k] / spacing)) - 1
    hint = f", about {missing} slice(s) missing" if missing > 0 else ""
    return (
        f"slice positions are not evenly spaced: {len(odd)} gap(s) differ from the spacing of "
        f"{spacing:.3g} mm, first {gaps[k]:.3g} mm between {positions[k]:.2f} and "
        f"{positions[k + 1]:.2f} mm{hint}"
    )


def series_slice_positions(reader: sitk.ImageSeriesReader, n_slices: int) -> list[float]:
    """Each slice's ImagePositionPatient along the slice normal (from ImageOrientationPatient)."""

    def tag(index, key):
        return [float(v) for v in reader.GetMetaData(index, key).split("\\")]

    if not n_slices or not reader.HasMetaDataKey(0, "0020|0037"):
        return []
    orientation = np.asarray(tag(0, "0020|0037"))
    normal = np.cross(orientation[:3], orientation[3:])
    return [
        float(np.dot(tag(i, "0020|0032"), normal))
        for i in range(n_slices)
        if reader.HasMetaDataKey(i, "0020|0032")
    ]
