"""Evaluation of frozen predictions: contract columns and values against independent libraries."""

import numpy as np
import pandas as pd
import pytest
from lifelines.utils import concordance_index
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from radiogenomics.evaluation import stages as evaluation
from radiogenomics.evaluation.binary import METRIC_COLUMNS
from radiogenomics.models.settings import evaluation_settings

SETTINGS = evaluation_settings(
    {
        "bootstrap": 10,
        "td_auc_horizons_months": [12, 24],
        "dca_thresholds": {"start": 0.1, "stop": 0.5, "step": 0.1},
    }
)
TASK = {"time": "os_months", "event": "os_event", "horizon_months": 24}


def survival_inputs(n=90, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"P{i:03d}" for i in range(n)]
    cohort = np.array(["train", "test", "external"])[np.arange(n) % 3]
    z = rng.normal(size=n)
    death = 30 * rng.exponential(size=n) / np.exp(z)
    censor = rng.uniform(20, 60, size=n)
    clinical = pd.DataFrame(
        {
            "patient_id": ids,
            "cohort": cohort,
            "os_months": np.minimum(death, censor).round(2),
            "os_event": (death <= censor).astype(int),
        }
    )
    risk_a = z + rng.normal(scale=0.5, size=n)
    risk_b = rng.normal(size=n)
    predictions = pd.concat(
        [
            pd.DataFrame(
                {
                    "patient_id": ids,
                    "cohort": cohort,
                    "model": name,
                    "region_set": "",
                    "prediction": 1 / (1 + np.exp(-risk)),
                    "risk": risk,
                }
            )
            for name, risk in (("radscore", risk_a), ("noise", risk_b))
        ],
        ignore_index=True,
    )
    scores = pd.DataFrame(
        {
            "patient_id": ids,
            "cohort": cohort,
            "score": risk_a,
            "group": np.where(risk_a >= 0, "high", "low"),
        }
    )
    truth = pd.DataFrame({"patient_id": ids, "z": z, "risk": z})
    return clinical, predictions, scores, truth


def test_survival_metrics_match_lifelines():
    clinical, predictions, scores, _ = survival_inputs()
    result = evaluation.survival_evaluation(predictions, scores, clinical, SETTINGS, TASK)
    table = result["metrics"]
    assert list(table.columns) == METRIC_COLUMNS
    assert set(table["cohort"]) == {"train", "test", "external"}
    assert {"harrell_c", "uno_c", "td_auc_12", "td_auc_24", "logrank_p", "hr_high_vs_low"} <= set(
        table["metric"]
    )
    for cohort in ("test", "external"):
        rows = clinical[clinical["cohort"] == cohort]
        risk = (
            predictions.set_index(["model", "patient_id"]).loc["radscore"].loc[rows["patient_id"]]
        )
        expected = concordance_index(rows["os_months"], -risk["risk"], rows["os_event"])
        got = table.set_index(["model", "cohort", "metric"]).loc[("radscore", cohort, "harrell_c")]
        assert got["value"] == pytest.approx(expected)
        assert got["ci_low"] <= got["value"] <= got["ci_high"]
    # one paired comparison per cohort for the two models, C values as in the metrics table
    comparisons = result["c_comparisons"]
    assert len(comparisons) == 3
    c = table.set_index(["model", "cohort", "metric"])["value"]
    for row in comparisons.itertuples():
        assert row.c_a == pytest.approx(c[(row.model_a, row.cohort, "harrell_c")])
        assert row.c_b == pytest.approx(c[(row.model_b, row.cohort, "harrell_c")])


def test_truth_comparison_matches_lifelines():
    clinical, _, scores, truth = survival_inputs()
    table = evaluation.truth_comparison(scores, clinical, truth, TASK, n_boot=10)
    test = table.set_index("cohort").loc["test"]
    rows = scores.merge(clinical).merge(truth)
    rows = rows[rows["cohort"] == "test"]
    assert test["c_truth"] == pytest.approx(
        concordance_index(rows["os_months"], -rows["risk"], rows["os_event"])
    )
    assert test["c_radscore"] == pytest.approx(
        concordance_index(rows["os_months"], -rows["score"], rows["os_event"])
    )
    assert test["n"] == len(rows)


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(4)
    n = 60
    ids = [f"P{i:03d}" for i in range(n)]
    cohort = np.array(["train", "test"])[np.arange(n) % 2]
    label = rng.integers(0, 2, n)
    good = 1 / (1 + np.exp(-(2 * label - 1 + rng.normal(size=n))))
    weak = rng.uniform(size=n)
    predictions = pd.concat(
        [
            pd.DataFrame(
                {
                    "patient_id": ids,
                    "cohort": cohort,
                    "model": name,
                    "region_set": "mix",
                    "prediction": p,
                    "risk": p,
                }
            )
            for name, p in (("svm", good), ("logistic", weak))
        ],
        ignore_index=True,
    )
    labels = pd.DataFrame({"patient_id": ids, "cohort": cohort, "label": label})
    cutoffs = pd.DataFrame(
        {"region_set": "mix", "model": ["svm", "logistic"], "cutoff": [0.5, 0.4], "rule": "fixed"}
    )
    settings = {**SETTINGS, "cohorts": ["train", "test", "external"]}
    result = evaluation.binary_evaluation(
        predictions, labels, cutoffs, settings, {"region_set": "mix", "model": "svm"}
    )
    table = result["metrics"].set_index(["model", "cohort", "metric"])["value"]
    test = cohort == "test"
    assert table[("mix:svm", "test", "auc")] == pytest.approx(
        roc_auc_score(label[test], good[test])
    )
    assert table[("mix:logistic", "test", "accuracy")] == pytest.approx(
        accuracy_score(label[test], weak[test] >= 0.4)
    )
    assert table[("mix:svm", "test", "f1")] == pytest.approx(
        f1_score(label[test], good[test] >= 0.5)
    )
    assert "external" not in set(result["metrics"]["cohort"])  # no patients: no rows
    delong = result["delong"]
    assert list(delong["model_b"]) == ["mix:logistic", "mix:logistic"]
    assert delong.set_index("cohort").loc["test", "auc_b"] == pytest.approx(
        roc_auc_score(label[test], weak[test])
    )


def test_dca_thresholds_are_inclusive():
    np.testing.assert_allclose(
        evaluation.dca_thresholds({"start": 0.1, "stop": 0.5, "step": 0.1}),
        [0.1, 0.2, 0.3, 0.4, 0.5],
    )


def test_radscore_group_summary_matches_lifelines():
    from lifelines.statistics import logrank_test

    clinical, _, scores, _ = survival_inputs()
    rows = scores.merge(clinical).rename(columns={"os_months": "time", "os_event": "event"})
    summary = evaluation._km_summary(rows, "all")
    high = rows["group"] == "high"
    expected = logrank_test(
        rows.loc[high, "time"],
        rows.loc[~high, "time"],
        rows.loc[high, "event"],
        rows.loc[~high, "event"],
    ).p_value
    assert summary["logrank_p"] == pytest.approx(expected)
    assert summary["n_high"] == high.sum()
    assert summary["hr_ci_low"] < summary["hr"] < summary["hr_ci_high"]
