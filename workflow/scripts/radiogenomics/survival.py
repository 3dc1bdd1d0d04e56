"""Survival evaluation: concordance, time-dependent AUC, Kaplan-Meier, Cox models, calibration, DCA.

Plain functions on numpy arrays / pandas tables. Risk scores are "higher = worse" throughout.
Censoring distributions for IPCW statistics are always estimated on the training cohort, as
Uno et al. (2007, 2011) prescribe, so test statistics use no test-set censoring model.
Bootstrap confidence intervals are percentile intervals over patients resampled with
replacement; the seed is an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test, proportional_hazard_test
from scipy import stats
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
)
from sksurv.nonparametric import CensoringDistributionEstimator, kaplan_meier_estimator
from sksurv.util import Surv


def _arrays(time, event):
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(bool)
    if time.shape != event.shape:
        raise ValueError("time and event must have the same length")
    return time, event


def _percentile_ci(values: np.ndarray, level: float) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_statistic(
    statistic: Callable[[np.ndarray], float],
    n_samples: int,
    n_boot: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Values of ``statistic(index)`` over ``n_boot`` patient resamples (NaN where it fails).

    A resample can be degenerate (no events, a horizon past follow-up); such draws are NaN
    rather than errors so that the interval is taken over the draws where it is defined.
    """
    rng = np.random.default_rng(seed)
    values = np.full(n_boot, np.nan)
    for b in range(n_boot):
        index = rng.integers(0, n_samples, n_samples)
        try:
            values[b] = statistic(index)
        except (ValueError, ZeroDivisionError, FloatingPointError):
            values[b] = np.nan
    return values


# --------------------------------------------------------------------------- concordance
def harrell_c(time, event, risk) -> float:
    """Harrell's concordance index (scikit-survival); ties in risk count one half."""
    time, event = _arrays(time, event)
    if not event.any():
        raise ValueError("Harrell's C needs at least one event")
    return float(concordance_index_censored(event, time, np.asarray(risk, dtype=float))[0])


def harrell_c_ci(time, event, risk, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
    """Harrell's C with a percentile bootstrap interval: dict(value, ci_low, ci_high)."""
    time, event = _arrays(time, event)
    risk = np.asarray(risk, dtype=float)
    boot = bootstrap_statistic(
        lambda i: harrell_c(time[i], event[i], risk[i]), len(time), n_boot, seed
    )
    low, high = _percentile_ci(boot, level)
    return {"value": harrell_c(time, event, risk), "ci_low": low, "ci_high": high}


def uno_c(train_time, train_event, time, event, risk, tau: float | None = None) -> float:
    """Uno's IPCW concordance (scikit-survival); censoring estimated on the training cohort."""
    train = Surv.from_arrays(*reversed(_arrays(train_time, train_event)))
    test = Surv.from_arrays(*reversed(_arrays(time, event)))
    return float(concordance_index_ipcw(train, test, np.asarray(risk, dtype=float), tau=tau)[0])


def uno_c_ci(
    train_time,
    train_event,
    time,
    event,
    risk,
    tau: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
):
    time, event = _arrays(time, event)
    risk = np.asarray(risk, dtype=float)
    boot = bootstrap_statistic(
        lambda i: uno_c(train_time, train_event, time[i], event[i], risk[i], tau),
        len(time),
        n_boot,
        seed,
    )
    low, high = _percentile_ci(boot, level)
    return {
        "value": uno_c(train_time, train_event, time, event, risk, tau),
        "ci_low": low,
        "ci_high": high,
    }


def compare_c_bootstrap(
    time, event, risk_a, risk_b, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict:
    """Paired bootstrap test of Harrell's C(a) - C(b) on the same patients.

    Both scores are evaluated on the same resample, so their correlation is kept. The p-value
    is two-sided from the normal approximation with the bootstrap standard error.
    """
    time, event = _arrays(time, event)
    risk_a = np.asarray(risk_a, dtype=float)
    risk_b = np.asarray(risk_b, dtype=float)

    def difference(i):
        return harrell_c(time[i], event[i], risk_a[i]) - harrell_c(time[i], event[i], risk_b[i])

    c_a, c_b = harrell_c(time, event, risk_a), harrell_c(time, event, risk_b)
    boot = bootstrap_statistic(difference, len(time), n_boot, seed)
    boot = boot[np.isfinite(boot)]
    se = float(np.std(boot, ddof=1))
    diff = c_a - c_b
    p = 1.0 if se == 0.0 else float(2.0 * stats.norm.sf(abs(diff) / se))
    low, high = _percentile_ci(boot, level)
    return {
        "c_a": c_a,
        "c_b": c_b,
        "difference": diff,
        "se": se,
        "ci_low": low,
        "ci_high": high,
        "p": p,
    }


# --------------------------------------------------------------------------- td-AUC
def td_auc(train_time, train_event, time, event, risk, horizons: Sequence[float]) -> np.ndarray:
    """Cumulative/dynamic AUC at each horizon with IPCW (scikit-survival, Uno 2007 weights).

    Cases: event by the horizon; controls: still event-free after it. The censoring
    distribution is the Kaplan-Meier of the training cohort's censoring times.
    """
    horizons = np.asarray(horizons, dtype=float)
    train = Surv.from_arrays(*reversed(_arrays(train_time, train_event)))
    time, event = _arrays(time, event)
    # Events after the last horizon are controls at every horizon and need no weight; marking
    # them censored keeps an external cohort with longer follow-up than train evaluable.
    test = Surv.from_arrays(event & (time <= horizons.max()), time)
    auc, _ = cumulative_dynamic_auc(train, test, np.asarray(risk, dtype=float), horizons)
    return np.asarray(auc, dtype=float)


def td_auc_ci(
    train_time,
    train_event,
    time,
    event,
    risk,
    horizons: Sequence[float],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """td-AUC per horizon with percentile bootstrap CI: columns horizon, auc, ci_low, ci_high.

    Each horizon is bootstrapped separately so that a resample whose follow-up ends before a
    late horizon drops out of that horizon only.
    """
    time, event = _arrays(time, event)
    risk = np.asarray(risk, dtype=float)
    point = td_auc(train_time, train_event, time, event, risk, horizons)
    rows = []
    for k, horizon in enumerate(horizons):
        boot = bootstrap_statistic(
            lambda i, h=horizon: td_auc(train_time, train_event, time[i], event[i], risk[i], [h])[
                0
            ],
            len(time),
            n_boot,
            seed + k,
        )
        low, high = _percentile_ci(boot, level)
        rows.append(
            {"horizon": float(horizon), "auc": float(point[k]), "ci_low": low, "ci_high": high}
        )
    return pd.DataFrame(rows)


def censoring_weights(train_time, train_event, time, event) -> np.ndarray:
    """IPCW weight 1/G(T_i) for events, 0 for censored; G = KM of training censoring times."""
    estimator = CensoringDistributionEstimator().fit(
        Surv.from_arrays(*reversed(_arrays(train_time, train_event)))
    )
    return estimator.predict_ipcw(Surv.from_arrays(*reversed(_arrays(time, event))))


def td_youden_cutoff(time, event, risk, horizon: float) -> dict:
    """Cutoff maximising Youden's J on the cumulative/dynamic ROC at ``horizon`` (fit on train).

    Sensitivity weights cases by 1/G(T_i) (IPCW, censoring KM of the same training cohort);
    specificity is the plain fraction of controls (their weight 1/G(horizon) is constant).
    A patient is high risk when ``risk >= cutoff``. Written here because no maintained
    library returns the optimal cutoff of the IPCW time-dependent ROC.
    """
    time, event = _arrays(time, event)
    risk = np.asarray(risk, dtype=float)
    weights = censoring_weights(time, event, time, event)
    is_case = event & (time <= horizon)
    is_control = time > horizon
    if not is_case.any() or not is_control.any():
        raise ValueError(f"horizon {horizon} leaves no cases or no controls")
    candidates = np.unique(risk)
    high = risk[None, :] >= candidates[:, None]
    sensitivity = (high & is_case) @ weights / weights[is_case].sum()
    specificity = (~high & is_control).sum(axis=1) / is_control.sum()
    youden = sensitivity + specificity - 1.0
    best = int(np.argmax(youden))
    return {
        "cutoff": float(candidates[best]),
        "youden": float(youden[best]),
        "sensitivity": float(sensitivity[best]),
        "specificity": float(specificity[best]),
    }


# --------------------------------------------------------------------------- Kaplan-Meier
def kaplan_meier(time, event, level: float = 0.95) -> pd.DataFrame:
    """KM survival with log-log CI (scikit-survival): columns time, survival, ci_low, ci_high.

    The first row is time 0 with survival 1 so the curve can be drawn as a step function.
    """
    time, event = _arrays(time, event)
    grid, survival, interval = kaplan_meier_estimator(
        event, time, conf_level=level, conf_type="log-log"
    )
    table = pd.DataFrame(
        {"time": grid, "survival": survival, "ci_low": interval[0], "ci_high": interval[1]}
    )
    if grid[0] > 0:
        start = pd.DataFrame({"time": [0.0], "survival": [1.0], "ci_low": [1.0], "ci_high": [1.0]})
        table = pd.concat([start, table], ignore_index=True)
    return table


def survival_at(km: pd.DataFrame, horizon: float, column: str = "survival") -> float:
    """Right-continuous step function value of a KM table at ``horizon``."""
    at_or_before = km[km["time"] <= horizon]
    return float(at_or_before[column].iloc[-1]) if len(at_or_before) else 1.0


def logrank_p(time, event, groups) -> float:
    """Log-rank p-value (lifelines): two-sample test for 2 groups, k-sample test for more."""
    time, event = _arrays(time, event)
    groups = np.asarray(groups)
    labels = pd.unique(groups)
    if len(labels) < 2:
        raise ValueError("log-rank test needs at least two groups")
    if len(labels) == 2:
        a, b = groups == labels[0], groups == labels[1]
        return float(logrank_test(time[a], time[b], event[a], event[b]).p_value)
    return float(multivariate_logrank_test(time, groups, event).p_value)


def numbers_at_risk(time, groups, at_times: Sequence[float]) -> pd.DataFrame:
    """Patients still under observation (time >= t) per group (rows) and time (columns)."""
    time = np.asarray(time, dtype=float)
    groups = np.asarray(groups)
    labels = sorted(pd.unique(groups), key=str)
    return pd.DataFrame(
        [[int(np.sum((groups == g) & (time >= t))) for t in at_times] for g in labels],
        index=pd.Index(labels, name="group"),
        columns=[float(t) for t in at_times],
    )


# --------------------------------------------------------------------------- Cox models
def _hazard_table(fitter: CoxPHFitter) -> pd.DataFrame:
    summary = fitter.summary
    return pd.DataFrame(
        {
            "variable": summary.index.astype(str),
            "coef": summary["coef"].to_numpy(),
            "hr": summary["exp(coef)"].to_numpy(),
            "ci_low": summary["exp(coef) lower 95%"].to_numpy(),
            "ci_high": summary["exp(coef) upper 95%"].to_numpy(),
            "p": summary["p"].to_numpy(),
        }
    )


def fit_cox(
    data: pd.DataFrame,
    duration_col: str,
    event_col: str,
    covariates: Sequence[str],
    penalizer: float = 0.0,
) -> CoxPHFitter:
    """Cox proportional hazards fit (lifelines, Efron ties) on the named numeric covariates."""
    columns = list(covariates) + [duration_col, event_col]
    return CoxPHFitter(penalizer=penalizer).fit(
        data[columns], duration_col=duration_col, event_col=event_col
    )


def cox_univariate(
    data: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str]
) -> pd.DataFrame:
    """One Cox model per covariate: columns variable, coef, hr, ci_low, ci_high, p."""
    tables = [_hazard_table(fit_cox(data, duration_col, event_col, [c])) for c in covariates]
    return pd.concat(tables, ignore_index=True)


def cox_multivariate(
    data: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str]
) -> tuple[CoxPHFitter, pd.DataFrame]:
    """Joint Cox model and its hazard-ratio table."""
    fitter = fit_cox(data, duration_col, event_col, covariates)
    return fitter, _hazard_table(fitter)


def schoenfeld_test(
    fitter: CoxPHFitter, data: pd.DataFrame, time_transform: str = "rank"
) -> pd.DataFrame:
    """Proportional-hazards test on scaled Schoenfeld residuals (lifelines), per covariate.

    Columns variable, statistic, p. A small p means the hazard ratio drifts with time.
    """
    result = proportional_hazard_test(fitter, data, time_transform=time_transform)
    summary = result.summary
    return pd.DataFrame(
        {
            "variable": [str(i[0]) if isinstance(i, tuple) else str(i) for i in summary.index],
            "statistic": summary["test_statistic"].to_numpy(),
            "p": summary["p"].to_numpy(),
        }
    )


def cox_aic(
    data: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str]
) -> float:
    """AIC of the Cox partial likelihood, -2 log L + 2 k (k = 0: the null model)."""
    if not covariates:
        return -2.0 * _null_partial_log_likelihood(data[duration_col], data[event_col])
    return float(fit_cox(data, duration_col, event_col, covariates).AIC_partial_)


def _null_partial_log_likelihood(time, event) -> float:
    """Efron partial log-likelihood at beta = 0, matching lifelines' tie handling.

    With d deaths tied among R at risk, Efron's denominators at beta = 0 are R, R-1, ..., R-d+1.
    """
    time, event = _arrays(time, event)
    total = 0.0
    for t in np.unique(time[event]):
        at_risk = np.sum(time >= t)
        deaths = np.sum((time == t) & event)
        total -= np.sum(np.log(at_risk - np.arange(deaths)))
    return float(total)


def backward_stepwise_aic(
    data: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str]
) -> tuple[list[str], pd.DataFrame]:
    """Backward elimination by AIC (as R's step(direction="backward")).

    From the full model, repeatedly drop the covariate whose removal lowers AIC the most;
    stop when no removal lowers it. Returns the kept covariates and the trace
    (step, removed, aic). Written here because lifelines has no stepwise selection.
    """
    kept = list(covariates)
    current = cox_aic(data, duration_col, event_col, kept)
    trace = [{"step": 0, "removed": "", "aic": current}]
    while kept:
        candidates = {
            c: cox_aic(data, duration_col, event_col, [k for k in kept if k != c]) for c in kept
        }
        removed, aic = min(candidates.items(), key=lambda item: (item[1], item[0]))
        if aic >= current:
            break
        kept.remove(removed)
        current = aic
        trace.append({"step": len(trace), "removed": removed, "aic": aic})
    return kept, pd.DataFrame(trace)


def nomogram_spec(fitter: CoxPHFitter, data: pd.DataFrame, horizon: float) -> dict:
    """Points scales of a Cox nomogram (as R rms::nomogram); ``data`` is the training table.

    Each covariate contributes coef * (x - min x); the covariate with the widest effect range
    spans 0-100 points. Total points map back to the linear predictor and to
    S(horizon | x) = S0(horizon) ** exp(lp - lp_mean), lifelines' baseline being at the
    covariate means.
    """
    coefficients = fitter.params_
    names = list(coefficients.index)
    lows = data[names].min()
    highs = data[names].max()
    means = data[names].mean()  # lifelines centres covariates at the training means
    effect_range = (coefficients * (highs - lows)).abs()
    points_per_unit_lp = 100.0 / float(effect_range.max())
    baseline = fitter.baseline_survival_
    s0 = (
        float(baseline[baseline.index <= horizon].iloc[-1, 0])
        if (baseline.index <= horizon).any()
        else 1.0
    )
    reference = {n: float(lows[n] if coefficients[n] >= 0 else highs[n]) for n in names}
    return {
        "covariates": names,
        "coefficients": {n: float(coefficients[n]) for n in names},
        "ranges": {n: (float(lows[n]), float(highs[n])) for n in names},
        "reference": reference,
        "means": {n: float(means[n]) for n in names},
        "points_per_unit_lp": points_per_unit_lp,
        "baseline_survival": s0,
        "horizon": float(horizon),
    }


def nomogram_points(spec: dict, row: dict) -> float:
    """Total nomogram points of one patient (covariate name -> value)."""
    return float(
        sum(
            spec["coefficients"][n] * (row[n] - spec["reference"][n]) * spec["points_per_unit_lp"]
            for n in spec["covariates"]
        )
    )


def nomogram_survival(spec: dict, total_points) -> np.ndarray:
    """Predicted survival at the nomogram horizon for total points."""
    lp_reference = sum(
        spec["coefficients"][n] * (spec["reference"][n] - spec["means"][n])
        for n in spec["covariates"]
    )
    lp = lp_reference + np.asarray(total_points, dtype=float) / spec["points_per_unit_lp"]
    return spec["baseline_survival"] ** np.exp(lp)


# --------------------------------------------------------------------------- calibration, DCA
def calibration_at_horizon(
    time, event, predicted_survival, horizon: float, n_groups: int = 4
) -> pd.DataFrame:
    """Predicted vs Kaplan-Meier observed survival at ``horizon`` in quantile groups.

    Columns group, n, predicted (mean in group), observed, observed_low, observed_high.
    """
    time, event = _arrays(time, event)
    predicted_survival = np.asarray(predicted_survival, dtype=float)
    groups = pd.qcut(predicted_survival, q=n_groups, labels=False, duplicates="drop")
    rows = []
    for g in sorted(pd.unique(groups)):
        members = groups == g
        km = kaplan_meier(time[members], event[members])
        rows.append(
            {
                "group": int(g) + 1,
                "n": int(members.sum()),
                "predicted": float(predicted_survival[members].mean()),
                "observed": survival_at(km, horizon),
                "observed_low": survival_at(km, horizon, "ci_low"),
                "observed_high": survival_at(km, horizon, "ci_high"),
            }
        )
    return pd.DataFrame(rows)


def survival_net_benefit(
    time, event, predicted_risk, horizon: float, thresholds: Sequence[float]
) -> pd.DataFrame:
    """Decision curve for a survival endpoint (Vickers, Cronin, Elkin, Gonen 2008, BMC MIDM 8:53).

    For threshold p_t, with patients "treated" when predicted risk by the horizon >= p_t:
      NB = P(x=1) * [1 - S(t | x=1)] - P(x=1) * S(t | x=1) * p_t / (1 - p_t)
    where S(t | x=1) is the Kaplan-Meier survival among treated patients. Treat-all uses the
    whole cohort's KM; treat-none is 0. Columns threshold, model, treat_all, treat_none.
    """
    time, event = _arrays(time, event)
    predicted_risk = np.asarray(predicted_risk, dtype=float)
    overall = survival_at(kaplan_meier(time, event), horizon)
    rows = []
    for threshold in thresholds:
        odds = threshold / (1.0 - threshold)
        treated = predicted_risk >= threshold
        share = treated.mean()
        if treated.any():
            s_treated = survival_at(kaplan_meier(time[treated], event[treated]), horizon)
            model = share * (1.0 - s_treated) - share * s_treated * odds
        else:
            model = 0.0
        rows.append(
            {
                "threshold": float(threshold),
                "model": float(model),
                "treat_all": float((1.0 - overall) - overall * odds),
                "treat_none": 0.0,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- metrics table rows
def survival_metrics_rows(
    model: str,
    cohort: str,
    train_time,
    train_event,
    time,
    event,
    risk,
    horizons: Sequence[float],
    n_boot: int = 1000,
    seed: int = 0,
    uno_tau: float | None = None,
) -> list[dict]:
    """Rows for results/models/{task}/metrics.tsv: Harrell C, Uno C, td-AUC per horizon.

    td-AUC metric names carry the horizon in the time unit of ``time`` (e.g. ``td_auc_36``).
    A horizon beyond the cohort's follow-up, or an Uno C whose censoring weights are undefined,
    gives a NaN row rather than an error.
    """
    missing = {"value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    rows = [
        {
            "model": model,
            "cohort": cohort,
            "metric": "harrell_c",
            **harrell_c_ci(time, event, risk, n_boot, seed),
        }
    ]
    try:
        uno = uno_c_ci(train_time, train_event, time, event, risk, uno_tau, n_boot, seed)
    except ValueError:
        # Events after the last training follow-up leave the censoring weight undefined;
        # pass uno_tau (e.g. the last training time) to truncate instead.
        uno = missing
    rows.append({"model": model, "cohort": cohort, "metric": "uno_c", **uno})
    time_arr = np.asarray(time, dtype=float)
    for horizon in horizons:
        metric = f"td_auc_{float(horizon):g}"
        if not (time_arr.min() <= horizon < time_arr.max()):
            rows.append({"model": model, "cohort": cohort, "metric": metric, **missing})
            continue
        table = td_auc_ci(train_time, train_event, time, event, risk, [horizon], n_boot, seed)
        rows.append(
            {
                "model": model,
                "cohort": cohort,
                "metric": metric,
                "value": float(table["auc"].iloc[0]),
                "ci_low": float(table["ci_low"].iloc[0]),
                "ci_high": float(table["ci_high"].iloc[0]),
            }
        )
    return rows
