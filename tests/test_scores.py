import numpy as np
import pandas as pd
import pytest
from sksurv.metrics import cumulative_dynamic_auc

from radiogenomics.models.radscore import (
    apply_radscore,
    fit_radscore,
    formula_string,
    radscore_formula,
    risk_groups,
    scores_table,
    time_dependent_roc,
    youden_cutoff_binary,
    youden_cutoff_survival,
)
from radiogenomics.models.selection import SelectionChain, survival_target


def fitted_chain():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(3.0, 2.0, size=(120, 6)), columns=list("abcdef"))
    y = ((X["a"] - X["b"] + rng.normal(size=120)) > 0).astype(int)
    config = {"redundancy": False, "univariate": False, "lasso": {"folds": 5, "n_lambdas": 10}}
    return SelectionChain(config, seed=0).fit(X, y), X


def test_radscore_equals_manual_arithmetic():
    chain, X = fitted_chain()
    formula = radscore_formula(chain)
    assert formula["term"].iloc[0] == "(intercept)"
    new = X.iloc[:5].copy()
    new.iloc[0, 0] = np.nan
    manual = []
    for _, row in new.iterrows():
        total = chain.intercept_
        for term in formula.iloc[1:].itertuples():
            value = row[term.term] if not np.isnan(row[term.term]) else X[term.term].median()
            mean, sd = X[term.term].mean(), X[term.term].std(ddof=0)
            total += term.coefficient * (value - mean) / sd
        manual.append(total)
    np.testing.assert_allclose(apply_radscore(formula, new).to_numpy(), manual)
    # and it equals the chain's own linear predictor
    linear = chain.transform(new).to_numpy() @ chain.selected_features_["coefficient"].to_numpy()
    np.testing.assert_allclose(apply_radscore(formula, new).to_numpy(), linear + chain.intercept_)


def test_formula_string_lists_every_term():
    formula = pd.DataFrame(
        {
            "term": ["(intercept)", "whole__glcm_Contrast", "peri__firstorder_Mean"],
            "coefficient": [0.5, 1.25, -0.75],
            "scaler_mean": [np.nan, 10.0, -3.0],
            "scaler_sd": [np.nan, 2.0, 4.0],
            "train_median": [np.nan, 9.0, -2.0],
        }
    )
    text = formula_string(formula)
    assert text == (
        "radscore = 0.5 + 1.25 * (whole__glcm_Contrast - 10) / 2 "
        "- 0.75 * (peri__firstorder_Mean - -3) / 4"
    )
    score = apply_radscore(
        formula, pd.DataFrame({"whole__glcm_Contrast": [12.0], "peri__firstorder_Mean": [1.0]})
    )
    assert score.iloc[0] == pytest.approx(0.5 + 1.25 * 1 - 0.75 * 1)


def test_youden_binary_hand_made():
    # thresholds: >=6 J=2/3, >=4 J=1-1/4=0.75 (max), >=2 J=1-3/4
    scores = [1, 2, 3, 4, 5, 6, 7]
    labels = [0, 0, 0, 1, 0, 1, 1]
    assert youden_cutoff_binary(scores, labels) == 4
    assert list(risk_groups(scores, 4)) == ["low"] * 3 + ["high"] * 4


def test_youden_binary_picks_the_best_cutoff_of_a_hand_made_roc():
    # Positives 0.35, 0.6, 0.8, 0.85, 0.9; negatives 0.1, 0.3, 0.4, 0.7.
    # Cutoff 0.8: sens 3/5, spec 1 -> J 0.6; 0.35: sens 1, spec 0.5 -> 0.5; 0.6: 4/5 - 1/4 = 0.55.
    labels = [1, 1, 1, 1, 1, 0, 0, 0, 0]
    scores = [0.35, 0.6, 0.8, 0.85, 0.9, 0.1, 0.3, 0.4, 0.7]
    assert youden_cutoff_binary(scores, labels) == 0.8


def test_survival_youden_hand_made_roc():
    # No censoring, so weights are equal: cases (t <= 10) have scores 5, 7, 9, controls
    # 1, 2, 6, 8. Cutoff 5: sens 3/3, spec 2/4 -> J = 1/2; cutoff 7: sens 2/3, spec 3/4 ->
    # J = 5/12; cutoff 9: sens 1/3, spec 1 -> J = 1/3. Cutoff 5 wins.
    time = np.array([3, 5, 8, 20, 25, 30, 40], float)
    event = np.ones(7, bool)
    score = np.array([5, 7, 9, 1, 2, 6, 8], float)
    assert youden_cutoff_survival(score, time, event, horizon=10.0) == 5.0
    roc = time_dependent_roc(score, time, event, horizon=10.0).set_index("threshold")
    assert (roc.loc[5.0, "sensitivity"], roc.loc[5.0, "specificity"]) == (1.0, 0.5)
    assert roc.loc[7.0, "sensitivity"] + roc.loc[7.0, "specificity"] - 1 == pytest.approx(5 / 12)


def test_survival_youden_weighs_cases_by_inverse_censoring():
    # A censoring at t=5 (6 at risk) makes G = 5/6 afterwards, so the cases at t=6 and t=8
    # weigh 6/5 against 1 for the cases at t=2 and t=4.
    time = np.array([2, 4, 5, 6, 8, 20, 25, 30], float)
    event = np.array([1, 1, 0, 1, 1, 1, 1, 1], bool)
    score = np.array([9, 8, 0, 3, 2.5, 1, 2.6, 2.7])
    # Cutoff 3 catches cases 9, 8, 3 and no control: sensitivity (1 + 1 + 1.2) / 4.4.
    assert youden_cutoff_survival(score, time, event, horizon=10.0) == 3.0
    roc = time_dependent_roc(score, time, event, horizon=10.0).set_index("threshold")
    assert roc.loc[3.0, "sensitivity"] == pytest.approx(3.2 / 4.4)
    assert roc.loc[3.0, "specificity"] == 1.0


def test_survival_youden_without_censoring_equals_binary():
    rng = np.random.default_rng(2)
    score = rng.normal(size=80)
    time = rng.exponential(np.exp(-score))
    event = np.ones(80, bool)
    horizon = np.median(time)
    expected = youden_cutoff_binary(score, time <= horizon)
    assert youden_cutoff_survival(score, time, event, horizon) == expected


def test_time_dependent_roc_auc_matches_sksurv():
    rng = np.random.default_rng(3)
    n = 150
    score = rng.normal(size=n)
    event_time = rng.exponential(np.exp(-score))
    censor = rng.exponential(1.5, n)
    time = np.minimum(event_time, censor)
    event = event_time <= censor
    time = np.round(time, 1)  # ties, also between an event and a censoring
    assert set(time[event]) & set(time[~event])
    horizon = float(np.quantile(time, 0.5))
    roc = time_dependent_roc(score, time, event, horizon)
    fpr = np.append(1 - roc["specificity"].to_numpy(), 1.0)
    tpr = np.append(roc["sensitivity"].to_numpy(), 1.0)
    auc = np.trapezoid(tpr, fpr)
    target = survival_target(time, event)
    expected, _ = cumulative_dynamic_auc(target, target, score, [horizon])
    assert auc == pytest.approx(expected[0], abs=1e-9)


def test_scores_table_locks_cutoff():
    table = scores_table(["p1", "p2", "p3"], ["train", "test", "external"], [0.1, 0.5, 0.9], 0.5)
    assert list(table.columns) == ["patient_id", "cohort", "score", "group"]
    assert list(table["group"]) == ["low", "high", "high"]


def test_fit_radscore_survival_end_to_end():
    rng = np.random.default_rng(7)
    n, p = 220, 30
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"whole__f{j}" for j in range(p)])
    risk = X["whole__f0"] - X["whole__f1"]
    event_time = rng.exponential(24 * np.exp(-risk))
    censor = rng.uniform(12, 90, n)
    time, event = np.minimum(event_time, censor), event_time <= censor
    cohorts = np.where(np.arange(n) < 150, "train", "test")
    train = cohorts == "train"
    config = {"redundancy": {"threshold": 0.8}, "lasso": {"folds": 5, "n_lambdas": 15}}
    result = fit_radscore(
        X,
        cohorts,
        [f"P{j}" for j in range(n)],
        survival_target(time[train], event[train]),
        config,
        horizon=24.0,
    )
    assert {"whole__f0", "whole__f1"} <= set(result["selected_features"]["feature"])
    scores = result["scores"]
    assert youden_cutoff_survival(scores["score"][train], time[train], event[train], 24.0) == (
        result["cutoff"]
    )
    from lifelines.utils import concordance_index

    test = ~train
    c_test = concordance_index(time[test], -scores["score"][test], event[test])
    assert c_test > 0.7
    assert set(scores["group"]) == {"high", "low"}
    assert result["formula_text"].startswith("radscore = 0 ")


def test_permuted_training_survival_gives_chance_test_c():
    """Leakage check for the survival chain: shuffled training outcomes -> test C near 0.5."""
    from lifelines.utils import concordance_index

    c_values = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        n, p = 300, 40
        X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{j}" for j in range(p)])
        event_time = rng.exponential(24 * np.exp(-(X["f0"] - X["f1"])))
        censor = rng.uniform(12, 90, n)
        time, event = np.minimum(event_time, censor), event_time <= censor
        cohorts = np.where(np.arange(n) < 150, "train", "test")
        train = cohorts == "train"
        shuffle = rng.permutation(150)
        y_permuted = survival_target(time[train][shuffle], event[train][shuffle])
        config = {"univariate": {"p_threshold": 0.2}, "lasso": {"folds": 5, "n_lambdas": 10}}
        result = fit_radscore(X, cohorts, np.arange(n), y_permuted, config, horizon=24.0, seed=seed)
        score = result["scores"]["score"].to_numpy()
        c_values.append(concordance_index(time[~train], -score[~train], event[~train]))
    assert abs(np.mean(c_values) - 0.5) < 0.1, c_values
