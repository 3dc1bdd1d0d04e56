import numpy as np
import pydicom
import pytest
from fake_servers import source_volume, write_dicom_series

from radiogenomics.imaging.dicom import (
    NonUniformSlices,
    check_uniform_slice_positions,
    read_dicom_series,
)


def headers(folder):
    read = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.glob("*.dcm"))]
    return [h.ImagePositionPatient for h in read], read[0].ImageOrientationPatient


@pytest.fixture
def series(tmp_path):
    """Writes source volume ``seed`` as a DICOM series in tmp_path, its orientation turned by
    ``rotation``; returns the folder, the slice spacing written, positions and orientation."""

    def write(seed, rotation=None):
        volume, spacing, origin, direction = source_volume(seed)
        if rotation is not None:
            direction = direction @ rotation
        write_dicom_series(
            volume,
            spacing,
            origin,
            direction,
            tmp_path,
            patient_id="P",
            series_uid="1.2",
            description="x",
        )
        return (tmp_path, spacing[2], *headers(tmp_path))

    return write


def test_uniform_oblique_series_gives_the_spacing_simpleitk_reads(series):
    tilted_normal = np.array([[1, 0, 0], [0, 0.8, -0.6], [0, 0.6, 0.8]])
    folder, spacing, positions, orientation = series(0, tilted_normal)
    found = check_uniform_slice_positions(positions[::-1], orientation)  # order does not matter
    assert found == pytest.approx(spacing, abs=1e-5)
    assert found == pytest.approx(read_dicom_series(folder).GetSpacing()[2], abs=1e-5)


def test_a_slice_missing_mid_series_is_refused_with_the_gap(series):
    _, _, positions, orientation = series(1)
    del positions[2]  # slices at 0, 2.5, 7.5, 10 mm along the normal (origin's own offset aside)
    with pytest.raises(
        NonUniformSlices,
        match=r"gap of 5\.000 mm .* spacing is 2\.500 mm "
        r"\(about 1 slice\(s\) missing\); 1 irregular gap\(s\) in 4 slices",
    ):
        check_uniform_slice_positions(positions, orientation)


def test_hand_made_positions():
    axial = [1, 0, 0, 0, 1, 0]
    assert check_uniform_slice_positions([[0, 0, z] for z in (3, 0, 1.5, 4.5)], axial) == 1.5
    assert check_uniform_slice_positions([[0, 0, 7]], axial) is None
    with pytest.raises(NonUniformSlices, match="same position"):
        check_uniform_slice_positions([[0, 0, 0], [0, 0, 1], [0, 0, 1]], axial)
    with pytest.raises(NonUniformSlices, match="irregular spacing"):
        check_uniform_slice_positions([[0, 0, 0], [0, 0, 1], [0, 0, 2.3]], axial)
    # within tolerance: rounding of positions written with two decimals
    assert check_uniform_slice_positions([[0, 0, z] for z in (0, 0.33, 0.67, 1.0)], axial) == (
        pytest.approx(0.33)
    )
    # coronal slices: the normal is the y axis, so x and z offsets do not matter
    coronal = [1, 0, 0, 0, 0, -1]
    assert check_uniform_slice_positions([[5, y, 9] for y in (0, 2, 4)], coronal) == 2
