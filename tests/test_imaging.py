import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from radiogenomics.cases import BadCase
from radiogenomics.imaging import load_case, preprocess_case, read_image

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
    images, mask = load_case("P1", write_case(tmp_path, image, tumour_mask(image)), ["arterial", "venous"])
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
        load_case("P7", paths, ["arterial", "venous"])
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
    resampled, tumor = preprocess_case({"venous": image}, mask, (1.0, 1.0, 1.0), "bspline")
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
