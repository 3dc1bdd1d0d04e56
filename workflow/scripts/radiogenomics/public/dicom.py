"""Read one DICOM series folder into a SimpleITK image (shared with the imaging stage)."""

from __future__ import annotations

from pathlib import Path

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
    try:
        return reader.Execute()
    except RuntimeError as error:
        raise BadCase(
            patient_id,
            folder,
            f"unreadable DICOM series: {error}".splitlines()[0],
            "re-download the series",
            stage="imaging",
        ) from error
