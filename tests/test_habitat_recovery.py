import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from sklearn.metrics import adjusted_rand_score

from radiogenomics.regions.recovery import cohort_summary, habitat_agreement, habitat_ari
from radiogenomics.core.io import write_label_map

# truth 1 1 1 2 2 2 against found 1 1 2 2 3 3: pairs together in both = C(2,2) + C(2,2) = 2,
# in truth C(3,2) * 2 = 6, in found C(2,2) * 3 = 3, of C(6,2) = 15 pairs; expected 6 * 3 / 15 = 1.2,
# ARI = (2 - 1.2) / ((6 + 3) / 2 - 1.2) = 8 / 33 (by hand)
PLANTED_1D = np.array([1, 1, 1, 2, 2, 2])
FOUND_1D = np.array([1, 1, 2, 2, 3, 3])


def _maps():
    """3-d maps holding the 1-d example inside both tumours; outside either, labels that would
    disagree (a voxel of one tumour only, background of both)."""
    planted = np.zeros((2, 3, 4), dtype=np.uint8)
    found = np.zeros_like(planted)
    inside = np.zeros(planted.shape, dtype=bool)
    inside[0, 1, :] = inside[1, 2, :2] = True  # six voxels, C order
    planted[inside], found[inside] = PLANTED_1D, FOUND_1D
    planted[1, 0, 0], found[1, 0, 1] = 2, 1  # tumour of one map only: left out
    return found, planted, inside


def test_ari_matches_a_hand_calculation_and_scikit_learn():
    assert habitat_ari(FOUND_1D, PLANTED_1D) == pytest.approx(8 / 33)
    assert adjusted_rand_score(PLANTED_1D, FOUND_1D) == pytest.approx(8 / 33)


def test_ari_is_computed_inside_both_tumours_only():
    found, planted, inside = _maps()
    assert habitat_ari(found, planted) == pytest.approx(8 / 33)
    assert habitat_ari(found, planted) == pytest.approx(adjusted_rand_score(planted[inside], found[inside]))
    # a whole-volume ARI would count the background and the one-map voxels
    assert adjusted_rand_score(planted.ravel(), found.ravel()) != pytest.approx(8 / 33)


def test_ari_ignores_how_the_habitats_are_numbered():
    rng = np.random.default_rng(3)
    planted = rng.integers(0, 4, size=(5, 6, 7))
    permuted = np.array([0, 3, 1, 2])[planted]  # 1 -> 3, 2 -> 1, 3 -> 2; background stays 0
    assert habitat_ari(permuted, planted) == pytest.approx(1.0)
    found = np.where(rng.random(planted.shape) < 0.2, rng.integers(1, 4, size=planted.shape), permuted)
    found[planted == 0] = 0
    inside = planted > 0
    expected = adjusted_rand_score(planted[inside], found[inside])
    assert habitat_ari(found, planted) == pytest.approx(expected)
    assert habitat_ari(np.array([0, 2, 3, 1])[found], planted) == pytest.approx(expected)


def test_ari_of_disjoint_tumours_is_nan_and_shapes_must_agree():
    assert np.isnan(habitat_ari(np.array([1, 2, 0, 0]), np.array([0, 0, 1, 2])))
    with pytest.raises(ValueError, match="shape"):
        habitat_ari(np.zeros((2, 3)), np.zeros((3, 2)))


def test_agreement_per_patient_and_cohort_from_the_maps(tmp_path):
    found, planted, inside = _maps()
    maps = {"P1": (found, planted), "P2": (planted, planted), "P3": (planted, planted)}
    for patient, (ours, truth) in maps.items():
        for folder, array in (("regions", ours), ("truth", truth)):
            write_label_map(sitk.GetImageFromArray(array), tmp_path / folder / patient / "habitats.nii.gz")
    patients = pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "cohort": ["test", "test", "external"]})
    table = habitat_agreement(tmp_path, patients)
    assert list(table.columns) == ["patient_id", "cohort", "ari", "n_voxels"]
    np.testing.assert_allclose(table.ari, [8 / 33, 1.0, 1.0])
    assert table.n_voxels.tolist() == [6, 7, 7]
    summary = cohort_summary(table).set_index("cohort")
    assert summary.loc["test", "n"] == 2 and summary.loc["external", "n"] == 1
    assert summary.loc["test", "ari_mean"] == pytest.approx((8 / 33 + 1) / 2)
    assert summary.loc["test", "ari_min"] == pytest.approx(8 / 33)
    assert summary.loc["external", "ari_median"] == pytest.approx(1.0)
