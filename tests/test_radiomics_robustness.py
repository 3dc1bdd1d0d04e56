"""Radiomics raters for the ICC: regions re-derived from each rater's mask, ICC table."""

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import ndimage

from radiogenomics.regions import habitats as regions
from radiogenomics.imaging import registration
from radiogenomics.core.cases import BadCase
from radiogenomics.core.config import seeded_subset
from radiogenomics.features.radiomics import extract_patient_files
from radiogenomics.imaging.ct import geometry
from radiogenomics.features.raters import rater_features, robustness_table, second_reader_on_grid
from radiogenomics.features.robustness import icc, icc_table

PARAMS = regions.Path(__file__).resolve().parents[1] / "resources/radiomics_params_tiny.yaml"
SETTINGS = {"texture": "none", "smooth_sigma_mm": 0.0}


def write_patient(folder, seed, radius):
    """Two-phase toy patient in a body of fat: a sphere with an enhancing and a dark half."""
    rng = np.random.default_rng(seed)
    shape = (36, 40, 40)
    grid = np.indices(shape).astype(float) - np.array(shape)[:, None, None, None] / 2
    distance = np.sqrt((grid**2).sum(0))
    tumor = distance <= radius
    dark = tumor & (grid[2] < 0)
    paths = {}
    for phase, (bright, low) in {"arterial": (180, 40), "venous": (140, 50)}.items():
        texture = ndimage.gaussian_filter(rng.normal(size=shape), 1.0) * 60
        array = np.where(tumor, np.where(dark, low, bright) + texture, -90 + 0.2 * texture)
        image = sitk.GetImageFromArray(array.astype(np.int16))
        paths[phase] = str(folder / f"{phase}.nii.gz")
        sitk.WriteImage(image, paths[phase])
    mask = sitk.GetImageFromArray(tumor.astype(np.uint8))
    paths["tumor"] = str(folder / "tumor.nii.gz")
    sitk.WriteImage(mask, paths["tumor"])
    return paths


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust")
    patients = {}
    for i, radius in enumerate([8.0, 10.0, 12.0]):
        folder = root / f"P{i}"
        folder.mkdir()
        patients[f"P{i}"] = write_patient(folder, i, radius)
    arrays = []
    for paths in patients.values():
        images = {p: sitk.GetArrayFromImage(sitk.ReadImage(paths[p])) for p in ("arterial", "venous")}
        tumor = sitk.GetArrayFromImage(sitk.ReadImage(paths["tumor"])) > 0
        arrays.append(regions.voxel_features(images, tumor, (1.0, 1.0, 1.0), **SETTINGS))
    model = regions.HabitatModel().fit(
        arrays, k_range=(2,), seed=0, max_voxels_per_patient=500,
        feature_names=regions.voxel_feature_names(["arterial", "venous"], "none"),
        feature_settings=SETTINGS,
    )
    model_path = root / "habitat_model.json"
    model_path.write_text(json.dumps(model.to_dict()))
    for paths in patients.values():
        habitats, peri = regions.patient_region_images(
            model_path, {p: paths[p] for p in ("arterial", "venous")}, paths["tumor"], 3.0, -500
        )
        paths["habitats"] = str(regions.Path(paths["tumor"]).with_name("habitats.nii.gz"))
        paths["peri"] = str(regions.Path(paths["tumor"]).with_name("peri.nii.gz"))
        sitk.WriteImage(habitats, paths["habitats"])
        sitk.WriteImage(peri, paths["peri"])
    return patients, model_path


def raters(paths, model_path, **kwargs):
    return rater_features(
        "P0", {"venous": paths["venous"]},
        {"arterial": paths["arterial"], "venous": paths["venous"]},
        paths["tumor"], model_path, PARAMS, **kwargs,
    )


def reference_row(paths, model_path, patient="P0"):
    features, _ = extract_patient_files(
        patient, {"venous": paths["venous"]}, paths["tumor"], paths["habitats"], paths["peri"],
        model_path, PARAMS,
    )
    return features


def registration_record(*grids):
    """registration.json of a patient whose raw phases lie on these grids (identity transforms)."""
    identity = registration.transform_record(registration.identity())
    return {"phases": {f"phase{i}": {"transform": identity, "grid": geometry(g)} for i, g in enumerate(grids)}}


def test_second_reader_with_the_reference_mask_reproduces_the_stage(cohort):
    patients, model_path = cohort
    paths = patients["P0"]
    record = registration_record(sitk.ReadImage(paths["venous"]))  # the raw phase is the analysis grid here
    table = raters(paths, model_path, second_reader=paths["tumor"], registration=record)
    assert list(table.rater) == ["reader2"]
    expected = reference_row(paths, model_path)
    got = table.drop(columns=["rater", "patient_id"]).iloc[0]
    assert set(got.index) == set(expected)
    np.testing.assert_allclose(got[list(expected)].to_numpy(float), list(expected.values()), rtol=1e-9)


def test_second_reader_on_another_grid_is_resampled_by_nearest_neighbour(cohort, tmp_path):
    patients, model_path = cohort
    paths = patients["P0"]
    reference = sitk.ReadImage(paths["tumor"])
    coarse = sitk.Resample(
        reference, [s // 2 for s in reference.GetSize()], sitk.Transform(),
        sitk.sitkNearestNeighbor, reference.GetOrigin(), (2.0, 2.0, 2.0), reference.GetDirection(),
    )
    path = tmp_path / "P0.nii.gz"
    sitk.WriteImage(coarse, str(path))
    record = registration_record(coarse)  # drawn on a raw phase on the coarse grid
    table = raters(paths, model_path, second_reader=path, registration=record)
    volume = table["whole__venous_original_shape_MeshVolume"].iloc[0]
    expected = reference_row(paths, model_path)["whole__venous_original_shape_MeshVolume"]
    assert volume == pytest.approx(expected, rel=0.15)
    empty = sitk.Image(reference.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(reference)
    sitk.WriteImage(empty, str(path))
    with pytest.raises(BadCase, match="P0.*empty"):
        raters(paths, model_path, second_reader=path, registration=record)


def test_second_reader_on_a_moved_raw_phase_goes_through_its_registration(cohort, tmp_path):
    """The reader drew on a raw phase the patient had moved in by 3 mm: through that phase's
    transform the mask lands exactly on the tumour; in physical coordinates it would not."""
    patients, model_path = cohort
    paths = patients["P0"]
    tumour = sitk.ReadImage(paths["tumor"])
    shift = (3.0, 0.0, -2.0)
    drawn = sitk.Image(tumour)  # the same voxels, on the moved phase's grid
    drawn.SetOrigin([o + t for o, t in zip(tumour.GetOrigin(), shift)])
    path = tmp_path / "P0.nii.gz"
    sitk.WriteImage(drawn, str(path))
    moved = sitk.Euler3DTransform()
    moved.SetTranslation(shift)
    record = {"phases": {"venous": {"transform": registration.transform_record(registration.identity()),
                                    "grid": geometry(tumour)},
                         "arterial": {"transform": registration.transform_record(moved), "grid": geometry(drawn)}}}  # fmt: skip
    carried = second_reader_on_grid("P0", path, tumour, record)
    assert np.array_equal(sitk.GetArrayFromImage(carried), sitk.GetArrayFromImage(tumour) > 0)
    physical = sitk.Resample(drawn, tumour, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    assert not np.array_equal(sitk.GetArrayFromImage(physical), sitk.GetArrayFromImage(tumour))
    table = raters(paths, model_path, second_reader=path, registration=record)
    expected = reference_row(paths, model_path)
    got = table.drop(columns=["rater", "patient_id"]).iloc[0]
    np.testing.assert_allclose(got[list(expected)].to_numpy(float), list(expected.values()), rtol=1e-9)


def test_perturbed_raters_are_seeded_and_move_every_region(cohort):
    patients, model_path = cohort
    paths = patients["P0"]
    first = raters(paths, model_path, n_perturbations=2, seed=3)
    again = raters(paths, model_path, n_perturbations=2, seed=3)
    pd.testing.assert_frame_equal(first, again)
    assert list(first.rater) == ["perturbation1", "perturbation2"]
    expected = reference_row(paths, model_path)
    for region in ("whole", "sub1", "sub2", "peri"):
        column = f"{region}__venous_original_shape_VoxelVolume"
        assert not np.isclose(first[column], expected[column]).all(), region


def test_robustness_table_is_the_icc_of_reference_and_raters(cohort):
    patients, model_path = cohort
    reference = pd.DataFrame(
        [{"patient_id": p, **reference_row(paths, model_path, p)} for p, paths in patients.items()]
    )
    rater_tables = [
        rater_features(
            p, {"venous": paths["venous"]},
            {"arterial": paths["arterial"], "venous": paths["venous"]},
            paths["tumor"], model_path, PARAMS, n_perturbations=2, seed=1,
        )
        for p, paths in patients.items()
    ]
    deep = pd.DataFrame({"feature": ["venous_resnet18_0000"], "icc": [0.5], "form": ["ICC(3,1)"], "n_patients": [3]})
    table = robustness_table(reference, rater_tables, "ICC(3,1)", deep=deep)
    assert list(table.columns) == ["feature", "icc", "form", "n_patients", "source"]
    assert table.source.tolist().count("deep") == 1
    radiomics = table[table.source == "radiomics"].set_index("feature")
    # Independent computation: stack patients x raters by hand for one feature.
    name = "whole__venous_original_shape_MeshVolume"
    by_rater = pd.concat(rater_tables).pivot(index="patient_id", columns="rater", values=name)
    stacked = np.column_stack([reference.set_index("patient_id").loc[by_rater.index, name], by_rater])
    assert radiomics.loc[name, "icc"] == pytest.approx(float(icc(stacked, "ICC(3,1)")))
    # Tumour volume (radii 8-12 mm) survives re-delineation; it is a planted, robust feature.
    assert radiomics.loc[name, "icc"] > 0.9
    direct = icc_table(
        {"reference": reference.set_index("patient_id")[[name]],
         **{r: t.set_index("patient_id")[[name]] for r, t in pd.concat(rater_tables).groupby("rater")}}
    )
    assert radiomics.loc[name, "icc"] == pytest.approx(direct.icc.iloc[0])


def test_robustness_patients_seeded_subset_of_training():
    training = [f"SYN{i:04d}" for i in range(1, 41)]
    chosen = seeded_subset(list(reversed(training)), 30, seed=5)
    assert chosen == seeded_subset(training, 30, seed=5)
    assert len(chosen) == 30 and set(chosen) <= set(training) and chosen == sorted(chosen)
    assert seeded_subset(training, 30, seed=6) != chosen
    assert seeded_subset(training[:10], 30, seed=5) == training[:10]
