"""Phase registration recovers the planted misalignment of synthetic phases; failures are bad cases."""

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radiogenomics.imaging import registration
from radiogenomics.cohort.synthetic import generator as synthetic, phantoms as synthetic_images
from radiogenomics.core.cases import BadCase
from radiogenomics.imaging.ct import load_case, preprocess_case

SMALL = {"seed": 7, "n_internal": 10, "n_external": 2, "n_genes": 300}
RIGID = {"reference": "venous", "method": "rigid"}


def _phantom(tmp_path, mask_phase=None, number=4):
    """One synthetic patient (site A or B, smaller FOV) written to disk: (row, manifest, planted
    habitats on the reference grid)."""
    cohort = synthetic.simulate_cohort(SMALL, "venous", mask_phase)
    row = cohort["phantoms"].iloc[number].copy()
    row.update(pd.Series({"fov_x": 120.0, "fov_y": 110.0, "format": "nifti"}))
    row.update(pd.Series({"centre_x": 0.0, "centre_y": 0.0, "kidney_x": 30.0, "kidney_y": 0.0}))
    manifest = synthetic.write_phantom(row, tmp_path / "raw", tmp_path / "truth")
    return row, manifest, tmp_path / "truth" / "habitats.nii.gz"


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    return _phantom(tmp_path_factory.mktemp("patient"))


@pytest.fixture(scope="module")
def registered(patient):
    """The patient's phases, mask and rigid registration (computed once: it takes seconds)."""
    images, mask = _load(patient[1])
    return images, mask, registration.register_case("P", images, mask, RIGID, seed=3)


def _load(manifest):
    return load_case("P", manifest, ["arterial", "venous"], manifest["mask_phase"])


def _tumour_points(truth):
    return registration.foreground_points(sitk.ReadImage(str(truth)))


def test_rigid_registration_recovers_the_planted_transform(patient, registered):
    row, _, truth = patient
    images, mask, result = registered
    assert images["arterial"].GetSize() != images["venous"].GetSize()  # different grids
    planted = synthetic_images.phase_transform(row, "arterial")
    recovered = registration.transform_from_record(result["phases"]["arterial"]["transform"])
    points = _tumour_points(truth)
    error = registration.target_registration_error(planted, recovered, points)
    unregistered = registration.target_registration_error(planted, registration.identity(), points)
    assert unregistered["tre_mm"] > 2.0  # the planted misalignment is worth correcting
    assert error["tre_mm"] < 1.0 and error["tre_max_mm"] < 2.0, error
    entry = result["phases"]["arterial"]
    assert entry["metric"] < entry["initial_metric"]  # mutual information improved
    assert result["phases"]["venous"]["reference"]
    # seeded sampling, one thread: the same numbers on a second run
    again = registration.register_case("P", images, mask, RIGID, seed=3)
    assert again["phases"]["arterial"]["transform"] == entry["transform"]
    assert again["phases"]["arterial"]["metric"] == entry["metric"]


def test_affine_registration_also_recovers_a_rigid_misalignment(patient):
    row, manifest, truth = patient
    images, mask = _load(manifest)
    result = registration.register_case("P", images, mask, {**RIGID, "method": "affine"}, seed=3)
    recovered = registration.transform_from_record(result["phases"]["arterial"]["transform"])
    assert recovered.GetName() == "AffineTransform"
    points = _tumour_points(truth)
    error = registration.target_registration_error(synthetic_images.phase_transform(row, "arterial"), recovered, points)
    assert error["tre_mm"] < 1.5, error


def test_method_none_keeps_scanner_coordinates(patient):
    _, manifest, _ = patient
    images, mask = _load(manifest)
    result = registration.register_case("P", images, mask, {**RIGID, "method": "none"}, seed=3)
    entry = result["phases"]["arterial"]
    assert entry["iterations"] == 0 and entry["metric"] == entry["initial_metric"]
    assert registration.transform_from_record(entry["transform"]).GetParameters() == (0.0,) * 6


def test_target_registration_error_matches_pointwise_transform():
    """The vectorised error against SimpleITK's own TransformPoint, point by point."""
    rng = np.random.default_rng(0)
    points = rng.uniform(-50, 50, (40, 3))
    planted = sitk.Euler3DTransform((5.0, -3.0, 2.0), 0.03, -0.02, 0.05, (2.0, -1.0, 3.0))
    recovered = sitk.AffineTransform(3)
    recovered.SetMatrix([1.01, 0.02, 0, -0.01, 0.99, 0.03, 0, 0.01, 1.0])
    recovered.SetCenter((1.0, 2.0, 3.0))
    recovered.SetTranslation((1.5, -0.5, 2.0))
    expected = [
        np.linalg.norm(np.subtract(planted.TransformPoint(p), recovered.TransformPoint(p)))
        for p in points.tolist()
    ]
    error = registration.target_registration_error(planted, recovered, points)
    assert error["tre_mm"] == pytest.approx(np.mean(expected), rel=1e-9)
    assert error["tre_max_mm"] == pytest.approx(np.max(expected), rel=1e-9)
    for transform in (planted, recovered):
        back = registration.transform_from_record(json.loads(json.dumps(registration.transform_record(transform))))
        assert back.GetParameters() == pytest.approx(transform.GetParameters())
        assert back.GetFixedParameters() == pytest.approx(transform.GetFixedParameters())


def test_mask_drawn_on_another_phase_is_carried_to_the_reference_grid(tmp_path):
    """The reference mask drawn on the (moved) arterial phase lands on the planted tumour of the
    reference grid through the registration; without it, it is off by the misalignment."""
    row, manifest, truth = _phantom(tmp_path, mask_phase="arterial")
    assert manifest["mask_phase"] == "arterial"
    images, mask = _load(manifest)
    assert mask.GetSize() == images["arterial"].GetSize()
    result = registration.register_case("P", images, mask, RIGID, seed=3)
    planted = sitk.GetArrayFromImage(sitk.ReadImage(str(truth))) > 0
    dice = {}
    for name, transforms in (("registered", registration.transforms_of(result)), ("identity", {})):
        _, tumor = preprocess_case(images, mask, (1.0, 1.0, 1.0), "linear", "venous", transforms, "arterial")
        found = sitk.GetArrayFromImage(tumor) > 0
        assert found.shape == planted.shape
        dice[name] = 2 * np.sum(found & planted) / (found.sum() + planted.sum())
    assert dice["registered"] > 0.9 and dice["registered"] > dice["identity"] + 0.03, dice


def test_a_phase_that_cannot_be_registered_is_a_bad_case_naming_phase_and_fix(patient):
    _, manifest, _ = patient
    images, mask = _load(manifest)
    away = sitk.Image(images["arterial"])
    away.SetOrigin(np.add(away.GetOrigin(), (400.0, 0.0, 0.0)).tolist())  # another body part
    with pytest.raises(BadCase) as error:
        registration.register_case("P", {**images, "arterial": away}, mask, RIGID, seed=3)
    assert error.value.stage == "registration"
    assert "arterial phase" in error.value.reason and "imaging.registration.method" in error.value.fix
    # exclude: a verdict record instead; fail: raised; failed inspection: skipped
    load = lambda: ({**images, "arterial": away}, mask)  # noqa: E731
    verdict = registration.registration_verdict("P", {"ok": True}, load, "venous", RIGID, 3, "exclude")
    assert not verdict["ok"] and not verdict["skipped"] and "arterial" in verdict["reason"]
    with pytest.raises(BadCase):
        registration.registration_verdict("P", {"ok": True}, load, "venous", RIGID, 3, "fail")
    skipped = registration.registration_verdict("P", {"ok": False}, None, "venous", RIGID, 3, "exclude")
    assert skipped["skipped"] and not skipped["ok"]


def test_a_registration_that_moves_the_tumour_too_far_is_rejected(patient):
    _, manifest, _ = patient
    images, mask = _load(manifest)
    with pytest.raises(BadCase, match="moved the tumour"):
        quick = {**RIGID, "max_displacement_mm": 0.01, "shrink_factors": [4], "smoothing_sigmas_mm": [2.0]}
        registration.register_case("P", images, mask, quick, seed=3)


def test_registration_table_reports_error_against_truth(patient, registered):
    row, _, target = patient
    record = {"patient_id": "P", "ok": True, **registered[2]}
    truth = synthetic.phase_transform_table(pd.DataFrame([{**row.to_dict(), "patient_id": "P"}]))
    failed = {"patient_id": "Q", "ok": False}
    table = registration.registration_table([record, failed], truth, {"P": target})
    assert list(table.columns) == registration.TABLE_COLUMNS
    assert table[["patient_id", "phase"]].values.tolist() == [["P", "arterial"]]
    assert table.loc[0, "tre_mm"] < 1.0 < table.loc[0, "tre_unregistered_mm"]
    without_truth = registration.registration_table([record])
    assert without_truth["tre_mm"].isna().all()


def test_checkerboard_and_qc_figure(registered, tmp_path):
    a, b = np.zeros((16, 16)), np.ones((16, 16))
    board = registration.checkerboard(a, b, 4)
    assert board[0, 0] == 0 and board[0, 4] == 1 and board[4, 4] == 0 and board.mean() == 0.5
    images, mask, result = registered
    resampled, tumor = preprocess_case(images, mask, (1.0, 1.0, 1.0), "linear", "venous", registration.transforms_of(result))
    paths = {}
    for phase, image in resampled.items():
        paths[phase] = tmp_path / f"{phase}.nii.gz"
        sitk.WriteImage(image, str(paths[phase]))
    sitk.WriteImage(tumor, str(tmp_path / "tumor.nii.gz"))
    cases = [{"patient_id": "P", "images": paths, "mask": tmp_path / "tumor.nii.gz"}]
    png, svg = tmp_path / "qc.png", tmp_path / "qc.svg"
    registration.qc_figure(cases, "venous", {"level": 50, "width": 350}, png, svg)
    assert png.stat().st_size > 10_000 and svg.stat().st_size > 10_000
