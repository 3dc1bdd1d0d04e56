"""Masks drawn on any phase (corrections, second readers) carried onto the analysis grid."""

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radiogenomics.imaging import drawn_masks, registration
from radiogenomics.cohort.synthetic import generator as synthetic
from radiogenomics.core.cases import BadCase
from radiogenomics.imaging.ct import geometry, load_case, preprocess_case, write_image
from radiogenomics.segmentation import masks

RIGID = {"reference": "venous", "method": "rigid"}
LABELS = {"kidney": 1, "tumor": 2}


def dice(a, b) -> float:
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="module")
def misaligned(tmp_path_factory):
    """A synthetic patient whose arterial phase is planted a few mm and degrees off the venous
    (reference) phase, on its own grid, with the planted tumour mask drawn on the raw arterial
    grid; registered as the imaging stage does. Returns the raw mask's path, the registration
    record, the analysis CT and the planted tumour on the analysis grid."""
    root = tmp_path_factory.mktemp("misaligned")
    cohort = synthetic.simulate_cohort({"seed": 7, "n_internal": 10, "n_external": 2, "n_genes": 300}, "venous", "arterial")
    row = cohort["phantoms"].iloc[4].copy()
    # a smaller field of view keeps the registration to seconds
    row.update(pd.Series({"fov_x": 120.0, "fov_y": 110.0, "format": "nifti", "centre_x": 0.0, "centre_y": 0.0,
                          "kidney_x": 30.0, "kidney_y": 0.0}))  # fmt: skip
    manifest = synthetic.write_phantom(row, root / "raw", root / "truth")
    assert manifest["mask_phase"] == "arterial"
    images, mask = load_case("P", manifest, ["arterial", "venous"], "arterial")
    record = registration.register_case("P", images, mask, RIGID, seed=3)
    resampled, _ = preprocess_case(images, None, (1.0, 1.0, 1.0), "linear", "venous", registration.transforms_of(record))
    ct = resampled["venous"]
    planted = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "truth" / "habitats.nii.gz"))) > 0
    return {"mask": manifest["mask"], "images": images, "registration": record, "ct": ct, "planted": planted,
            "root": root}  # fmt: skip


def test_registration_records_every_phase_grid(misaligned):
    record, images = misaligned["registration"], misaligned["images"]
    assert {phase: entry["grid"] for phase, entry in record["phases"].items()} == {
        phase: geometry(image) for phase, image in images.items()
    }
    assert record["phases"]["arterial"]["grid"] != record["phases"]["venous"]["grid"]


def test_a_correction_on_the_raw_arterial_grid_goes_through_its_registration(misaligned, tmp_path):
    """The planted tumour drawn on the raw (moved) arterial series lands on the planted tumour of
    the analysis grid; resampling it in physical coordinates leaves it off by the motion."""
    raw = sitk.ReadImage(misaligned["mask"])
    ct, planted = misaligned["ct"], misaligned["planted"]
    carried, phase = drawn_masks.carried_to_analysis_grid("P", raw, misaligned["mask"], misaligned["registration"], ct)
    assert phase == "arterial"
    physical = masks.on_grid(raw, ct)  # what a correction got before: physical coordinates only
    registered, unregistered = dice(sitk.GetArrayFromImage(carried), planted), dice(sitk.GetArrayFromImage(physical), planted)
    assert registered >= 0.9 and registered > unregistered + 0.03, (registered, unregistered)
    # through the segmentation stage: the correction replaces the automatic mask
    correction, reference = tmp_path / "P.nii.gz", tmp_path / "reference.nii.gz"
    sitk.WriteImage(raw, str(correction))
    empty_reference = sitk.Cast(ct * 0, sitk.sitkUInt8)
    write_image(empty_reference, reference)
    prediction = tmp_path / "prediction.nii.gz"
    write_image(empty_reference, prediction)  # the model found nothing: the radiologist drew it
    result = masks.final_masks("P", "nnunet", ct, LABELS, "largest", 0.5, prediction=str(prediction),
                               reference=str(reference), correction=str(correction),
                               registration=misaligned["registration"])  # fmt: skip
    assert result["problem"] is None and result["source"] == "correction" and result["drawn_on"] == "arterial"
    assert np.array_equal(sitk.GetArrayFromImage(result["tumor"]), sitk.GetArrayFromImage(carried))


def test_a_correction_on_the_analysis_grid_is_taken_as_it_is(misaligned):
    ct, planted = misaligned["ct"], misaligned["planted"]
    on_analysis = sitk.GetImageFromArray(planted.astype(np.uint8))
    on_analysis.CopyInformation(ct)
    carried, phase = drawn_masks.carried_to_analysis_grid("P", on_analysis, "P.nii.gz", misaligned["registration"], ct)
    assert phase == drawn_masks.ANALYSIS
    assert np.array_equal(sitk.GetArrayFromImage(carried) > 0, planted)


def test_a_correction_on_no_phase_grid_is_a_bad_case_naming_file_and_fix(misaligned, tmp_path):
    ct = misaligned["ct"]
    cropped = sitk.RegionOfInterest(sitk.ReadImage(misaligned["mask"]), [40, 40, 10], [5, 5, 2])
    path = tmp_path / "P.nii.gz"
    sitk.WriteImage(cropped, str(path))
    with pytest.raises(BadCase, match="lies on none of this patient's phase grids") as caught:
        drawn_masks.carried_to_analysis_grid("P", cropped, path, misaligned["registration"], ct)
    assert caught.value.path == str(path) and "without resampling or cropping" in caught.value.fix
    assert caught.value.stage == "segment"
    reference = tmp_path / "reference.nii.gz"
    write_image(sitk.Cast(ct * 0, sitk.sitkUInt8), reference)
    # in the segmentation stage it excludes the patient (with on_bad_case: exclude), naming the file
    result = masks.final_masks("P", "reference", ct, LABELS, "largest", 0.5, reference=str(reference),
                               correction=str(path), registration=misaligned["registration"])  # fmt: skip
    assert result["problem"]["file"] == str(path) and result["problem"]["stage"] == "segment"
    assert not sitk.GetArrayFromImage(result["tumor"]).any()


def _record(grids_and_shifts: dict) -> dict:
    """A registration.json record: phase -> (grid image, translation mm of reference -> phase)."""
    phases = {}
    for phase, (image, shift) in grids_and_shifts.items():
        transform = sitk.Euler3DTransform()
        transform.SetTranslation(shift)
        phases[phase] = {"transform": registration.transform_record(transform), "grid": geometry(image)}
    return {"reference": "venous", "phases": phases}


def _grid(size=(40, 40, 20), spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0)):
    image = sitk.Image(list(size), sitk.sitkUInt8)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def _ball(grid: sitk.Image, centre_mm, radius_mm=6.0) -> sitk.Image:
    points = np.moveaxis(np.indices(grid.GetSize()[::-1])[::-1], 0, -1) * np.asarray(grid.GetSpacing())
    points = points + np.asarray(grid.GetOrigin())
    mask = sitk.GetImageFromArray((np.linalg.norm(points - np.asarray(centre_mm), axis=-1) <= radius_mm).astype(np.uint8))
    mask.CopyInformation(grid)
    return mask


def _centroid_mm(mask: sitk.Image) -> np.ndarray:
    return np.mean(registration.foreground_points(mask), axis=0)


def assert_near(found, expected, drawn: sitk.Image):
    """Within half a voxel of the grid the mask was drawn on (nearest neighbour's rounding)."""
    error = np.abs(np.asarray(found) - np.asarray(expected))
    assert np.all(error <= np.asarray(drawn.GetSpacing()) / 2), (found, expected)


def test_the_transform_moves_the_mask_by_the_registered_shift():
    """Independent check: a ball drawn at T(c) on the arterial grid, with T the translation the
    registration found, lands at c on the analysis grid."""
    analysis = _grid(spacing=(1.0, 1.0, 1.0), size=(40, 40, 40))
    arterial = _grid(size=(44, 44, 18), spacing=(0.9, 0.9, 2.5), origin=(-3.0, -2.0, -5.0))
    shift = (3.0, -2.0, 5.0)
    record = _record({"venous": (_grid(), (0.0, 0.0, 0.0)), "arterial": (arterial, shift)})
    centre = np.array([20.0, 19.0, 18.0])
    drawn = _ball(arterial, centre + shift)
    carried, phase = drawn_masks.carried_to_analysis_grid("P", drawn, "P.nii.gz", record, analysis)
    assert phase == "arterial"
    assert_near(_centroid_mm(carried), centre, arterial)


def test_phases_sharing_a_grid_need_the_sidecar(tmp_path):
    shared = _grid()
    analysis = _grid(spacing=(1.0, 1.0, 1.0), size=(40, 40, 40))
    record = _record({"venous": (shared, (0.0, 0.0, 0.0)), "arterial": (shared, (4.0, 0.0, 0.0))})
    drawn = _ball(shared, (24.0, 20.0, 20.0))
    path = tmp_path / "P.nii.gz"
    with pytest.raises(BadCase, match="share") as caught:
        drawn_masks.drawn_phase("P", drawn, path, record, analysis)
    assert "P.json" in caught.value.fix and "arterial" in caught.value.fix
    (tmp_path / "P.json").write_text(json.dumps({"phase": "arterial"}))
    declared = drawn_masks.declared_phase("P", tmp_path / "P.json", "corrected mask", "segment")
    carried, phase = drawn_masks.carried_to_analysis_grid("P", drawn, path, record, analysis, declared)
    assert phase == "arterial"
    assert_near(_centroid_mm(carried), (20.0, 20.0, 20.0), shared)
    # a sidecar naming a phase whose grid the mask is not on, or no phase at all
    with pytest.raises(BadCase, match="not on its grid"):
        drawn_masks.drawn_phase("P", drawn, path, record, analysis, declared=drawn_masks.ANALYSIS)
    with pytest.raises(BadCase, match="names phase 'portal'"):
        drawn_masks.drawn_phase("P", drawn, path, record, analysis, declared="portal")
    (tmp_path / "P.json").write_text("arterial")
    with pytest.raises(BadCase, match="sidecar cannot be read"):
        drawn_masks.declared_phase("P", tmp_path / "P.json", "corrected mask", "segment")


def test_phases_sharing_a_grid_and_a_transform_need_no_sidecar():
    shared = _grid()
    record = _record({"venous": (shared, (0.0, 0.0, 0.0)), "arterial": (shared, (0.0, 0.0, 0.0))})
    assert drawn_masks.drawn_phase("P", _ball(shared, (20, 20, 20)), "P.nii.gz", record, _grid(size=(9, 9, 9))) == "venous"


def test_a_registration_record_without_grids_asks_for_a_rerun():
    record = _record({"venous": (_grid(), (0.0, 0.0, 0.0))})
    del record["phases"]["venous"]["grid"]
    with pytest.raises(ValueError, match="--forcerun register_phases"):
        drawn_masks.drawn_phase("P", _grid(), "P.nii.gz", record, _grid(size=(9, 9, 9)), registration_path="r.json")
