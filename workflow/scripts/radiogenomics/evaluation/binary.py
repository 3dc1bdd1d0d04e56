"""Binary-task evaluation: ROC AUC with DeLong CI and test, cutoff metrics, calibration, DCA.

Labels are 0/1 (1 = positive, e.g. high T stage); scores are "higher = more likely positive".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.calibration import calibration_curve as sklearn_calibration_curve
from sklearn.metrics import roc_curve

METRIC_COLUMNS = ["model", "cohort", "metric", "value", "ci_low", "ci_high"]


def _binary(y_true, y_score=None):
    y_true = np.asarray(y_true).astype(int)
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("labels must be 0/1")
    if y_true.min() == y_true.max():
        raise ValueError("need both classes to evaluate a binary task")
    if y_score is None:
        return y_true
    y_score = np.asarray(y_score, dtype=float)
    if y_score.shape[-1] != y_true.shape[0]:
        raise ValueError("labels and scores differ in length")
    return y_true, y_score


def delong_auc_covariance(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and their DeLong covariance matrix for one or more scores on the same patients.

    ``scores`` is (n_patients,) or (n_models, n_patients). Fast DeLong of Sun & Xu (2014,
    IEEE Signal Process Lett 21:1389): placement values from mid-ranks, O(n log n) per model.
    Written here because neither scikit-learn nor scipy provides DeLong's variance.
    """
    y_true, scores = _binary(y_true, scores)
    scores = np.atleast_2d(scores)
    positives, negatives = scores[:, y_true == 1], scores[:, y_true == 0]
    m, n = positives.shape[1], negatives.shape[1]
    rank_pos = stats.rankdata(positives, axis=1)
    rank_neg = stats.rankdata(negatives, axis=1)
    rank_all = stats.rankdata(np.concatenate([positives, negatives], axis=1), axis=1)
    auc = (rank_all[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    # V10: share of negatives each positive beats; V01: share of positives beating each negative.
    v10 = (rank_all[:, :m] - rank_pos) / n
    v01 = 1.0 - (rank_all[:, m:] - rank_neg) / m
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return auc, s10 / m + s01 / n


def roc_auc_delong(y_true, y_score, level: float = 0.95) -> dict:
    """AUC with DeLong standard error and Wald interval clipped to [0, 1]."""
    auc, covariance = delong_auc_covariance(y_true, y_score)
    se = float(np.sqrt(covariance[0, 0]))
    z = stats.norm.ppf(0.5 + level / 2.0)
    value = float(auc[0])
    return {
        "value": value,
        "se": se,
        "ci_low": float(max(0.0, value - z * se)),
        "ci_high": float(min(1.0, value + z * se)),
    }


def delong_test(y_true, score_a, score_b) -> dict:
    """Two-sided DeLong test of AUC(a) = AUC(b) for two scores on the same patients."""
    auc, cov = delong_auc_covariance(y_true, np.vstack([score_a, score_b]))
    variance = cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]
    difference = float(auc[0] - auc[1])
    if variance <= 0.0:
        z, p = 0.0, 1.0
    else:
        z = difference / float(np.sqrt(variance))
        p = float(2.0 * stats.norm.sf(abs(z)))
    return {
        "auc_a": float(auc[0]),
        "auc_b": float(auc[1]),
        "difference": difference,
        "z": z,
        "p": p,
    }


def confusion_counts(y_true, y_score, cutoff: float) -> dict:
    """tp, fp, tn, fn with a patient called positive when score >= cutoff."""
    y_true, y_score = _binary(y_true, y_score)
    predicted = y_score >= cutoff
    actual = y_true == 1
    return {
        "tp": int(np.sum(predicted & actual)),
        "fp": int(np.sum(predicted & ~actual)),
        "tn": int(np.sum(~predicted & ~actual)),
        "fn": int(np.sum(~predicted & actual)),
    }


def confusion_matrix(y_true, y_score, cutoff: float) -> pd.DataFrame:
    """2 x 2 table, rows = actual (0, 1), columns = predicted (0, 1)."""
    c = confusion_counts(y_true, y_score, cutoff)
    return pd.DataFrame(
        [[c["tn"], c["fp"]], [c["fn"], c["tp"]]],
        index=pd.Index([0, 1], name="actual"),
        columns=pd.Index([0, 1], name="predicted"),
    )


def _rates(tp, fp, tn, fn) -> dict:
    """Cutoff metrics from counts (arrays allowed); 0/0 gives 0 as scikit-learn's zero_division=0."""
    tp, fp, tn, fn = (np.asarray(x, dtype=float) for x in (tp, fp, tn, fn))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        specificity = np.where(tn + fp > 0, tn / (tn + fp), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {
        "accuracy": (tp + tn) / (tp + fp + tn + fn),
        "precision": precision,
        "recall": recall,
        "specificity": specificity,
        "f1": f1,
    }


def cutoff_metrics(y_true, y_score, cutoff: float) -> dict:
    """Accuracy, precision, recall (sensitivity), specificity and F1 at a fixed cutoff."""
    counts = confusion_counts(y_true, y_score, cutoff)
    return {k: float(v) for k, v in _rates(**counts).items()}


def calibration_curve(y_true, y_prob, n_bins: int = 5, strategy: str = "quantile") -> pd.DataFrame:
    """Observed fraction of positives vs mean predicted probability per bin (scikit-learn)."""
    y_true, y_prob = _binary(y_true, y_prob)
    observed, predicted = sklearn_calibration_curve(
        y_true, y_prob, n_bins=n_bins, strategy=strategy
    )
    return pd.DataFrame({"predicted": predicted, "observed": observed})


def net_benefit(y_true, y_prob, thresholds: Sequence[float]) -> pd.DataFrame:
    """Decision curve (Vickers & Elkin 2006, Med Decis Making 26:565).

    NB(p_t) = TP/n - FP/n * p_t / (1 - p_t) for the model (treat when prob >= p_t);
    treat-all: prevalence - (1 - prevalence) * p_t / (1 - p_t); treat-none: 0.
    """
    y_true, y_prob = _binary(y_true, y_prob)
    n = len(y_true)
    prevalence = y_true.mean()
    rows = []
    for threshold in thresholds:
        odds = threshold / (1.0 - threshold)
        counts = confusion_counts(y_true, y_prob, threshold)
        rows.append(
            {
                "threshold": float(threshold),
                "model": counts["tp"] / n - counts["fp"] / n * odds,
                "treat_all": float(prevalence - (1.0 - prevalence) * odds),
                "treat_none": 0.0,
            }
        )
    return pd.DataFrame(rows)


def metrics_rows(
    model: str,
    cohort: str,
    y_true,
    y_score,
    cutoff: float,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[dict]:
    """Rows for results/models/{task}/metrics.tsv (model, cohort, metric, value, ci_low, ci_high).

    AUC carries the DeLong interval; cutoff metrics (the cutoff fixed on train) carry
    percentile bootstrap intervals over patients.
    """
    y_true, y_score = _binary(y_true, y_score)
    auc = roc_auc_delong(y_true, y_score, level)
    rows = [
        {
            "model": model,
            "cohort": cohort,
            "metric": "auc",
            **{k: auc[k] for k in ("value", "ci_low", "ci_high")},
        }
    ]
    predicted = y_score >= cutoff
    actual = y_true == 1
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(y_true), size=(n_boot, len(y_true)))
    p, a = predicted[index], actual[index]
    boot = _rates(
        tp=(p & a).sum(axis=1),
        fp=(p & ~a).sum(axis=1),
        tn=(~p & ~a).sum(axis=1),
        fn=(~p & a).sum(axis=1),
    )
    alpha = (1.0 - level) / 2.0
    for name, value in cutoff_metrics(y_true, y_score, cutoff).items():
        low, high = np.quantile(boot[name], [alpha, 1.0 - alpha])
        rows.append(
            {
                "model": model,
                "cohort": cohort,
                "metric": name,
                "value": value,
                "ci_low": float(low),
                "ci_high": float(high),
            }
        )
    return rows
