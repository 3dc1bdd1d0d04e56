import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from radiogenomics.models.lasso_cox import breslow_log_likelihood
from radiogenomics.models.selection import (
    SelectionChain,
    drop_redundant,
    lasso_cox_cv,
    lasso_logistic_cv,
    mrmr,
    mutual_information,
    quantile_bins,
    spearman_matrix,
    survival_target,
    univariate_auc,
    univariate_cindex,
    univariate_cox_pvalues,
)


def binary_data(n=200, p=60, true=(0, 1, 2, 3, 4), seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{j}" for j in range(p)])
    logit = X.iloc[:, list(true)].sum(axis=1) * 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def survival_data(n=300, p=200, true=(0, 1, 2, 3, 4), seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{j}" for j in range(p)])
    risk = X.iloc[:, list(true)].to_numpy() @ np.array([1.0, -1.0, 0.8, -0.8, 1.0])
    event_time = rng.exponential(np.exp(-risk))
    censor_time = rng.exponential(2.0, n)
    return X, survival_target(np.minimum(event_time, censor_time), event_time <= censor_time)


def test_univariate_auc_matches_sklearn():
    X, y = binary_data(n=80, p=5)
    X.iloc[:10, 0] = 0.0  # ties
    expected = [roc_auc_score(y, X[c]) for c in X.columns]
    np.testing.assert_allclose(univariate_auc(X.to_numpy(), y), expected)


def test_univariate_cindex_matches_lifelines():
    from lifelines.utils import concordance_index

    X, y = survival_data(n=70, p=5)
    X.iloc[:20, 2] = 0.0  # tied values
    expected = [concordance_index(y["time"], -X[c], y["event"]) for c in X.columns]
    np.testing.assert_allclose(univariate_cindex(X.to_numpy(), y), expected)


def test_spearman_matrix_matches_scipy():
    X, _ = binary_data(n=50, p=4, true=(0,))
    np.testing.assert_allclose(spearman_matrix(X.to_numpy()), spearmanr(X).statistic)


def test_redundancy_keeps_more_relevant_of_perfect_pair():
    X, y = binary_data(n=150, p=6, true=(0,))
    X["noisy_copy"] = np.exp(X["f0"] + 0.0)  # monotone copy: Spearman rho = 1
    # the copy is declared more relevant: it must win, f0 must go
    relevance = np.array([0.1, 0, 0, 0, 0, 0, 0.3])
    kept = drop_redundant(X, relevance, threshold=0.8)
    assert "noisy_copy" in kept and "f0" not in kept
    relevance[0] = 0.5
    kept = drop_redundant(X, relevance, threshold=0.8)
    assert "f0" in kept and "noisy_copy" not in kept
    assert len(kept) == 6


def test_chain_redundancy_uses_auc_relevance():
    X, y = binary_data(n=200, p=4, true=(0,))
    noise = np.random.default_rng(5).normal(size=200)
    X["weak_copy"] = X["f0"] + 0.4 * noise  # correlated (rho ~ 0.9) but less relevant twin
    chain = SelectionChain({"univariate": False, "lasso": False, "redundancy": {"threshold": 0.7}})
    chain.fit(X, y)
    assert "f0" in chain.features_ and "weak_copy" not in chain.features_


def test_mrmr_skips_redundant_copy():
    rng = np.random.default_rng(1)
    n = 400
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = ((a + b) > 0).astype(int)
    X = pd.DataFrame(
        {"a": a, "a_copy": a + 0.01 * rng.normal(size=n), "b": b, "noise": rng.normal(size=n)}
    )
    for score in ("mi", "f"):
        chosen = mrmr(X, y, k=2, score=score, seed=0)
        assert set(chosen) in ({"a", "b"}, {"a_copy", "b"}), (score, chosen)


def test_mutual_information_matches_sklearn():
    from sklearn.metrics import mutual_info_score

    X, y = binary_data(n=90, p=5)
    codes = quantile_bins(X.to_numpy(), 4)
    assert set(np.unique(codes)) == {0, 1, 2, 3}
    one_hot = np.eye(4)[codes]
    expected = [mutual_info_score(y, codes[:, j]) for j in range(5)]
    np.testing.assert_allclose(mutual_information(y, one_hot), expected, atol=1e-12)
    expected = [mutual_info_score(codes[:, 2], codes[:, j]) for j in range(5)]
    np.testing.assert_allclose(mutual_information(codes[:, 2], one_hot), expected, atol=1e-12)


def test_cox_partial_likelihood_matches_lifelines():
    X, y = survival_data(n=60, p=5)
    frame = X.assign(time=y["time"], event=y["event"].astype(int))
    fitter = CoxPHFitter().fit(frame, "time", "event")
    risk = X.to_numpy() @ fitter.params_.to_numpy()
    ll = breslow_log_likelihood(risk, y["time"], y["event"])
    assert ll == pytest.approx(fitter.log_likelihood_, rel=1e-6)


def test_univariate_cox_pvalues_match_lifelines_with_ties():
    X, y = survival_data(n=120, p=6)
    y["time"] = np.ceil(y["time"] * 4)  # coarse times: many tied events (Efron)
    X["separable"] = np.where(y["event"] & (y["time"] <= 1), 10.0, 0.0) + 1e-3 * X["f5"]
    pvalues = univariate_cox_pvalues(X, y)
    for column in X.columns[:6]:
        frame = pd.DataFrame({"x": X[column], "time": y["time"], "event": y["event"]})
        expected = CoxPHFitter().fit(frame, "time", "event").summary.loc["x", "p"]
        assert np.log(pvalues[column]) == pytest.approx(np.log(expected), rel=1e-3), column
    assert pvalues[["f0", "f1"]].max() < 0.05
    assert 0.0 <= pvalues["separable"] <= 1.0


def test_lasso_cox_recovers_true_features():
    X, y = survival_data()
    coefficients, cv = lasso_cox_cv(X, y, folds=5, rule="1se", n_lambdas=25, seed=0)
    selected = set(coefficients[coefficients != 0].index)
    truth = {f"f{j}" for j in range(5)}
    assert len(selected & truth) / 5 >= 0.8
    assert cv["chosen"].sum() == 1 and cv["chosen"].equals(cv["lambda_1se"])
    # 1-SE is never less sparse than min (lowest mean CV deviance)
    at_min = cv["n_nonzero"].iloc[cv["cv_mean"].idxmin()]
    assert at_min >= len(selected) == cv.loc[cv["chosen"], "n_nonzero"].item()
    assert cv.loc[cv["lambda_min"], "n_nonzero"].item() == at_min


def test_lasso_logistic_recovers_true_features():
    X, y = binary_data(n=300, p=200)
    coefficients, intercept, cv = lasso_logistic_cv(X, y, folds=5, n_lambdas=15, seed=0)
    selected = set(coefficients[coefficients != 0].index)
    assert len(selected & {f"f{j}" for j in range(5)}) / 5 >= 0.8
    assert cv["n_nonzero"].iloc[cv["cv_mean"].idxmin()] >= len(selected)


def test_chain_funnel_and_robustness():
    X, y = survival_data(n=150, p=40)
    X["constant"] = 1.0
    X["mostly_nan"] = np.where(np.arange(150) < 100, np.nan, 1.0 * np.arange(150))
    robustness = pd.DataFrame(
        {"feature": X.columns[:40], "icc": np.where(np.arange(40) % 4 == 3, 0.5, 0.95)}
    )
    chain = SelectionChain({"lasso": {"folds": 5, "n_lambdas": 15}}, seed=0).fit(
        X, y, robustness=robustness
    )
    funnel = chain.funnel_.set_index("step")["n_features"]
    assert list(funnel.index) == ["input", "robustness", "valid", "redundancy", "cox", "lasso"]
    assert funnel["input"] == 42 and funnel["robustness"] == 32 and funnel["valid"] == 30
    assert list(funnel) == sorted(funnel, reverse=True)
    assert "f3" not in chain.features_  # icc 0.5
    assert len(chain.selected_features_) == funnel["lasso"] >= 1


def test_chain_never_looks_at_test_rows():
    X, y = binary_data(n=150, p=30)
    config = {
        "univariate": {"method": "mrmr", "k": 10, "mrmr_score": "f"},
        "lasso": {"folds": 5, "n_lambdas": 10},
    }
    reference = SelectionChain(config, seed=3).fit(X, y)
    test = binary_data(n=40, p=30, seed=9)[0]
    baseline = reference.transform(test)
    garbage = test.copy()
    garbage.iloc[::2] = np.nan
    garbage.iloc[1::2] = 1e9
    # the fitted chain only depends on training rows: refit on train and compare everything
    again = SelectionChain(config, seed=3).fit(X, y)
    again.transform(garbage)
    pd.testing.assert_frame_equal(reference.selected_features_, again.selected_features_)
    pd.testing.assert_frame_equal(again.transform(test), baseline)
    # NaNs in new rows get the training median, i.e. z = (median - mean) / sd
    transformed = again.transform(garbage).iloc[0]
    expected = (again.medians_ - again.means_) / again.sds_
    np.testing.assert_allclose(transformed.to_numpy(), expected.to_numpy())
    # per-row transform: a garbage row does not change another row's value
    mixed = pd.concat([test.iloc[:1], garbage.iloc[1:]])
    pd.testing.assert_series_equal(again.transform(mixed).iloc[0], baseline.iloc[0])


def test_unknown_config_option_is_refused():
    with pytest.raises(ValueError, match="unknown options"):
        SelectionChain({"lasso": {"lamda": 1}}).fit(*binary_data(n=30, p=5))


def test_lasso_cox_cv_skips_a_fold_without_events():
    X, y = survival_data(n=120, p=8)
    foldid = np.where(np.arange(120) % 4 == 0, 1, 2 + np.arange(120) % 3)
    foldid[~y["event"] & (foldid != 1)] = 1  # fold 1: every censored patient, ...
    foldid[y["event"] & (foldid == 1)] = 2  # ... and no events
    _, cv = lasso_cox_cv(X, y, foldid=foldid, n_lambdas=20)
    assert np.isfinite(cv["cv_mean"]).all() and cv["chosen"].sum() == 1
