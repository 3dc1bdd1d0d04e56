import gzip
from io import BytesIO

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk

from radiogenomics.core import io

# --- label maps ------------------------------------------------------------------------------


def _label_image(array, pixel=None):
    """A label image on an anisotropic, rotated grid (axes swapped, z flipped)."""
    image = sitk.GetImageFromArray(array)
    if pixel is not None:
        image = sitk.Cast(image, pixel)
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((-12.5, 4.0, 30.25))
    image.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, -1))
    return image


def _labels(shape=(6, 7, 8), k=4, seed=0):
    return np.random.default_rng(seed).integers(0, k, size=shape).astype(np.uint8)


def _nibabel_zyx(path):
    """The voxels as nibabel reads them, in SimpleITK's (z, y, x) order."""
    return np.asanyarray(nibabel.load(str(path)).dataobj).transpose(2, 1, 0)


@pytest.mark.parametrize("name", ["mask.nii.gz", "mask.nii"])
def test_label_map_is_uint8_with_label_intent_and_unchanged_voxels(tmp_path, name):
    labels = _labels()
    image = _label_image(labels)
    path = tmp_path / name
    io.write_label_map(image, path)
    loaded = nibabel.load(str(path))
    assert loaded.get_data_dtype() == np.uint8
    assert loaded.header.get_intent()[0] == "label"
    assert int(loaded.header["intent_code"]) == 1002 == io.NIFTI_INTENT_LABEL
    np.testing.assert_array_equal(_nibabel_zyx(path), labels)
    again = sitk.ReadImage(str(path))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(again), labels)
    assert again.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_allclose(again.GetSpacing(), image.GetSpacing())
    np.testing.assert_allclose(again.GetOrigin(), image.GetOrigin())
    np.testing.assert_allclose(again.GetDirection(), image.GetDirection(), atol=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def test_label_map_header_differs_from_simpleitks_only_in_the_intent(tmp_path):
    image = _label_image(_labels())
    sitk.WriteImage(image, str(tmp_path / "plain.nii.gz"), useCompression=True)
    io.write_label_map(image, tmp_path / "label.nii.gz")
    plain, label = (
        nibabel.load(str(tmp_path / f"{name}.nii.gz")).header for name in ("plain", "label")
    )
    assert plain.get_intent()[0] == "none"
    for field in plain.keys():
        if not field.startswith("intent_"):
            np.testing.assert_array_equal(label[field], plain[field], err_msg=field)
    np.testing.assert_array_equal(nibabel.load(str(tmp_path / "label.nii.gz")).affine,
                                  nibabel.load(str(tmp_path / "plain.nii.gz")).affine)  # fmt: skip
    # the same header bytes as nibabel's own set_intent on SimpleITK's header (read raw:
    # nibabel.load resets vox_offset)
    raw = nibabel.Nifti1Header.from_fileobj(
        BytesIO(gzip.decompress((tmp_path / "plain.nii.gz").read_bytes())), check=False
    )
    raw.set_intent("label", name="label")
    assert gzip.decompress((tmp_path / "label.nii.gz").read_bytes())[:348] == raw.binaryblock


def test_label_map_of_another_integer_type_keeps_its_values(tmp_path):
    labels = _labels(k=6)
    io.write_label_map(_label_image(labels, sitk.sitkInt16), tmp_path / "habitats.nii.gz")
    assert nibabel.load(str(tmp_path / "habitats.nii.gz")).get_data_dtype() == np.uint8
    np.testing.assert_array_equal(_nibabel_zyx(tmp_path / "habitats.nii.gz"), labels)


@pytest.mark.parametrize("value", [0.5, -1, 256])
def test_label_map_refuses_values_a_uint8_cannot_hold(tmp_path, value):
    array = np.zeros((3, 4, 5), dtype=np.float32)
    array[1, 2, 3] = value
    with pytest.raises(ValueError, match="0..255"):
        io.write_label_map(_label_image(array), tmp_path / "mask.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_label_map_is_byte_identical_when_rewritten(tmp_path):
    image = _label_image(_labels())
    io.write_label_map(image, tmp_path / "a" / "mask.nii.gz")
    io.write_label_map(image, tmp_path / "b" / "mask.nii.gz")
    first = (tmp_path / "a" / "mask.nii.gz").read_bytes()
    assert first == (tmp_path / "b" / "mask.nii.gz").read_bytes()
    assert first[4:8] == b"\0\0\0\0"  # gzip MTIME unset
    assert not first[3] & 0x08  # gzip FNAME flag unset: the temporary file's name is not kept
    assert gzip.decompress(first)[:4] == (348).to_bytes(4, "little")


# --- 3D Slicer colour tables ----------------------------------------------------------------


def _parse_ctbl(path):
    """(header lines, {value: (name, (r, g, b, a))}) read as Slicer reads the text format."""
    header, table = [], {}
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            header.append(line)
            continue
        value, name, *rgba = line.split()
        table[int(value)] = (name, tuple(int(c) for c in rgba))
    return header, table


def test_color_table_parses_back_to_its_labels_and_colours(tmp_path):
    entries = [(0, "Background", (0, 0, 0, 0)), (1, "sub1_arterial_31HU", (43, 131, 186, 255)),
               (2, "sub2_arterial_142HU", (215, 25, 28, 255))]  # fmt: skip
    path = tmp_path / "habitats.ctbl"
    io.write_color_table(entries, path, comments=["two habitats"])
    header, table = _parse_ctbl(path)
    assert header == ["# Color table file habitats.ctbl", "# two habitats", "# 3 values"]
    assert table == {value: (name, rgba) for value, name, rgba in entries}


@pytest.mark.parametrize(
    "entries, problem",
    [
        ([(1, "sub 1", (1, 2, 3, 255))], "whitespace"),
        ([(1, "a", (1, 2, 3, 255)), (1, "b", (1, 2, 3, 255))], "repeated"),
        ([(1, "a", (1, 2, 300, 255))], "0..255"),
        ([(1, "a", (1, 2, 3))], "four values"),
    ],
)
def test_color_table_refuses_what_slicer_would_misread(tmp_path, entries, problem):
    with pytest.raises(ValueError, match=problem):
        io.write_color_table(entries, tmp_path / "bad.ctbl")
    assert list(tmp_path.iterdir()) == []
