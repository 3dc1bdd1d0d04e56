"""Binary metrics against scikit-learn, brute-force DeLong, bootstrap and hand calculations."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from radiogenomics.evaluation import binary as mt


def binary_data(n=150, seed=0, shift=1.0):
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.4, n)
    a = y * shift + rng.normal(size=n)
    b = 0.6 * a + 0.8 * rng.normal(size=n) + 0.3 * y
    return y, np.round(a, 1), b  # rounding makes ties


def brute_force_delong(y, scores):
    """DeLong, DeLong & Clarke-Pearson (1988) with explicit pairwise kernels, O(m n)."""
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    auc = psi.mean(axis=(1, 2))
    return auc, np.cov(v10) / m + np.cov(v01) / n


def test_auc_matches_sklearn_and_covariance_matches_brute_force():
    y, a, b = binary_data()
    auc, cov = mt.delong_auc_covariance(y, np.vstack([a, b]))
    assert auc[0] == pytest.approx(roc_auc_score(y, a))
    assert auc[1] == pytest.approx(roc_auc_score(y, b))
    ref_auc, ref_cov = brute_force_delong(y, np.vstack([a, b]))
    np.testing.assert_allclose(auc, ref_auc)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10)


def test_delong_variance_close_to_bootstrap():
    y, a, _ = binary_data(n=200, seed=1)
    result = mt.roc_auc_delong(y, a)
    rng = np.random.default_rng(2)
    # Mann-Whitney U / (m n) on each resample, vectorised over 2000 resamples.
    index = rng.integers(0, len(y), size=(2000, len(y)))
    labels, values = y[index], a[index]
    m = labels.sum(axis=1)
    n = len(y) - m
    rank_sum = np.where(labels == 1, rankdata(values, axis=1), 0).sum(axis=1)
    boot = (rank_sum - m * (m + 1) / 2) / (m * n)
    assert result["se"] ** 2 == pytest.approx(np.var(boot, ddof=1), rel=0.15)
    assert result["ci_low"] < result["value"] < result["ci_high"]


def test_delong_test_identical_and_different_scores():
    y, a, b = binary_data(n=200, seed=3)
    same = mt.delong_test(y, a, a)
    assert same["p"] == 1.0 and same["difference"] == 0.0
    noise = np.random.default_rng(4).normal(size=len(y))
    different = mt.delong_test(y, a, noise)
    _, cov = brute_force_delong(y, np.vstack([a, noise]))
    z = (roc_auc_score(y, a) - roc_auc_score(y, noise)) / np.sqrt(
        cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    )
    assert different["z"] == pytest.approx(z)
    assert different["p"] < 1e-4


def test_cutoff_metrics_and_confusion_match_sklearn():
    y, a, _ = binary_data(seed=5)
    cutoff = 0.5
    predicted = (a >= cutoff).astype(int)
    m = mt.cutoff_metrics(y, a, cutoff)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert m["precision"] == pytest.approx(precision_score(y, predicted))
    assert m["recall"] == pytest.approx(recall_score(y, predicted))
    assert m["f1"] == pytest.approx(f1_score(y, predicted))
    assert m["specificity"] == pytest.approx(recall_score(1 - y, 1 - predicted))
    np.testing.assert_array_equal(
        mt.confusion_matrix(y, a, cutoff).to_numpy(), confusion_matrix(y, predicted)
    )


def test_calibration_curve_bins():
    rng = np.random.default_rng(6)
    p = rng.uniform(size=400)
    y = rng.binomial(1, p)
    table = mt.calibration_curve(y, p, n_bins=4)
    edges = np.quantile(p, [0, 0.25, 0.5, 0.75, 1])
    first = p <= edges[1]
    assert table["predicted"].iloc[0] == pytest.approx(p[first].mean())
    assert table["observed"].iloc[0] == pytest.approx(y[first].mean())


def test_net_benefit_hand_example():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    row = mt.net_benefit(y, p, [0.25]).iloc[0]
    # Treated (p >= 0.25): 0.9, 0.6, 0.7 -> TP 2, FP 1; odds 1/3.
    assert row["model"] == pytest.approx(2 / 10 - 1 / 10 / 3)
    assert row["treat_all"] == pytest.approx(0.3 - 0.7 / 3)
    assert row["treat_none"] == 0.0


def test_metrics_rows_table():
    y, a, _ = binary_data(seed=7)
    rows = pd.DataFrame(mt.metrics_rows("lr", "test", y, a, cutoff=0.5, n_boot=300, seed=1))
    assert list(rows.columns) == mt.METRIC_COLUMNS
    assert rows["metric"].tolist() == [
        "auc",
        "accuracy",
        "precision",
        "recall",
        "specificity",
        "f1",
    ]
    assert rows.loc[0, "value"] == pytest.approx(roc_auc_score(y, a))
    assert ((rows["ci_low"] <= rows["value"]) & (rows["value"] <= rows["ci_high"])).all()
    again = pd.DataFrame(mt.metrics_rows("lr", "test", y, a, cutoff=0.5, n_boot=300, seed=1))
    pd.testing.assert_frame_equal(rows, again)


def test_single_class_is_refused():
    with pytest.raises(ValueError, match="both classes"):
        mt.roc_auc_delong(np.zeros(5), np.arange(5.0))
