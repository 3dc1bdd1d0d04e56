import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

from radiogenomics.features import robustness
from radiogenomics.core.cases import BadCase

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    dtype=float,
)


def test_shrout_fleiss_published_values():
    # Published (Table 4): ICC(1,1)=.17, ICC(2,1)=.29, ICC(3,1)=.71
    assert robustness.icc(SHROUT_FLEISS, "ICC(1,1)") == pytest.approx(0.17, abs=0.005)
    assert robustness.icc(SHROUT_FLEISS, "ICC(2,1)") == pytest.approx(0.29, abs=0.005)
    assert robustness.icc(SHROUT_FLEISS, "ICC(3,1)") == pytest.approx(0.71, abs=0.005)


def test_shrout_fleiss_mean_squares_published():
    # Table 3 of the paper: BMS 11.24, WMS 6.26, JMS 32.49, EMS 1.02
    ms = robustness.anova_mean_squares(SHROUT_FLEISS)
    assert ms["BMS"][0] == pytest.approx(11.24, abs=0.01)
    assert ms["WMS"][0] == pytest.approx(6.26, abs=0.01)
    assert ms["JMS"][0] == pytest.approx(32.49, abs=0.01)
    assert ms["EMS"][0] == pytest.approx(1.02, abs=0.01)


def _statsmodels_icc(ratings):
    """Independent: ANOVA tables from statsmodels OLS, then the Shrout-Fleiss formulas."""
    n, k = ratings.shape
    long = pd.DataFrame(
        {
            "y": ratings.ravel(),
            "target": np.repeat(np.arange(n), k).astype(str),
            "rater": np.tile(np.arange(k), n).astype(str),
        }
    )
    two_way = sm.stats.anova_lm(smf.ols("y ~ C(target) + C(rater)", long).fit(), typ=2)
    one_way = sm.stats.anova_lm(smf.ols("y ~ C(target)", long).fit(), typ=2)
    mean_sq = two_way["sum_sq"] / two_way["df"]
    bms, jms, ems = mean_sq["C(target)"], mean_sq["C(rater)"], mean_sq["Residual"]
    wms = one_way.loc["Residual", "sum_sq"] / one_way.loc["Residual", "df"]
    return {
        "ICC(1,1)": (bms - wms) / (bms + (k - 1) * wms),
        "ICC(2,1)": (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n),
        "ICC(3,1)": (bms - ems) / (bms + (k - 1) * ems),
    }


def test_icc_matches_statsmodels_anova_on_random_data():
    rng = np.random.default_rng(3)
    for _ in range(3):
        ratings = rng.normal(size=(9, 3)) + rng.normal(size=(9, 1)) * 2 + rng.normal(size=(1, 3))
        expected = _statsmodels_icc(ratings)
        for form, value in expected.items():
            assert robustness.icc(ratings, form) == pytest.approx(value, rel=1e-9)


def test_icc_vectorised_matches_per_feature():
    rng = np.random.default_rng(4)
    cube = rng.normal(size=(7, 3, 5))
    vectorised = robustness.icc(cube, "ICC(2,1)")
    looped = [robustness.icc(cube[:, :, j], "ICC(2,1)") for j in range(5)]
    np.testing.assert_allclose(vectorised, looped, rtol=1e-12)


def test_icc_table_handles_missing_and_constant():
    rng = np.random.default_rng(5)
    base = rng.normal(size=(8, 3))
    readers = {}
    for r in range(3):
        table = pd.DataFrame(
            base + 0.05 * rng.normal(size=base.shape),
            index=[f"P{i}" for i in range(8)],
            columns=["a", "b", "c"],
        )
        table["const"] = 1.0
        readers[f"reader{r}"] = table
    readers["reader1"].loc["P2", "b"] = np.nan
    readers["reader2"] = readers["reader2"].drop(index="P7")  # patient missing for one reader
    out = robustness.icc_table(readers)
    assert list(out.columns) == ["feature", "icc", "form", "n_patients"]
    rows = out.set_index("feature")
    assert rows.loc["a", "n_patients"] == 7 and rows.loc["b", "n_patients"] == 6
    assert np.isnan(rows.loc["const", "icc"])
    assert rows.loc["a", "icc"] > 0.95
    # the feature with a gap equals the ICC over its complete patients
    keep = [f"P{i}" for i in range(7) if i != 2]
    manual = np.stack([t.loc[keep, "b"].to_numpy() for t in readers.values()], axis=1)
    assert rows.loc["b", "icc"] == pytest.approx(robustness.icc(manual))


def _sphere_mask(shape=(30, 30, 30), radius=8.0, spacing=(1.0, 1.0, 1.0)):
    zz, yy, xx = np.indices(shape)
    centre = (np.array(shape) - 1) / 2
    inside = ((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2) <= radius**2
    image = sitk.GetImageFromArray(inside.astype(np.uint8))
    image.SetSpacing(spacing)
    return image




def test_perturbation_is_seeded_and_close():
    mask = _sphere_mask()
    first = robustness.perturbed_masks(mask, 3, seed=1, patient_id="P1")
    again = robustness.perturbed_masks(mask, 3, seed=1, patient_id="P1")
    other = robustness.perturbed_masks(mask, 3, seed=1, patient_id="P2")
    for a, b, c in zip(first, again, other, strict=True):
        assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
        assert 0.75 < robustness.dice(a, mask) < 1.0
        assert not np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(c))
        assert a.GetSpacing() == mask.GetSpacing()


def test_perturbation_of_tiny_mask_names_patient():
    tiny = np.zeros((10, 10, 10), np.uint8)
    tiny[5, 5, 5] = 1
    mask = sitk.GetImageFromArray(tiny)
    with pytest.raises(BadCase, match="P9"):
        # seeds 0..9 include erosions by more than the voxel, which empties the mask
        for seed in range(10):
            robustness.perturb_mask(
                mask, seed=seed, grow_mm=3.0, jitter_mm=0.0, shift_mm=0.0, patient_id="P9"
            )


def test_planted_features_more_robust_than_noise_features():
    """Toy phantom: tumour intensity and size vary by patient (planted structure); a second
    channel is structureless iid noise. Under mask perturbation, features of planted structure
    keep a high ICC; features of pure noise vary between patients only by sampling error, which
    re-delineation reshuffles, so their ICC is clearly lower."""
    rng = np.random.default_rng(0)
    shape = (36, 36, 36)
    readers: dict[str, dict] = {f"perturbation{i}": {} for i in range(3)}
    for p in range(12):
        mask = _sphere_mask(shape=shape, radius=rng.uniform(6, 12))
        planted = rng.normal(40, 15) + rng.normal(0, 5, size=shape)
        noise = rng.normal(0, 10, size=shape)
        for i, m in enumerate(robustness.perturbed_masks(mask, 3, seed=7, patient_id=f"P{p}")):
            inside = sitk.GetArrayFromImage(m) > 0
            readers[f"perturbation{i}"][f"P{p}"] = {
                "planted_mean": planted[inside].mean(),
                "planted_median": np.median(planted[inside]),
                "volume": float(inside.sum()),
                "noise_mean": noise[inside].mean(),
                "noise_skewness": stats.skew(noise[inside]),
            }
    tables = {r: pd.DataFrame.from_dict(v, orient="index") for r, v in readers.items()}
    out = robustness.icc_table(tables, form="ICC(3,1)").set_index("feature")["icc"]
    planted = out[["planted_mean", "planted_median"]]
    noise = out[["noise_mean", "noise_skewness"]]
    # measured: planted 0.99998, noise 0.85, volume 0.88 (Dice of perturbations ~0.85-0.9)
    assert planted.min() > 0.99
    assert noise.max() < 0.95 and planted.min() > noise.max() + 0.1
    assert out["volume"] > 0.8
