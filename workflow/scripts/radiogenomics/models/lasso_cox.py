"""LASSO-Cox path and cross-validation with R glmnet's conventions (``glmnet`` / ``cv.glmnet``,
family cox, glmnet 4.1).

The coordinate descent itself is scikit-survival's Coxnet, a port of glmnet's: on untied data it
returns glmnet's coefficients to 1e-15. Around it this module does what glmnet does and Coxnet
does not:

* standardise each fit's columns with its own mean and 1/n standard deviation, and return
  coefficients on the original scale;
* the lambda path: lambda_max from the score at beta = 0, ``n_lambdas`` values down to
  ``lambda_min_ratio * lambda_max`` (0.01 when n < p, else 1e-4), stopped early as glmnet stops
  (change in deviance ratio over 4 steps below 1e-3 of it, or deviance ratio above 0.99);
* Breslow ties everywhere. Coxnet's coordinate descent is tie-aware, but its null deviance,
  which scales the convergence threshold, is not; the tolerance is rescaled so that the
  threshold is glmnet's (1e-7 of the tie-aware null deviance);
* cv.glmnet: every fold fits its own path, its coefficients are interpolated (linearly in
  lambda, clamped at the path's ends) at the full-data lambdas; ``deviance`` is the grouped
  deviance (full-data minus in-fold-training deviance) divided by the fold's events, averaged
  with the fold's events as weights; ``C`` is Harrell's C on the held-out fold, weighted by fold
  size; the SE is the weighted SD over folds / sqrt(folds - 1); lambda.min is the largest lambda
  at the best mean, lambda.1se the largest lambda within one SE (of lambda.min) of it.

Tied times: a censoring at the time of a death counts as still at risk for that death
(survival's coxph convention, and glmnet's, which adds 100 machine epsilons to censoring times).
glmnet's shift is lost for times of 256 or more in the given unit (e.g. days): its Fortran sort
then decides, and its coefficients change with row order (8e-4 on survival's lung in days,
tests/reference/survival/tie_order.json). In months, the project's unit, glmnet and this module
agree and neither depends on row order.
"""

from __future__ import annotations

import warnings

import numpy as np
from sksurv.linear_model import CoxnetSurvivalAnalysis
from sksurv.metrics import concordance_index_censored

GLMNET_THRESHOLD = 1e-7  # glmnet's thresh
GLMNET_MIN_LAMBDAS = 5  # glmnet.control()$mnlam: the early stop is checked from the 5th lambda
GLMNET_DEVIANCE_CHANGE = 1e-3  # coxnet: fdev (1e-5) * 100
GLMNET_DEVIANCE_MAX = 0.99  # coxnet: devmax (0.999) * 0.99 / 0.999


def _sorted_risk_sets(time: np.ndarray, event: np.ndarray):
    order = np.argsort(time, kind="stable")
    sorted_time = time[order]
    death_times, deaths = np.unique(time[event], return_counts=True)
    first_at_risk = np.searchsorted(sorted_time, death_times, side="left")
    return order, death_times, deaths, first_at_risk


def breslow_log_likelihood(eta: np.ndarray, time, event) -> np.ndarray | float:
    """Breslow partial log-likelihood of linear predictors ``eta``, (n,) or (n, k) columns.

    Risk set at a death time: every observation with time >= it (censorings tied with the
    death included). Written here because the CV deviance needs it for whole coefficient paths;
    tested against lifelines (untied) and R glmnet's coxnet.deviance (tied).
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    eta = np.asarray(eta, dtype=float)
    vector = eta.ndim == 1
    eta = eta.reshape(len(time), -1)
    order, _, deaths, first_at_risk = _sorted_risk_sets(time, event)
    # log of each risk set's sum of exp(eta), accumulated from the last time (no underflow)
    log_risk_sums = np.logaddexp.accumulate(eta[order][::-1], axis=0)[::-1][first_at_risk]
    log_likelihood = eta[event].sum(axis=0) - deaths @ log_risk_sums
    return float(log_likelihood[0]) if vector else log_likelihood


def _saturated_log_likelihood(time, event) -> float:
    """With d deaths tied at a time, the saturated model's log-likelihood there is -d log d."""
    event = np.asarray(event, dtype=bool)
    deaths = np.unique(np.asarray(time, dtype=float)[event], return_counts=True)[1]
    return -float(np.sum(deaths * np.log(deaths)))


def cox_deviance(eta: np.ndarray, time, event) -> np.ndarray | float:
    """glmnet's ``coxnet.deviance``: 2 (saturated - Breslow) log-likelihood."""
    return 2.0 * (_saturated_log_likelihood(time, event) - breslow_log_likelihood(eta, time, event))


def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns centred and scaled by their 1/n standard deviation (glmnet's standardize);
    constant columns are left at zero (glmnet drops them) with scale 1."""
    centred = X - X.mean(axis=0)
    scale = np.sqrt(np.mean(centred**2, axis=0))
    scale[scale == 0] = 1.0
    return centred / scale, scale


def _lambda_max(Z: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    """Largest |score| / n at beta = 0: the score is Z' (martingale residuals), the residual
    being the event indicator minus the Nelson-Aalen cumulative hazard at the patient's time."""
    _, death_times, deaths, first_at_risk = _sorted_risk_sets(time, event)
    at_risk = len(time) - first_at_risk
    hazard = np.concatenate([[0.0], np.cumsum(deaths / at_risk)])
    cumulative = hazard[np.searchsorted(death_times, time, side="right")]
    return float(np.max(np.abs(Z.T @ (event - cumulative))) / len(time))


def _coxnet_tolerance(time: np.ndarray, event: np.ndarray) -> float:
    """Coxnet tolerance giving glmnet's convergence threshold on tied data.

    Both stop when the largest weighted squared coefficient update falls below tolerance x the
    null half-deviance per patient. Coxnet computes that deviance as if no times were tied
    (risk set = the patient and those sorted before it by decreasing time); glmnet's is Breslow.
    """
    n = len(time)
    order = np.argsort(-time, kind="mergesort")  # Coxnet's own order
    positions = np.flatnonzero(event[order]) + 1.0
    coxnet_null = (np.sum(np.log(positions / n)) - len(positions) * np.log(1.0 / n)) / n
    _, _, deaths, first_at_risk = _sorted_risk_sets(time, event)
    share, at_risk = deaths / n, (n - first_at_risk) / n
    glmnet_null = float(np.sum(share * np.log(at_risk)) - np.sum(share * np.log(share)))
    return GLMNET_THRESHOLD * glmnet_null / coxnet_null


def _glmnet_path_length(deviance_ratio: np.ndarray) -> int:
    """Number of lambdas glmnet keeps: it stops after the first lambda (from the 5th on) where
    the deviance ratio grew by less than 1e-3 of itself over 4 steps, or exceeded 0.99."""
    for index in range(GLMNET_MIN_LAMBDAS - 1, len(deviance_ratio)):
        ratio = deviance_ratio[index]
        earlier = deviance_ratio[index - GLMNET_MIN_LAMBDAS + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            small_change = (ratio - earlier) / ratio < GLMNET_DEVIANCE_CHANGE
        if small_change or ratio > GLMNET_DEVIANCE_MAX:
            return index + 1
    return len(deviance_ratio)


def coxnet_path(
    X, time, event, n_lambdas: int = 100, lambda_min_ratio: float | None = None, lambdas=None
) -> tuple[np.ndarray, np.ndarray]:
    """LASSO-Cox path as R's ``glmnet(x, y, family = "cox")``: (lambdas, coefficients p x L).

    ``lambdas`` given: fitted there, no early stop (as glmnet with a user lambda).
    """
    X = np.asarray(X, dtype=float)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    if not event.any():
        raise ValueError("LASSO-Cox needs at least one event")
    Z, scale = _standardise(X)
    generated = lambdas is None
    if generated:
        if lambda_min_ratio is None:
            lambda_min_ratio = 0.01 if X.shape[0] < X.shape[1] else 1e-4
        # glmnet's Fortran takes the step exponent 1.0 / (nlam - 1) in single precision
        step = lambda_min_ratio ** float(np.float32(1.0) / np.float32(n_lambdas - 1))
        lambdas = _lambda_max(Z, time, event) * step ** np.arange(n_lambdas)
    lambdas = np.asarray(lambdas, dtype=float)
    target = np.empty(len(time), dtype=[("event", bool), ("time", float)])
    target["event"], target["time"] = event, time
    tolerance = _coxnet_tolerance(time, event)
    null = breslow_log_likelihood(np.zeros(len(time)), time, event)
    explainable = _saturated_log_likelihood(time, event) - null

    def deviance_ratio(coefficients):
        return (breslow_log_likelihood(Z @ coefficients, time, event) - null) / explainable

    coefficients = np.zeros((X.shape[1], 0))
    start, end = 0, len(lambdas)
    while start < len(lambdas):
        # Coxnet stops early by its own (tie-unaware) deviance ratio and raises where the
        # weights overflow; fit the rest in further calls, halving a chunk that overflows.
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = CoxnetSurvivalAnalysis(l1_ratio=1.0, alphas=lambdas[start:end], tol=tolerance)
                chunk = fit.fit(Z, target).coef_
        except ArithmeticError:
            if end - start == 1:
                break  # glmnet, too, returns the path up to the lambda it cannot fit
            end = start + (end - start) // 2
            continue
        coefficients = np.concatenate([coefficients, chunk], axis=1)
        start, end = start + chunk.shape[1], len(lambdas)
        if generated and _glmnet_path_length(deviance_ratio(coefficients)) < start:
            break
    lambdas = lambdas[: coefficients.shape[1]]
    if generated:
        keep = _glmnet_path_length(deviance_ratio(coefficients))
        lambdas, coefficients = lambdas[:keep], coefficients[:, :keep]
    return lambdas, coefficients / scale[:, None]


def interpolate_path(path_lambdas: np.ndarray, coefficients: np.ndarray, at) -> np.ndarray:
    """Coefficients at lambdas ``at`` as glmnet's ``predict(s = at)``: linear in lambda between
    the two path lambdas around it, the end coefficients outside the path."""
    increasing = path_lambdas[::-1]
    return np.stack(
        [np.interp(at, increasing, row[::-1]) for row in coefficients], axis=0
    ).reshape(len(coefficients), -1)


def harrell_concordance(time, event, risk) -> float:
    """Harrell's C as survival's ``concordance`` (cv.glmnet's Cindex): a censoring tied with a
    death outlives it; tied risks count one half; NaN without comparable pairs."""
    event = np.asarray(event, dtype=bool)
    if not event.any():
        return float("nan")
    try:
        return float(concordance_index_censored(event, np.asarray(time, float), risk)[0])
    except (ValueError, ZeroDivisionError):
        return float("nan")


def cv_coxnet(
    X,
    time,
    event,
    foldid,
    measure: str = "deviance",
    n_lambdas: int = 100,
    lambda_min_ratio: float | None = None,
) -> dict:
    """R's ``cv.glmnet(x, y, family = "cox", foldid = foldid, type.measure = measure)``.

    ``measure``: ``deviance`` or ``C``. Returns lambdas, coefficients (full-data path, p x L),
    cv_mean, cv_se, index_min, index_1se (0-based, into lambdas) and the per-fold cv_raw.
    """
    X = np.asarray(X, dtype=float)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    foldid = np.asarray(foldid)
    if measure not in ("deviance", "C"):
        raise ValueError(f"cv.glmnet type.measure must be 'deviance' or 'C', not {measure!r}")
    lambdas, coefficients = coxnet_path(X, time, event, n_lambdas, lambda_min_ratio)
    folds = np.unique(foldid)
    raw = np.full((len(folds), len(lambdas)), np.nan)
    weights = np.zeros(len(folds))
    for k, fold in enumerate(folds):
        held = foldid == fold
        train = ~held
        fold_lambdas, fold_path = coxnet_path(
            X[train], time[train], event[train], n_lambdas, lambda_min_ratio
        )
        beta = interpolate_path(fold_lambdas, fold_path, lambdas)
        if measure == "deviance":
            weights[k] = event[held].sum()
            if weights[k] == 0:
                continue  # a fold without events has no deviance to weight (NaN)
            raw[k] = cox_deviance(X @ beta, time, event) - cox_deviance(
                X[train] @ beta, time[train], event[train]
            )
            raw[k] /= weights[k]
        else:
            prediction = X[held] @ beta
            raw[k] = [
                harrell_concordance(time[held], event[held], prediction[:, j])
                for j in range(len(lambdas))
            ]
            weights[k] = held.sum()
    valid = ~np.isnan(raw)
    w = np.where(valid, weights[:, None], 0.0)
    mean = np.sum(w * np.nan_to_num(raw), axis=0) / w.sum(axis=0)
    spread = np.sum(w * np.nan_to_num(raw - mean) ** 2, axis=0) / w.sum(axis=0)
    se = np.sqrt(spread / (valid.sum(axis=0) - 1))
    loss = -mean if measure == "C" else mean
    index_min = int(np.flatnonzero(loss <= np.nanmin(loss))[0])
    index_1se = int(np.flatnonzero(loss <= loss[index_min] + se[index_min])[0])
    return {
        "lambdas": lambdas,
        "coefficients": coefficients,
        "cv_mean": mean,
        "cv_se": se,
        "cv_raw": raw,
        "index_min": index_min,
        "index_1se": index_1se,
    }
