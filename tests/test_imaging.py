import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from radiogenomics.core.cases import BadCase
from radiogenomics.imaging.ct import load_case, preprocess_case, read_image

SPACING = (0.8, 0.8, 2.5)


def volume(shape=(12, 40, 40), seed=0):
    rng = np.random.default_rng(seed)
    array = rng.normal(40, 10, shape).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    image.SetOrigin((-10.0, 5.0, 30.0))
    return image


def tumour_mask(image, box=(slice(4, 8), slice(10, 25), slice(12, 30))):
    array = np.zeros(sitk.GetArrayViewFromImage(image).shape, np.uint8)
    array[box] = 1
    mask = sitk.GetImageFromArray(array)
    mask.CopyInformation(image)
    return mask


def write_case(tmp_path, image, mask, phases=("arterial", "venous")):
    paths = {}
    for phase in phases:
        paths[phase] = str(tmp_path / f"{phase}.nii.gz")
        sitk.WriteImage(image, paths[phase])
    paths["mask"] = str(tmp_path / "mask.nii.gz")
    sitk.WriteImage(mask, paths["mask"])
    return paths


def test_good_case_loads(tmp_path):
    image = volume()
    images, mask = load_case("P1", write_case(tmp_path, image, tumour_mask(image)), ["arterial", "venous"], "venous")
    assert set(images) == {"arterial", "venous"} and mask.GetSize() == image.GetSize()


@pytest.mark.parametrize(
    "defect, reason",
    [
        ("missing_phase", "arterial phase is missing"),
        ("empty_mask", "tumour mask is empty"),
        ("off_grid", "not on the grid"),
        ("border", "touches the border"),
        ("unreadable", "cannot be read"),
        ("no_file", "does not exist"),
    ],
)
def test_bad_cases_name_patient_file_and_fix(tmp_path, defect, reason):
    image = volume()
    mask = tumour_mask(image)
    if defect == "empty_mask":
        mask = tumour_mask(image, box=(slice(0, 0),) * 3)
    if defect == "border":
        mask = tumour_mask(image, box=(slice(0, 5), slice(10, 25), slice(12, 30)))
    if defect == "off_grid":
        mask = tumour_mask(image)
        mask.SetSpacing((1.0, 1.0, 1.0))
    paths = write_case(tmp_path, image, mask)
    if defect == "missing_phase":
        paths["arterial"] = ""
    if defect == "unreadable":
        with open(paths["venous"], "wb") as handle:
            handle.write(b"not an image at all")
    if defect == "no_file":
        paths["venous"] = str(tmp_path / "nowhere.nii.gz")
    with pytest.raises(BadCase) as error:
        load_case("P7", paths, ["arterial", "venous"], "venous")
    assert reason in str(error.value)
    assert "P7" in str(error.value) and "Fix:" in str(error.value)
    assert error.value.path


def write_dicom_series(image, folder):
    folder.mkdir()
    array = sitk.GetArrayFromImage(image)
    series = generate_uid()
    for k, plane in enumerate(array):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"{k:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = "CT", series, series
        ds.PatientID, ds.InstanceNumber = "P1", k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        ds.ImagePositionPatient = list(position)
        ds.PixelSpacing = [image.GetSpacing()[1], image.GetSpacing()[0]]
        ds.SliceThickness = image.GetSpacing()[2]
        ds.Rows, ds.Columns = plane.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation, ds.SamplesPerPixel = 1, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = plane.astype(np.int16).tobytes()
        ds.save_as(folder / f"{k:03d}.dcm", enforce_file_format=True)


def test_dicom_series_matches_source_geometry_and_values(tmp_path):
    image = volume()
    write_dicom_series(image, tmp_path / "series")
    read = read_image(tmp_path / "series")
    assert read.GetSize() == image.GetSize()
    assert np.allclose(read.GetSpacing(), image.GetSpacing())
    assert np.allclose(read.GetOrigin(), image.GetOrigin())
    assert np.array_equal(sitk.GetArrayFromImage(read), sitk.GetArrayFromImage(image))


def test_resampling_keeps_extent_and_mask_labels(tmp_path):
    image = volume()
    mask = tumour_mask(image)
    resampled, tumor = preprocess_case({"venous": image}, mask, (1.0, 1.0, 1.0), "bspline", reference="venous")
    out = resampled["venous"]
    assert out.GetSpacing() == (1.0, 1.0, 1.0)
    assert out.GetSize() == (32, 32, 30)  # 40*0.8, 40*0.8, 12*2.5
    # the first voxel faces agree: origin' = origin + (s' - s) / 2 (identity direction)
    expected_origin = np.asarray(image.GetOrigin()) + (1.0 - np.asarray(SPACING)) / 2
    assert out.GetOrigin() == pytest.approx(tuple(expected_origin))
    assert out.GetPixelID() == sitk.sitkInt16
    labels = np.unique(sitk.GetArrayViewFromImage(tumor))
    assert set(labels) == {0, 1}
    # nearest neighbour keeps the physical volume of a box mask within one voxel layer
    native_ml = sitk.GetArrayViewFromImage(mask).sum() * np.prod(SPACING)
    resampled_ml = sitk.GetArrayViewFromImage(tumor).sum()
    assert abs(resampled_ml - native_ml) / native_ml < 0.2


# --- damaged and odd inputs, each crafted from a small image ---------------------------------


def abdomen(offset_hu=0, spacing=SPACING, shape=(14, 48, 48)):
    """Air around a body of fat and soft tissue holding a 120-HU tumour (like a venous CT)."""
    z, y, x = np.indices(shape)
    radius = np.hypot((y - shape[1] / 2) / (shape[1] * 0.45), (x - shape[2] / 2) / (shape[2] * 0.45))
    array = np.full(shape, -1000, np.int16)
    array[radius < 1] = -100
    array[radius < 0.75] = 40
    array[4:9, 18:30, 16:32] = 120
    image = sitk.GetImageFromArray(array + np.int16(offset_hu))
    image.SetSpacing(spacing)
    image.SetOrigin((-10.0, 5.0, 30.0))
    return image


def abdomen_case(tmp_path, **kwargs):
    image = abdomen(**kwargs)
    return image, write_case(tmp_path, image, tumour_mask(image, (slice(4, 9), slice(18, 30), slice(16, 32))))


PHASES = ["arterial", "venous"]


def bad_case(paths, **kwargs) -> BadCase:
    with pytest.raises(BadCase) as error:
        load_case("P9", paths, PHASES, "venous", **kwargs)
    assert "P9" in str(error.value) and "Fix:" in str(error.value)
    return error.value


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_truncated_nifti_is_refused_not_read_as_zeros(tmp_path, suffix):
    image = abdomen()
    path = tmp_path / f"cut{suffix}"
    sitk.WriteImage(image, str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    # SimpleITK itself reads the cut file without complaint: the check is needed.
    assert sitk.ReadImage(str(path)).GetSize() == image.GetSize()
    _, paths = abdomen_case(tmp_path)
    paths["venous"] = str(path)
    error = bad_case(paths)
    assert "truncated" in error.reason and error.path == str(path)


def test_complete_nifti_passes_the_length_check(tmp_path):
    from radiogenomics.imaging.scan_checks import check_file_complete, nifti_expected_bytes

    path = tmp_path / "venous.nii.gz"
    sitk.WriteImage(abdomen(), str(path))
    assert nifti_expected_bytes(path) == 352 + 14 * 48 * 48 * 2
    check_file_complete("P1", path, "venous phase")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_nan_voxels_are_refused(tmp_path, suffix):
    image = sitk.Cast(abdomen(), sitk.sitkFloat32)
    array = sitk.GetArrayFromImage(image)
    array[7, 24, 24] = np.nan
    with_nan = sitk.GetImageFromArray(array)
    with_nan.CopyInformation(image)
    _, paths = abdomen_case(tmp_path)
    paths["arterial"] = str(tmp_path / f"arterial{suffix}")
    sitk.WriteImage(with_nan, paths["arterial"])
    error = bad_case(paths)
    assert "1 NaN or infinite voxel" in error.reason and error.path == paths["arterial"]


def test_mask_labels_need_cohort_mask_label(tmp_path):
    image, paths = abdomen_case(tmp_path)
    labels = np.zeros(sitk.GetArrayViewFromImage(image).shape, np.uint8)
    labels[3:11, 14:34, 12:36] = 1  # kidney
    labels[5:8, 20:28, 18:30] = 2  # tumour inside it
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(image)
    sitk.WriteImage(mask, paths["mask"])
    error = bad_case(paths)
    assert "several labels [1, 2]" in error.reason and "cohort.mask_label" in error.fix
    _, tumour = load_case("P9", paths, PHASES, "venous", mask_label=2)
    assert sitk.GetArrayViewFromImage(tumour).sum() == (labels == 2).sum()
    assert set(np.unique(sitk.GetArrayViewFromImage(tumour))) == {0, 1}
    assert "no voxel of label 3" in bad_case(paths, mask_label=3).reason


def test_float_masks_with_labels_pass_and_probability_maps_do_not(tmp_path):
    image, paths = abdomen_case(tmp_path)
    mask = sitk.Cast(sitk.ReadImage(paths["mask"]), sitk.sitkFloat32)
    sitk.WriteImage(mask, paths["mask"])  # a 0.0 / 1.0 float mask (TotalSegmentator-like)
    _, tumour = load_case("P9", paths, PHASES, "venous")
    assert sitk.GetArrayViewFromImage(tumour).sum() == 5 * 12 * 16
    sitk.WriteImage(mask * 0.6, paths["mask"])
    assert "not labels (e.g. 0.6)" in bad_case(paths).reason


def test_one_voxel_tumour_is_below_the_minimum_volume(tmp_path):
    image, paths = abdomen_case(tmp_path)
    sitk.WriteImage(tumour_mask(image, (slice(6, 7), slice(24, 25), slice(24, 25))), paths["mask"])
    load_case("P9", paths, PHASES, "venous")  # no minimum: accepted
    error = bad_case(paths, min_tumor_volume_mm3=500)
    assert "tumour volume 1.6 mm3 (1 voxels)" in error.reason and error.path == paths["mask"]


def test_mask_off_grid_by_origin_or_direction_prints_them(tmp_path):
    image, paths = abdomen_case(tmp_path)
    mask = sitk.ReadImage(paths["mask"])
    mask.SetOrigin((-10.0, 5.0, 32.5))
    sitk.WriteImage(mask, paths["mask"])
    reason = bad_case(paths).reason
    assert "origin (-10.0, 5.0, 32.5)" in reason and "origin (-10.0, 5.0, 30.0)" in reason
    mask.SetOrigin(image.GetOrigin())
    mask.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))
    sitk.WriteImage(mask, paths["mask"])
    assert "direction (-1.0, 0.0, 0.0" in bad_case(paths).reason


HU_SANITY = {
    "air_hu": [-1100, -900],
    "fat_hu": [-190, -30],
    "min_fat_fraction": 0.01,
    "tumour_median_hu": {"default": [-100, 400], "venous": [-50, 350]},
}


def test_plausible_hu_pass_and_ct_without_rescale_intercept_is_refused(tmp_path):
    _, paths = abdomen_case(tmp_path)
    load_case("P9", paths, PHASES, "venous", hu_sanity=HU_SANITY)
    raw = abdomen(offset_hu=1024)  # stored values, intercept -1024 never applied
    sitk.WriteImage(raw, paths["venous"])
    error = bad_case(paths, hu_sanity=HU_SANITY)
    assert error.path == paths["venous"]
    assert "tumour median 1144 HU (expected -50..350 in the venous phase)" in error.reason
    assert "0.0 % of the body in the fat range -190..-30 HU" in error.reason
    assert "rescale intercept" in error.reason
    assert "RescaleIntercept" in error.fix


def test_hu_sanity_checks_phases_on_other_grids_through_the_mask(tmp_path):
    """Phases come on their own grids (registration maps them later); the check still runs."""
    image, paths = abdomen_case(tmp_path)
    shifted = abdomen(spacing=(0.9, 0.9, 3.0), shape=(16, 54, 54))
    shifted.SetOrigin((-11.5, 3.5, 27.0))
    sitk.WriteImage(shifted, paths["arterial"])
    load_case("P9", paths, PHASES, "venous", hu_sanity=HU_SANITY)
    raw = abdomen(offset_hu=1024, spacing=(0.9, 0.9, 3.0), shape=(16, 54, 54))
    raw.SetOrigin((-11.5, 3.5, 27.0))
    sitk.WriteImage(raw, paths["arterial"])
    error = bad_case(paths, hu_sanity=HU_SANITY)
    assert error.path == paths["arterial"] and "arterial phase" in error.reason
    assert "tumour median 1144 HU" in error.reason


def test_missing_fat_and_misplaced_air_are_each_named(tmp_path):
    image, paths = abdomen_case(tmp_path)
    array = sitk.GetArrayFromImage(image)
    array[array == -100] = 40  # no fat anywhere
    lean = sitk.GetImageFromArray(array)
    lean.CopyInformation(image)
    sitk.WriteImage(lean, paths["arterial"])
    reason = bad_case(paths, hu_sanity=HU_SANITY).reason
    assert "0.0 % of the body in the fat range" in reason and "air" not in reason
    assert "arterial phase" in reason
    # air at -700 HU: a scale error (or intercept -700 instead of -1024)
    array = sitk.GetArrayFromImage(image)
    array[array == -1000] = -700
    odd_air = sitk.GetImageFromArray(array)
    odd_air.CopyInformation(image)
    sitk.WriteImage(odd_air, paths["arterial"])
    reason = bad_case(paths, hu_sanity=HU_SANITY).reason
    assert "air and gas (darkest 5 % below -500 HU) at -700 HU (expected -1100..-900)" in reason
    # a scan cropped inside the body holds no air and is not checked for it
    array[array == -700] = -100
    cropped = sitk.GetImageFromArray(array)
    cropped.CopyInformation(image)
    sitk.WriteImage(cropped, paths["arterial"])
    load_case("P9", paths, PHASES, "venous", hu_sanity=HU_SANITY)


def test_dicom_series_with_a_missing_slice_names_the_series(tmp_path):
    image = abdomen()
    write_dicom_series(image, tmp_path / "venous")
    (tmp_path / "venous" / "006.dcm").unlink()
    mask_path = tmp_path / "mask.nii.gz"
    sitk.WriteImage(tumour_mask(image, (slice(4, 9), slice(18, 30), slice(16, 32))), str(mask_path))
    error = bad_case({"arterial": str(tmp_path / "venous"), "venous": str(tmp_path / "venous"), "mask": str(mask_path)})
    # the series is blamed, not the mask drawn on the complete one
    assert error.path == str(tmp_path / "venous")
    assert "DICOM series 1." in error.reason and "(13 slices)" in error.reason
    assert "slice gap of 5.000 mm between slices at 42.500 and 47.500 mm" in error.reason
    assert "about 1 slice(s) missing" in error.reason
