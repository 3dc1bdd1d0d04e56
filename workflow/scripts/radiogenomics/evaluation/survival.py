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
from lifelines.statistics import logrank_test, multivariate_logrank_test
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
    """IPCW weight 1/G(T_i) for events, 0 for censored; G = KM of training censoring times.

    The project's one estimate of the censoring distribution (scikit-survival's, the one its
    td-AUC and Uno's C use, so a cutoff chosen on the time-dependent ROC sees the same weights
    as its evaluation). At a time with both events and censorings the events come first: they
    leave the censoring risk set before the censorings drop G.
    """
    estimator = CensoringDistributionEstimator().fit(
        Surv.from_arrays(*reversed(_arrays(train_time, train_event)))
    )
    return estimator.predict_ipcw(Surv.from_arrays(*reversed(_arrays(time, event))))


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
# lifelines stops Newton-Raphson at the first of: |step| < precision, Newton decrement
# g' H^-1 g / 2 < precision, relative log-likelihood change < r_precision. Its defaults
# (1e-7, 1e-9) leave coefficients up to 1e-4 short of the maximum. The decrement is half the
# squared step in the information metric, so precision 1e-18 stops once the Newton step is below
# 1.4e-9 standard errors in every coefficient; r_precision 0 turns the likelihood rule off.
COX_FIT_OPTIONS = {"precision": 1e-18, "r_precision": 0.0}


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
    """Cox proportional hazards fit (lifelines, Efron ties) on the named numeric covariates.

    Converged as tightly as R's coxph (coefficients within 1e-6 relative, tested against R).
    """
    columns = list(covariates) + [duration_col, event_col]
    return CoxPHFitter(penalizer=penalizer).fit(
        data[columns], duration_col=duration_col, event_col=event_col, fit_options=COX_FIT_OPTIONS
    )


def separating_covariates(
    data: pd.DataFrame, duration_col: str, event_col: str, covariates: Sequence[str]
) -> list[str]:
    """Covariates whose one-covariate Cox partial likelihood has no maximum.

    That is so when every event's value is the largest in its risk set (the likelihood rises
    without end as the hazard ratio grows), or every event's the smallest (as it shrinks): e.g.
    a binary covariate that all events of a small training cohort share. A constant covariate
    is both. The maximum-likelihood fit diverges on them (lifelines: ConvergenceError).
    """
    time = data[duration_col].to_numpy(dtype=float)
    events = np.flatnonzero(data[event_col].to_numpy(dtype=bool))
    separating = []
    for name in covariates:
        x = data[name].to_numpy(dtype=float)
        risk = [x[time >= time[i]] for i in events]
        if all(x[i] >= r.max() for i, r in zip(events, risk)) or all(
            x[i] <= r.min() for i, r in zip(events, risk)
        ):
            separating.append(name)
    return separating


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


def _time_transform(time: np.ndarray, event: np.ndarray, transform: str) -> np.ndarray:
    """g(t) of every observation as survival's cox.zph: km = 1 - S(t-) (left-continuous
    Kaplan-Meier of all observations), rank = average ranks of all times, identity = t."""
    if transform == "identity":
        return time.copy()
    if transform == "rank":
        return stats.rankdata(time)
    if transform == "km":
        grid = np.unique(time)
        at_risk = len(time) - np.searchsorted(np.sort(time), grid, side="left")
        deaths = np.array([np.sum(event & (time == t)) for t in grid])
        survival = np.cumprod(1.0 - deaths / at_risk)
        before = np.searchsorted(grid, time, side="left")  # KM steps strictly before t
        return 1.0 - np.concatenate([[1.0], survival])[before]
    raise ValueError(f"cox.zph transform must be 'km', 'rank' or 'identity', not {transform!r}")


def cox_zph(time, event, X, beta, transform: str = "km") -> pd.DataFrame:
    """Proportional-hazards score test of survival >= 3.0's ``cox.zph`` (Efron ties).

    At the fitted ``beta`` it scores adding X * g(t) to the model: U = sum over deaths of
    g(t) (x - xbar(t)), tested with the full 2p x 2p information matrix, so that beta being
    estimated is accounted for. Per covariate: chi-square on 1 df from the p original and that
    covariate's time term; GLOBAL: all p time terms (p df). g is centred at its mean over deaths.
    Written here because lifelines implements the pre-3.0 approximation (p-values up to 0.27
    away from R); tested against R's cox.zph to 1e-4 for km, rank and identity.
    Returns columns variable, statistic, df, p with GLOBAL as the last row.
    """
    time, event = _arrays(time, event)
    names = list(X.columns) if isinstance(X, pd.DataFrame) else [f"x{j}" for j in range(X.shape[1])]
    X = np.asarray(X, dtype=float)
    X = X - X.mean(axis=0)
    eta = X @ np.asarray(beta, dtype=float)
    risk = np.exp(eta - eta.max())
    gtime = _time_transform(time, event, transform)
    gtime = gtime - gtime[event].mean()

    p = X.shape[1]
    u = np.zeros(2 * p)
    information = np.zeros((2 * p, 2 * p))
    for t in np.unique(time[event]):
        at_risk = time >= t
        dead = event & (time == t)
        d = int(dead.sum())
        g = gtime[dead][0]
        s0, s1 = risk[at_risk].sum(), risk[at_risk] @ X[at_risk]
        s2 = (X[at_risk] * risk[at_risk, None]).T @ X[at_risk]
        d0, d1 = risk[dead].sum(), risk[dead] @ X[dead]
        d2 = (X[dead] * risk[dead, None]).T @ X[dead]
        score = X[dead].sum(axis=0)
        variance = np.zeros((p, p))
        for m in range(d):  # Efron: the tied deaths leave the risk set in equal fractions
            fraction = m / d
            denominator = s0 - fraction * d0
            mean = (s1 - fraction * d1) / denominator
            score = score - mean
            variance += (s2 - fraction * d2) / denominator - np.outer(mean, mean)
        u[p:] += g * score
        information[:p, :p] += variance
        information[:p, p:] += g * variance
        information[p:, p:] += g * g * variance
    information[p:, :p] = information[:p, p:].T
    u[:p] = 0.0  # the score of the original covariates is zero at the fitted beta

    rows = []
    for j, name in enumerate(names):
        keep = [*range(p), p + j]
        statistic = float(u[keep] @ np.linalg.solve(information[np.ix_(keep, keep)], u[keep]))
        rows.append((name, statistic, 1))
    rows.append(("GLOBAL", float(u @ np.linalg.solve(information, u)), p))
    table = pd.DataFrame(rows, columns=["variable", "statistic", "df"])
    table["p"] = stats.chi2.sf(table["statistic"], table["df"])
    return table


def schoenfeld_test(fitter: CoxPHFitter, data: pd.DataFrame, transform: str = "km") -> pd.DataFrame:
    """R's ``cox.zph`` for a fitted lifelines model: columns variable, statistic, df, p.

    One row per covariate and a GLOBAL row; a small p means the hazard ratio drifts with time.
    ``transform``: km (R's default), rank or identity.
    """
    names = list(fitter.params_.index)
    return cox_zph(
        data[fitter.duration_col],
        data[fitter.event_col],
        data[names],
        fitter.params_.to_numpy(),
        transform,
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
