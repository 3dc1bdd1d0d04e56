"""Radscore: a frozen LASSO-weighted sum of z-scored features, with a cutoff locked on train.

radscore = intercept + sum_j coefficient_j * (x_j - mean_j) / sd_j, where mean and sd come
from the training rows (a missing x_j takes the training median). The formula table holds
everything needed to recompute the score by hand.

Cutoffs (fixed on train, then applied unchanged to test and external cohorts):
- binary: the threshold with the largest Youden index J = sensitivity + specificity - 1 on the
  training ROC;
- survival: the same on the cumulative/dynamic time-dependent ROC at a horizon t, cases
  T <= t with an event weighted by 1 / G(T) (KM estimate of the censoring distribution,
  Uno 2007 / Heagerty 2000), controls T > t.
Score >= cutoff -> group "high".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

FORMULA_COLUMNS = ["term", "coefficient", "scaler_mean", "scaler_sd", "train_median"]


def radscore_formula(chain) -> pd.DataFrame:
    """Formula table (term, coefficient, scaler_mean, scaler_sd, train_median) from a fitted
    ``SelectionChain``; the first row is the intercept."""
    selected = chain.selected_features_.set_index("feature")["coefficient"]
    intercept = pd.DataFrame(
        [["(intercept)", float(chain.intercept_), np.nan, np.nan, np.nan]], columns=FORMULA_COLUMNS
    )
    terms = pd.DataFrame(
        {
            "term": selected.index,
            "coefficient": selected.to_numpy(dtype=float),
            "scaler_mean": chain.means_[selected.index].to_numpy(dtype=float),
            "scaler_sd": chain.sds_[selected.index].to_numpy(dtype=float),
            "train_median": chain.medians_[selected.index].to_numpy(dtype=float),
        }
    )
    return pd.concat([intercept, terms], ignore_index=True)


def formula_string(formula: pd.DataFrame, name: str = "radscore", digits: int = 4) -> str:
    """Human-readable: radscore = b0 + b1 * (x1 - m1) / s1 + ..."""
    intercept = formula.iloc[0]
    parts = [f"{intercept['coefficient']:.{digits}g}"]
    for row in formula.iloc[1:].itertuples(index=False):
        sign = "-" if row.coefficient < 0 else "+"
        parts.append(
            f"{sign} {abs(row.coefficient):.{digits}g} * "
            f"({row.term} - {row.scaler_mean:.{digits}g}) / {row.scaler_sd:.{digits}g}"
        )
    return f"{name} = " + " ".join(parts)


def apply_radscore(formula: pd.DataFrame, features: pd.DataFrame) -> pd.Series:
    """Score every row of ``features`` with the frozen formula."""
    terms = formula.iloc[1:].set_index("term")
    missing = [term for term in terms.index if term not in features.columns]
    if missing:
        raise KeyError(f"feature table lacks radscore terms: {missing[:5]}")
    values = features[terms.index].astype(float).fillna(terms["train_median"])
    z = (values - terms["scaler_mean"]) / terms["scaler_sd"]
    return pd.Series(
        float(formula.iloc[0]["coefficient"]) + z.to_numpy() @ terms["coefficient"].to_numpy(),
        index=features.index,
        name="score",
    )


def _first_max(youden: np.ndarray) -> int:
    """First (highest-threshold) index of the maximum, with a tolerance so that equal J values
    reached by different floating-point sums count as ties."""
    return int(np.flatnonzero(youden >= np.max(youden) - 1e-12)[0])


def youden_cutoff_binary(scores, labels) -> float:
    """Threshold maximising sensitivity + specificity - 1 (ties: the highest threshold)."""
    fpr, tpr, thresholds = roc_curve(
        np.asarray(labels).astype(int), np.asarray(scores), drop_intermediate=False
    )
    return float(thresholds[_first_max(tpr - fpr)])


def time_dependent_roc(scores, time, event, horizon: float) -> pd.DataFrame:
    """Cumulative/dynamic ROC at ``horizon`` with KM-based inverse-probability-of-censoring
    weights (:func:`radiogenomics.evaluation.survival.censoring_weights`, fit on these same patients).
    No maintained library returns the ROC's thresholds; tested: its trapezoid AUC equals
    sksurv's cumulative_dynamic_auc.

    Returns rows (threshold, sensitivity, specificity), thresholds descending, first row
    threshold = +inf (nobody positive).
    """
    from ..evaluation.survival import censoring_weights

    scores = np.asarray(scores, dtype=float)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    cases = event & (time <= horizon)
    controls = time > horizon
    if not cases.any() or not controls.any():
        raise ValueError(f"horizon {horizon}: needs events before and survivors beyond it")
    case_weights = censoring_weights(time, event, time[cases], event[cases])
    thresholds = np.concatenate([[np.inf], np.unique(scores)[::-1]])
    case_scores, control_scores = scores[cases], scores[controls]
    sensitivity = np.array(
        [case_weights[case_scores >= c].sum() / case_weights.sum() for c in thresholds]
    )
    specificity = np.array([np.mean(control_scores < c) for c in thresholds])
    return pd.DataFrame(
        {"threshold": thresholds, "sensitivity": sensitivity, "specificity": specificity}
    )


def youden_cutoff_survival(scores, time, event, horizon: float) -> float:
    """Threshold maximising J on the time-dependent ROC at ``horizon`` (ties: highest)."""
    roc = time_dependent_roc(scores, time, event, horizon)
    youden = roc["sensitivity"] + roc["specificity"] - 1
    return float(roc["threshold"].iloc[_first_max(youden.to_numpy())])


def risk_groups(scores, cutoff: float) -> np.ndarray:
    return np.where(np.asarray(scores, dtype=float) >= cutoff, "high", "low")


def scores_table(patient_ids, cohorts, scores, cutoff: float) -> pd.DataFrame:
    """Rows of ``scores.tsv``: patient_id, cohort, score, group (high/low)."""
    scores = np.asarray(scores, dtype=float)
    return pd.DataFrame(
        {
            "patient_id": np.asarray(patient_ids),
            "cohort": np.asarray(cohorts),
            "score": scores,
            "group": risk_groups(scores, cutoff),
        }
    )


def fit_radscore(
    features: pd.DataFrame,
    cohorts,
    patient_ids,
    y_train,
    chain_config: dict | None = None,
    horizon: float | None = None,
    robustness: pd.DataFrame | None = None,
    seed: int = 0,
) -> dict:
    """Selection chain + radscore + locked cutoff for one task.

    ``y_train`` holds the targets of the ``cohort == "train"`` rows only (0/1 labels, or
    ``selection.survival_target`` for survival, which then needs ``horizon``). Returns a dict
    with ``formula`` (table), ``formula_text``, ``cutoff``, ``scores`` (scores.tsv rows for
    every cohort), ``selected_features``, ``funnel``, ``lasso_cv``.
    """
    from .selection import SelectionChain, is_survival, merge_config

    if not merge_config(chain_config)["lasso"]["enabled"]:
        raise ValueError("a radscore needs the LASSO step: its coefficients are the weights")
    cohorts = np.asarray(cohorts)
    train = cohorts == "train"
    chain = SelectionChain(chain_config, seed=seed).fit(
        features.loc[train], y_train, robustness=robustness
    )
    formula = radscore_formula(chain)
    score = apply_radscore(formula, features).to_numpy()
    if is_survival(y_train):
        if horizon is None:
            raise ValueError("a survival radscore needs a horizon for its Youden cutoff")
        cutoff = youden_cutoff_survival(score[train], y_train["time"], y_train["event"], horizon)
    else:
        cutoff = youden_cutoff_binary(score[train], y_train)
    return {
        "formula": formula,
        "formula_text": formula_string(formula),
        "cutoff": cutoff,
        "scores": scores_table(patient_ids, cohorts, score, cutoff),
        "selected_features": chain.selected_features_,
        "funnel": chain.funnel_,
        "lasso_cv": chain.lasso_cv_,
    }
