"""Segmentation stage without nnU-Net itself: masks, corrections, QC metrics, model checks."""

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy.spatial.distance import cdist

from radiogenomics.imaging import registration
from radiogenomics.cohort.synthetic import generator as synthetic, phantoms as synthetic_images
from radiogenomics.core.cases import BadCase
from radiogenomics.imaging.ct import geometry
from radiogenomics.segmentation import masks, qc
from radiogenomics.segmentation.model import ModelFolderError, check_model_folder

SPACING = (0.8, 0.9, 2.5)  # x, y, z (mm): anisotropic, as CT is


def image(array, spacing=SPACING, origin=(0.0, 0.0, 0.0)):
    out = sitk.GetImageFromArray(array.astype(np.uint8))
    out.SetSpacing(spacing)
    out.SetOrigin(origin)
    return out


def ball(shape=(24, 60, 60), centre_mm=(25.0, 27.0, 30.0), radius_mm=12.0, spacing=SPACING):
    z, y, x = np.indices(shape)
    points = np.stack([x * spacing[0], y * spacing[1], z * spacing[2]], axis=-1)
    return np.linalg.norm(points - np.asarray(centre_mm), axis=-1) < radius_mm


def surface_points(array, spacing):
    z, y, x = np.nonzero(qc.surface(array))
    return np.stack([z * spacing[2], y * spacing[1], x * spacing[0]], axis=1)


def test_agreement_matches_brute_force_and_simpleitk():
    a, b = ball(), ball(centre_mm=(28.0, 25.0, 32.5))
    found = qc.agreement(image(a), image(b))
    assert found["dice"] == pytest.approx(2 * (a & b).sum() / (a.sum() + b.sum()))
    assert found["volume_diff_ml"] == pytest.approx((a.sum() - b.sum()) * np.prod(SPACING) / 1000)
    pa, pb = surface_points(a, SPACING), surface_points(b, SPACING)
    distances = cdist(pa, pb)
    pooled = np.concatenate([distances.min(axis=1), distances.min(axis=0)])
    assert found["hd95_mm"] == pytest.approx(np.percentile(pooled, 95))
    # the 100th percentile of the same distances is the Hausdorff distance of the two surfaces
    hausdorff = sitk.HausdorffDistanceImageFilter()
    hausdorff.Execute(image(qc.surface(a)), image(qc.surface(b)))
    assert pooled.max() == pytest.approx(hausdorff.GetHausdorffDistance(), rel=1e-6)
    same = qc.agreement(image(a), image(a))
    assert same["dice"] == 1.0 and same["hd95_mm"] == 0.0 and same["volume_diff_ml"] == 0.0


def test_label_map_split_and_largest_component():
    labels = np.zeros((20, 40, 40), np.uint8)
    labels[2:18, 5:35, 5:20] = 1  # kidney
    labels[5:15, 10:25, 12:30] = 2  # tumour (over the kidney)
    labels[1:3, 36:39, 36:39] = 2  # a stray false positive
    labels[16:18, 30:33, 30:33] = 3  # cyst: not tumour
    settings = {"kidney": 1, "tumor": 2, "cyst": 3}
    tumour, kidney = masks.split_label_map(image(labels), settings, "largest")
    t = sitk.GetArrayFromImage(tumour)
    assert t.sum() == 10 * 15 * 18 and not t[1:3, 36:39, 36:39].any() and not t[16:18, 30:33, 30:33].any()
    every, _ = masks.split_label_map(image(labels), settings, "all")
    assert sitk.GetArrayFromImage(every).sum() == t.sum() + 2 * 3 * 3
    assert np.array_equal(sitk.GetArrayFromImage(kidney) > 0, labels == 1)
    record = qc.qc_record("P1", "nnunet", "nnunet", tumour, every, kidney, None)
    assert record["components"] == 2 and record["flagged"]
    # brute force: tumour surface voxels with a kidney voxel within 2 mm
    border = surface_points(t > 0, SPACING)
    kidney_points = surface_points(labels == 1, SPACING)  # nearest kidney voxel lies on its surface
    near = cdist(border, kidney_points).min(axis=1) <= qc.KIDNEY_CONTACT_MM
    assert record["kidney_overlap"] == pytest.approx(near.mean())
    assert 0.2 < record["kidney_overlap"] < 0.9


def test_empty_prediction_is_a_bad_case_naming_the_fix(tmp_path):
    ct = image(np.zeros((10, 20, 20)))
    prediction = tmp_path / "P2.nii.gz"
    sitk.WriteImage(image(np.zeros((10, 20, 20))), str(prediction))
    reference = tmp_path / "ref.nii.gz"
    sitk.WriteImage(image(ball((10, 20, 20), (8, 9, 12), 5)), str(reference))
    result = masks.final_masks("P2", "nnunet", ct, {"kidney": 1, "tumor": 2}, "largest", 0.5,
                               prediction=str(prediction), reference=str(reference))  # fmt: skip
    assert result["problem"]["reason"] == "segmentation found no tumour"
    assert "corrections folder" in result["problem"]["fix"] and result["problem"]["stage"] == "segment"
    with pytest.raises(BadCase, match="implausibly small"):
        masks.check_plausible("P2", image(ball((10, 20, 20), (8, 9, 12), 2)), "x", 5.0)


def test_correction_on_another_grid_replaces_the_prediction(tmp_path):
    ct = image(np.zeros((24, 60, 60)))
    labels = np.zeros((24, 60, 60), np.uint8)
    labels[ball()] = 2
    prediction, correction, reference = (tmp_path / f"{n}.nii.gz" for n in ("pred", "corr", "ref"))
    sitk.WriteImage(image(labels), str(prediction))
    sitk.WriteImage(image(ball()), str(reference))
    # drawn on the raw arterial series, a coarser grid: 1.6 x 1.8 x 5 mm, a smaller tumour
    coarse = (1.6, 1.8, 5.0)
    drawn = image(ball((12, 30, 30), radius_mm=8.0, spacing=coarse), spacing=coarse)
    sitk.WriteImage(drawn, str(correction))
    identity = registration.transform_record(registration.identity())
    record = {"phases": {"venous": {"transform": identity, "grid": geometry(ct)},
                         "arterial": {"transform": identity, "grid": geometry(drawn)}}}  # fmt: skip
    result = masks.final_masks("P3", "nnunet", ct, {"kidney": 1, "tumor": 2}, "largest", 0.5,
                               prediction=str(prediction), reference=str(reference),
                               correction=str(correction), registration=record)  # fmt: skip
    assert result["source"] == "correction" and result["problem"] is None and result["drawn_on"] == "arterial"
    tumour = sitk.GetArrayFromImage(result["tumor"]) > 0
    assert tumour.shape == (24, 60, 60)
    expected_ml = 4 / 3 * np.pi * 8.0**3 / 1000
    assert tumour.sum() * np.prod(SPACING) / 1000 == pytest.approx(expected_ml, rel=0.15)
    assert result["reference"] is not None  # a correction is compared with the reference


def test_qc_table_puts_flagged_patients_first():
    rows = [
        {"patient_id": "A", "dice": 0.95, "flagged": False},
        {"patient_id": "B", "dice": 0.40, "flagged": True},
        {"patient_id": "C", "dice": 0.90, "flagged": False},
    ]
    table = qc.qc_table(rows)
    assert list(table.patient_id) == ["B", "A", "C"]
    assert list(table.columns) == qc.QC_COLUMNS


def write_model(folder, channels=1, labels=None, folds=("all",)):
    folder.mkdir(parents=True)
    dataset = {"channel_names": {str(i): "CT" for i in range(channels)},
               "labels": labels or {"background": 0, "kidney": 1, "tumor": 2}}  # fmt: skip
    (folder / "dataset.json").write_text(json.dumps(dataset))
    (folder / "plans.json").write_text(json.dumps({"configurations": {"2d": {}, "3d_fullres": {}}}))
    for fold in folds:
        (folder / f"fold_{fold}").mkdir()
        (folder / f"fold_{fold}" / "checkpoint_final.pth").write_bytes(b"weights")
    return folder


def test_model_folder_checks_name_the_file_and_the_fix(tmp_path):
    labels = {"kidney": 1, "tumor": 2, "cyst": None}
    good = write_model(tmp_path / "good")
    assert check_model_folder(good, 1, labels, ["all"], "checkpoint_final.pth", "2d")["labels"]["tumor"] == 2
    # KiTS23-style region-based labels: tumour 2 is one of the regions' classes
    kits = write_model(tmp_path / "kits", labels={"background": 0, "kidney": [1, 2, 3], "masses": [2, 3], "tumor": 2})
    check_model_folder(kits, 1, {"kidney": 1, "tumor": 2, "cyst": 3}, ["all"], "checkpoint_final.pth")
    cases = [
        (tmp_path / "absent", 1, labels, ["all"], "2d", "does not exist"),
        (write_model(tmp_path / "two", channels=2), 1, labels, ["all"], "2d", "2 input channel"),
        (good, 1, {**labels, "cyst": 3}, ["all"], "2d", "cyst=3"),
        (good, 1, labels, [0], "2d", "fold_0/checkpoint_final.pth is missing"),
        (good, 1, labels, ["all"], "3d_lowres", "no configuration '3d_lowres'"),
    ]
    for folder, channels, wanted, folds, configuration, message in cases:
        with pytest.raises(ModelFolderError, match=message) as error:
            check_model_folder(folder, channels, wanted, folds, "checkpoint_final.pth", configuration)
        assert "Fix:" in str(error.value)
    (good / "dataset.json").unlink()
    with pytest.raises(ModelFolderError, match="dataset.json is missing"):
        check_model_folder(good, 1, labels, ["all"], "checkpoint_final.pth")


def test_truth_kidney_is_the_kidney_outside_the_tumour():
    row = synthetic.simulate_cohort({"seed": 7, "n_internal": 3, "n_external": 0})["phantoms"].iloc[0]
    venous = synthetic_images.render_native(row)["phases"]["venous"]
    reference = synthetic_images._to_image(venous["array"], venous)
    kidney = sitk.GetArrayFromImage(synthetic_images.truth_kidney(row, reference)) > 0
    habitats = sitk.GetArrayFromImage(synthetic_images.truth_habitats(row, reference))
    assert kidney.shape == habitats.shape and not (kidney & (habitats > 0)).any()
    semi_axes = synthetic_images.KIDNEY_SEMI_AXES_MM
    expected_ml = 4 / 3 * np.pi * np.prod(semi_axes) / 1000  # minus the tumour's share and the FOV cut
    assert 0.2 * expected_ml < kidney.sum() / 1000 < expected_ml
    # the tumour touches the kidney (it bulges out of it)
    record = qc.qc_record("P", "reference", "reference", image(habitats > 0, (1.0, 1.0, 1.0)),
                          image(habitats > 0, (1.0, 1.0, 1.0)), image(kidney, (1.0, 1.0, 1.0)), None)  # fmt: skip
    assert record["kidney_overlap"] > 0.2
    assert pd.isna(record["dice"])


def test_plans_override_puts_spacing_on_nnunet_axes(tmp_path):
    """spacing_mm is (x, y, z); nnU-Net's 3d spacing is (z, y, x) and its 2d spacing (y, x)."""
    import json

    from radiogenomics.segmentation.nnunet import override_plans

    strides_2d = [[1, 1], [2, 2], [2, 2], [2, 2]]
    strides_3d = [[1, 1, 1], [2, 2, 2], [2, 2, 2]]
    plans = {"configurations": {
        "2d": {"spacing": [1.0, 1.0], "patch_size": [128, 128], "batch_size": 12,
               "architecture": {"arch_kwargs": {"strides": strides_2d}}},
        "3d_fullres": {"spacing": [1.0, 1.0, 1.0], "patch_size": [64, 96, 96], "batch_size": 2,
                       "architecture": {"arch_kwargs": {"strides": strides_3d}}},
    }}  # fmt: skip
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(plans))
    settings = {"spacing_mm": [2.0, 1.5, 3.0], "patch_size": [70, 64], "batch_size": 8}
    override_plans(path, "2d", settings)
    override_plans(path, "3d_fullres", {"spacing_mm": [2.0, 1.5, 3.0]})
    written = json.loads(path.read_text())["configurations"]
    assert written["2d"]["spacing"] == [1.5, 2.0]  # (y, x)
    assert written["3d_fullres"]["spacing"] == [3.0, 1.5, 2.0]  # (z, y, x)
    assert written["2d"]["patch_size"] == [64, 64]  # rounded down to the total stride of 8
    assert written["2d"]["batch_size"] == 8 and written["3d_fullres"]["batch_size"] == 2
