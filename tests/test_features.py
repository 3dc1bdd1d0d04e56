import ast
import math

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from radiomics import featureextractor
from scipy import ndimage

from radiogenomics.features import radiomics as features
from radiogenomics.core.cases import BadCase

PARAMS = features.params_file()


def phantom(shape=(40, 44, 48), radius=9.0, seed=0):
    """A textured spherical 'tumour' split into two habitats, a 3-voxel shell and a tiny blob."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(float)
    centre = np.array(shape, dtype=float)[:, None, None, None] / 2
    radius_map = np.sqrt(((grid - centre) ** 2).sum(0))
    whole = radius_map <= radius
    sub1 = whole & (grid[2] < centre[2, 0, 0, 0])
    sub2 = whole & ~sub1
    peri = (radius_map > radius) & (radius_map <= radius + 3)
    texture = ndimage.gaussian_filter(rng.normal(size=shape), 1.0) * 120
    array = np.where(whole, 80 + np.where(sub1, 60, 0) + texture, 20 + 0.3 * texture) - 5
    image = sitk.GetImageFromArray(array.astype(np.int16))
    image.SetSpacing((1.0, 1.0, 1.0))
    image.SetOrigin((-12.5, 40.0, 3.0))
    regions = {"whole": whole, "sub1": sub1, "sub2": sub2, "peri": peri}
    return image, regions


def direct(image, region, params):
    mask = sitk.GetImageFromArray(region.astype(np.uint8))
    mask.CopyInformation(image)
    result = featureextractor.RadiomicsFeatureExtractor(str(params)).execute(image, mask)
    values = {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}
    return values, {k: v for k, v in result.items() if k.startswith("diagnostics_Mask-original")}


def assert_parity(image, regions, params):
    values, diagnostics = features.extract_patient({"venous": image}, regions, params)
    for region, mask in regions.items():
        expected, expected_diagnostics = direct(image, mask, params)
        got = {
            k.split("__venous_", 1)[1]: v
            for k, v in values.items()
            if k.startswith(f"{region}__venous_")
        }
        assert list(got) == list(expected)
        np.testing.assert_allclose(
            list(got.values()), list(expected.values()), rtol=1e-6, atol=1e-12, err_msg=region
        )
        assert diagnostics[f"{region}__venous_diagnostics_status"] == "ok"
        for key in ("VoxelNum", "VolumeNum", "BoundingBox", "CenterOfMass"):
            name = f"diagnostics_Mask-original_{key}"
            got_value = diagnostics[f"{region}__venous_{name}"]
            got_value = ast.literal_eval(got_value) if isinstance(got_value, str) else got_value
            np.testing.assert_allclose(got_value, np.asarray(expected_diagnostics[name], float))
    return values


def test_project_params_give_about_1100_features_per_region():
    names = features.feature_names(str(PARAMS))
    assert len(names) == 14 + 93 * 12 == 1130
    assert sum(n.startswith("original_shape_") for n in names) == 14
    assert not any("shape" in n for n in names if not n.startswith("original_"))
    settings = yaml.safe_load(PARAMS.read_text())["setting"]
    assert settings["binWidth"] == 25 and settings["resampledPixelSpacing"] is None


def test_parity_with_direct_execute_when_filters_run_on_a_crop(tmp_path):
    """Image larger than regions + filter margin (LoG sigma 1 -> 14 mm, wavelet 8 mm), so the
    filters really run on a crop; values must equal execute() on the full image."""
    params = yaml.safe_load(PARAMS.read_text())
    params["imageType"]["LoG"]["sigma"] = [1.0]
    small_params = tmp_path / "params.yaml"
    small_params.write_text(yaml.safe_dump(params))
    image, regions = phantom(shape=(48, 56, 60), radius=7.0)
    values = assert_parity(image, regions, small_params)
    assert any(k.startswith("peri__venous_wavelet-HLH_glszm") for k in values)


def test_parity_with_direct_execute_project_params():
    image, regions = phantom(shape=(24, 26, 28), radius=6.0)
    regions.pop("sub2")
    assert_parity(image, regions, PARAMS)


def test_empty_or_tiny_region_gives_nan_and_a_reason():
    image, regions = phantom(shape=(24, 26, 28), radius=6.0)
    regions = {"whole": regions["whole"], "sub3": np.zeros_like(regions["whole"])}
    tiny = np.zeros_like(regions["whole"])
    tiny[2, 2, 2:6] = True  # 4 voxels < minimumROISize 27
    regions["tiny"] = tiny
    values, diagnostics = features.extract_patient({"venous": image}, regions, PARAMS)
    for region in ("sub3", "tiny"):
        own = [v for k, v in values.items() if k.startswith(f"{region}__")]
        assert len(own) == 1130 and all(math.isnan(v) for v in own)
        assert diagnostics[f"{region}__venous_diagnostics_status"].startswith("no features")
    assert "not present" in diagnostics["sub3__venous_diagnostics_status"]
    assert (
        "minimumROISize" in diagnostics["tiny__venous_diagnostics_status"]
        or "Size" in diagnostics["tiny__venous_diagnostics_status"]
    )
    assert not any(math.isnan(v) for k, v in values.items() if k.startswith("whole__"))
    assert values["whole__venous_original_shape_VoxelVolume"] == pytest.approx(
        regions["whole"].sum()
    )


def test_missing_phase_is_a_bad_case():
    image, regions = phantom(shape=(24, 26, 28), radius=6.0)
    with pytest.raises(BadCase, match="arterial"):
        features.extract_patient(
            {"venous": image}, regions, PARAMS, phases=("arterial",), patient_id="P001"
        )


def test_region_off_the_image_grid_is_a_bad_case():
    image, regions = phantom(shape=(24, 26, 28), radius=6.0)
    regions["peri"] = regions["peri"][:, :, :-1]
    with pytest.raises(BadCase, match="P007.*differs from the image"):
        features.extract_patient({"venous": image}, regions, PARAMS, patient_id="P007")


def test_features_table_orders_rows_and_columns():
    rows = [
        {"patient_id": "P2", "whole__venous_b": 2.0, "peri__venous_a": 1.0},
        {"peri__venous_a": 3.0, "patient_id": "P1", "whole__venous_b": np.nan},
    ]
    table = features.features_table(rows)
    assert list(table.columns) == ["patient_id", "peri__venous_a", "whole__venous_b"]
    assert list(table["patient_id"]) == ["P1", "P2"]
    pd.testing.assert_series_equal(
        table["peri__venous_a"], pd.Series([3.0, 1.0]), check_names=False
    )


@pytest.mark.parametrize("image_type, settings", [("LoG", {"sigma": [3.0]}), ("Wavelet", {})])
def test_filter_margin_makes_cropped_filtering_exact_inside_the_regions(image_type, settings):
    """The widest filters of the project params: on the crop (regions' box + margin) the filtered
    values inside the regions equal those filtered on the full image."""
    from radiomics import imageoperations

    image, regions = phantom(shape=(100, 104, 108), radius=8.0)
    masks = {name: features._mask_image(region, image, 1) for name, region in regions.items()}
    margin = features._filter_margin_mm(image_type, settings, image.GetSpacing())
    cropped, _, start = features._crop(image, masks, margin)
    assert np.prod(cropped.GetSize()) < np.prod(image.GetSize())  # really a crop
    get = getattr(imageoperations, f"get{image_type}Image")
    union = np.any(list(regions.values()), axis=0)
    z, y, x = start[::-1]
    dz, dy, dx = cropped.GetSize()[::-1]
    for full, part in zip(get(image, None, **settings), get(cropped, None, **settings)):
        assert full[1] == part[1]
        full_values = sitk.GetArrayFromImage(full[0])[z : z + dz, y : y + dy, x : x + dx]
        inside = union[z : z + dz, y : y + dy, x : x + dx]
        np.testing.assert_allclose(
            sitk.GetArrayFromImage(part[0])[inside],
            full_values[inside],
            rtol=1e-6,
            atol=1e-6 * np.abs(full_values).max(),
        )


def test_combine_patient_tables_round_trips_values_exactly(tmp_path):
    """Per-patient JSON -> contract table: every float bit-exact, NaN kept, rows and columns sorted."""
    from radiogenomics.core.io import write_json

    rng = np.random.default_rng(0)
    expected = []
    for patient in ["P2", "P10", "P1"]:
        values = {f"whole__venous_f{j}": float(v) for j, v in enumerate(rng.normal(size=5) * 1e3)}
        values["peri__venous_f0"] = float("nan")
        write_json({"patient_id": patient, **values}, tmp_path / f"{patient}.radiomics.json")
        write_json({"patient_id": patient, "whole__venous_diagnostics_status": "ok"}, tmp_path / f"{patient}.diagnostics.json")
        expected.append({"patient_id": patient, **values})
    table, diagnostics = features.combine_patient_tables(
        sorted(tmp_path.glob("*.radiomics.json")), sorted(tmp_path.glob("*.diagnostics.json"))
    )
    assert list(table.patient_id) == ["P1", "P10", "P2"]
    assert list(table.columns[1:]) == sorted(k for k in expected[0] if k != "patient_id")
    by_patient = table.set_index("patient_id")
    for row in expected:
        got = by_patient.loc[row["patient_id"]]
        for key, value in row.items():
            if key == "patient_id":
                continue
            assert (np.isnan(got[key]) and np.isnan(value)) or got[key] == value
    assert set(diagnostics.columns) == {"patient_id", "key", "value"} and len(diagnostics) == 3
