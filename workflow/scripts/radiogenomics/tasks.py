"""Modelling tasks of a study (config ``models.tasks``): one survival or binary endpoint each.

A task names its endpoint columns in results/cohort/clinical.tsv, the feature tables it reads,
the selection chain and the models. Everything is fitted on ``cohort == "train"`` rows and
applied frozen to test and external rows:

survival  radscore (selection chain ending in LASSO-Cox) with a Youden cutoff on the
          time-dependent ROC at ``horizon_months``; univariate and multivariate Cox on clinical
          covariates + radscore; Schoenfeld test; backward stepwise AIC; the stepwise model as a
          Cox nomogram; an XGBoost combined model with SHAP; SSIGN / UISS comparators.
binary    region sets (whole, each habitat, peri, mix = best habitat + peri), a selection chain
          and the configured classifiers per set; a radscore on one set with a Youden cutoff.

``predictions.tsv`` holds, per model and patient, ``prediction`` (survival: predicted
probability of the event by the horizon; binary: probability of the positive class) and
``risk`` (the model's own score, higher = worse / more likely positive).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import classifiers, clinical_scores, scores, survival
from .io import read_tsv, write_json, write_tsv
from .selection import merge_config, survival_target

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ["patient_id", "cohort", "model", "region_set", "prediction", "risk"]
HABITAT_PATTERN = re.compile(r"^sub\d+$")


# --------------------------------------------------------------------------- inputs
def load_features(paths, regions=None) -> pd.DataFrame:
    """Feature tables joined on patient_id; ``regions`` keeps columns ``{region}__*`` only."""
    table = None
    for path in paths:
        part = pd.read_parquet(path)
        part["patient_id"] = part["patient_id"].astype(str)
        table = part if table is None else table.merge(part, on="patient_id", how="inner")
    table = table.set_index("patient_id")
    if regions:
        table = table[classifiers.region_columns(table.columns, regions)]
    return table.apply(pd.to_numeric, errors="coerce")


def task_table(clinical: pd.DataFrame, features: pd.DataFrame, needed) -> pd.DataFrame:
    """Clinical rows with features, in patient order; rows missing an endpoint value dropped."""
    clinical = clinical.assign(patient_id=clinical["patient_id"].astype(str))
    missing = [c for c in needed if c not in clinical]
    if missing:
        raise ValueError(f"clinical.tsv lacks columns {missing} that the task needs")
    table = clinical.loc[clinical["patient_id"].isin(features.index)]
    dropped = table[list(needed)].isna().any(axis=1)
    if dropped.any():
        log.warning(
            "left out (missing %s): %s", list(needed), table.loc[dropped, "patient_id"].tolist()
        )
    table = table.loc[~dropped].sort_values("patient_id").reset_index(drop=True)
    if not (table["cohort"] == "train").any():
        raise ValueError("no training patients with features and endpoint values")
    return table


def _stage_positive(value, letter: str) -> float:
    """N or M stage as 0/1 from 'N1', 'pM0', 'MX' (X counts as 0, as SSIGN does) or 0/1."""
    if pd.isna(value):
        return np.nan
    text = str(value).strip().upper()
    text = re.sub(rf"^[PCY]?{letter}", "", text)
    if text in ("0", "X", "0.0"):
        return 0.0
    if text in ("1", "2", "1.0", "2.0"):
        return 1.0
    raise ValueError(f"{letter} stage {value!r} is not one of {letter}0, {letter}1, {letter}2, 0/1")


def clinical_covariates(clinical: pd.DataFrame, names) -> pd.DataFrame:
    """Numeric Cox covariates: ``sex`` -> male (1/0), ``t_stage`` -> T number 1-4,
    ``n_stage``/``m_stage`` -> positive (1/0), ``t_group`` -> high (1/0); others as numbers."""
    columns = {}
    for name in names:
        values = clinical[name]
        if name == "sex":
            columns["male"] = values.astype(str).str.upper().str.startswith("M").astype(float)
        elif name == "t_stage":
            columns[name] = values.map(lambda v: float(clinical_scores.parse_t(v)[0]))
        elif name in ("n_stage", "m_stage"):
            columns[name] = values.map(lambda v, letter=name[0].upper(): _stage_positive(v, letter))
        elif name == "t_group":
            columns["t_group_high"] = (values == "high").astype(float)
        else:
            columns[name] = pd.to_numeric(values, errors="raise").astype(float)
    return pd.DataFrame(columns, index=clinical.index)


def comparator_scores(clinical: pd.DataFrame, names) -> pd.DataFrame:
    """SSIGN / UISS per patient, with 0/1 N and M stages written as N0/N1, M0/M1."""
    table = clinical.copy()
    for column, letter in (("n_stage", "N"), ("m_stage", "M")):
        if column in table:
            table[column] = table[column].map(
                lambda v, letter=letter: f"{letter}{int(_stage_positive(v, letter))}"
            )
    return clinical_scores.score_table(
        table, scores=tuple(names), assume_n0m0=not {"n_stage", "m_stage"} <= set(table)
    )


# --------------------------------------------------------------------------- survival
def _event_probability(fitter, data: pd.DataFrame, horizon: float) -> np.ndarray:
    surv = fitter.predict_survival_function(data, times=[horizon])
    return 1.0 - surv.to_numpy()[0]


def _prediction_rows(table, model, prediction, risk, region_set="") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": table["patient_id"].to_numpy(),
            "cohort": table["cohort"].to_numpy(),
            "model": model,
            "region_set": region_set,
            "prediction": np.asarray(prediction, dtype=float),
            "risk": np.asarray(risk, dtype=float),
        }
    )


def fit_survival_task(
    clinical: pd.DataFrame,
    features: pd.DataFrame,
    settings: dict,
    robustness: pd.DataFrame | None = None,
    seed: int = 0,
) -> dict:
    """Fit every model of a survival task on the training rows; predict every row.

    Returns tables: selected_features, funnel, formula, lasso_cv, scores, predictions,
    cox_univariate, cox_multivariate, schoenfeld, stepwise, xgboost_curve, shap_values,
    comparators; plus radscore (dict), nomogram (spec) and shap_data (features of the SHAP plot).
    """
    time_col, event_col = settings["time"], settings["event"]
    horizon = float(settings["horizon_months"])
    table = task_table(clinical, features, [time_col, event_col])
    train = (table["cohort"] == "train").to_numpy()
    X = features.loc[table["patient_id"]].reset_index(drop=True)
    y_train = survival_target(table.loc[train, time_col], table.loc[train, event_col])

    radscore = scores.fit_radscore(
        X,
        table["cohort"],
        table["patient_id"],
        y_train,
        settings["selection"],
        horizon,
        robustness,
        seed,
    )
    data = clinical_covariates(table, settings["clinical"])
    # a covariate constant on train has no estimable hazard ratio
    constant = [c for c in data if data.loc[train, c].nunique(dropna=True) < 2]
    if constant:
        log.warning("covariates constant on train, left out: %s", constant)
    data = data.drop(columns=constant)
    data = data.fillna(data.loc[train].median())
    data["radscore"] = radscore["scores"]["score"].to_numpy()
    data[time_col] = table[time_col].astype(float)
    data[event_col] = table[event_col].astype(int)
    # nor does one that separates the training events (the Cox fit diverges on it)
    separating = survival.separating_covariates(
        data.loc[train],
        time_col,
        event_col,
        [c for c in data if c not in ("radscore", time_col, event_col)],
    )
    if separating:
        log.warning("covariates separating the training events, left out: %s", separating)
    data = data.drop(columns=separating)
    covariates = [c for c in data if c not in (time_col, event_col)]
    train_data = data.loc[train].reset_index(drop=True)

    univariate = survival.cox_univariate(train_data, time_col, event_col, covariates)
    # Multivariate candidates: univariate p below the threshold, strongest first, at most one
    # per `events_per_variable` training events (the usual guard against overfitting Cox).
    n_events = int(train_data[event_col].sum())
    cap = max(1, n_events // int(settings["events_per_variable"]))
    ranked = univariate.sort_values("p", kind="stable")
    significant = ranked.loc[ranked["p"] < settings["univariate_p"], "variable"]
    candidates = ["radscore", *[v for v in significant if v != "radscore"]][:cap]
    multivariate_fit, multivariate = survival.cox_multivariate(
        train_data, time_col, event_col, candidates
    )
    schoenfeld = survival.schoenfeld_test(
        multivariate_fit, train_data[[*candidates, time_col, event_col]]
    )
    kept, stepwise = survival.backward_stepwise_aic(train_data, time_col, event_col, candidates)
    kept = kept or ["radscore"]

    predictions = []
    radscore_cox = survival.fit_cox(train_data, time_col, event_col, ["radscore"])
    predictions.append(
        _prediction_rows(
            table, "radscore", _event_probability(radscore_cox, data, horizon), data["radscore"]
        )
    )
    clinical_only = [c for c in candidates if c != "radscore"] or [
        ranked.loc[ranked["variable"] != "radscore", "variable"].iloc[0]
    ]
    clinical_fit = survival.fit_cox(train_data, time_col, event_col, clinical_only)
    predictions.append(
        _prediction_rows(
            table,
            "clinical_cox",
            _event_probability(clinical_fit, data, horizon),
            clinical_fit.predict_log_partial_hazard(data),
        )
    )
    result = {
        "cox_univariate": univariate,
        "cox_multivariate": multivariate,
        "schoenfeld": schoenfeld,
        "stepwise": stepwise.assign(kept=", ".join(kept)),
    }
    nomogram_fit = survival.fit_cox(train_data, time_col, event_col, kept)
    predictions.append(
        _prediction_rows(
            table,
            "cox_nomogram",
            _event_probability(nomogram_fit, data, horizon),
            nomogram_fit.predict_log_partial_hazard(data),
        )
    )
    result["nomogram"] = survival.nomogram_spec(nomogram_fit, train_data, horizon)
    options = settings["xgboost"]
    labels = classifiers.horizon_label(train_data[time_col], train_data[event_col], horizon)
    minority = int(min(np.nansum(labels == 1), np.nansum(labels == 0)))
    if minority < 2:
        raise ValueError(
            f"XGBoost combined model: only {minority} training patients in the smaller "
            f"class at {horizon:g} months; choose another horizon_months"
        )
    folds = min(int(options["folds"]), minority)
    search, curve = classifiers.fit_xgboost_combined(
        train_data[candidates],
        train_data[time_col],
        train_data[event_col],
        horizon,
        seed,
        folds,
        options.get("grid"),
    )
    probability = search.predict_proba(data[candidates])[:, 1]
    predictions.append(_prediction_rows(table, "xgboost", probability, probability))
    values, _ = classifiers.shap_values(search, train_data[candidates])
    result.update(xgboost_curve=curve, shap_values=values, shap_data=train_data[candidates])

    comparators = pd.DataFrame({"patient_id": table["patient_id"]})
    if settings["comparators"]:
        comparators = comparator_scores(table, settings["comparators"])
        for name in settings["comparators"]:
            score = pd.to_numeric(comparators[name], errors="coerce").to_numpy()
            scored = ~np.isnan(score)
            frame = pd.DataFrame(
                {name: score, time_col: data[time_col], event_col: data[event_col]}
            )
            fit = survival.fit_cox(frame.loc[train & scored], time_col, event_col, [name])
            probability = np.full(len(frame), np.nan)
            probability[scored] = _event_probability(fit, frame.loc[scored], horizon)
            predictions.append(_prediction_rows(table, name, probability, score))

    result.update(
        selected_features=radscore["selected_features"],
        funnel=radscore["funnel"],
        formula=radscore["formula"],
        lasso_cv=radscore["lasso_cv"],
        scores=radscore["scores"],
        radscore={
            "formula": radscore["formula_text"],
            "cutoff": radscore["cutoff"],
            "horizon_months": horizon,
            "cutoff_rule": "max Youden J on the time-dependent ROC of the training cohort",
            "multivariate_candidates": candidates,
            "stepwise_kept": kept,
        },
        predictions=pd.concat(predictions, ignore_index=True)[PREDICTION_COLUMNS],
        comparators=comparators,
    )
    return result


# --------------------------------------------------------------------------- binary
def _expit(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def fit_binary_task(
    clinical: pd.DataFrame,
    features: pd.DataFrame,
    settings: dict,
    robustness: pd.DataFrame | None = None,
    seed: int = 0,
) -> dict:
    """Region sets x classifiers and a radscore on ``radscore_set``, fitted on training rows.

    Returns tables: region_set_cv, selected_features, funnel, predictions, cutoffs, formula,
    scores, lasso_cv; and radscore (dict).
    """
    label_col = settings["label"]
    table = task_table(clinical, features, [label_col])
    labels = (table[label_col].astype(str) == str(settings["positive"])).astype(int).to_numpy()
    cohorts = table["cohort"].to_numpy()
    train = cohorts == "train"
    X = features.loc[table["patient_id"]].reset_index(drop=True)
    robust = merge_config(settings["selection"])["robustness"]
    if robustness is not None and robust["enabled"]:
        # region_set_models runs the chain without the ICC table, so filter here
        icc = robustness.set_index("feature")["icc"]
        fragile = [c for c in X if c in icc.index and not icc[c] > robust["icc_threshold"]]
        X = X.drop(columns=fragile)
        log.info("robustness: %d features with ICC <= threshold left out", len(fragile))

    regions = sorted({c.split("__")[0] for c in X.columns if "__" in c})
    habitats = [r for r in regions if HABITAT_PATTERN.match(r)]
    all_sets, cv_table = classifiers.region_sets(
        X.loc[train],
        labels[train],
        habitats,
        chain_config=settings["selection"],
        seed=seed,
        folds=settings["folds"],
    )
    wanted = settings["region_sets"]
    sets = {
        name: regions_of_set
        for name, regions_of_set in all_sets.items()
        if name in wanted or ("habitats" in wanted and HABITAT_PATTERN.match(name))
    }
    predictions, selected, funnel = classifiers.region_set_models(
        X,
        labels,
        cohorts,
        table["patient_id"],
        sets,
        settings["selection"],
        settings["classifiers"],
        seed,
        settings["folds"],
    )
    predictions["risk"] = predictions["prediction"]

    radscore_regions = (
        all_sets[settings["radscore_set"]]
        if settings["radscore_set"] in all_sets
        else [settings["radscore_set"]]
    )
    radscore = scores.fit_radscore(
        X[classifiers.region_columns(X.columns, radscore_regions)],
        cohorts,
        table["patient_id"],
        labels[train],
        settings["selection"],
        seed=seed,
    )
    score = radscore["scores"]["score"].to_numpy()
    predictions = pd.concat(
        [
            predictions,
            _prediction_rows(table, "radscore", _expit(score), score, settings["radscore_set"]),
        ],
        ignore_index=True,
    )[PREDICTION_COLUMNS]

    cutoffs = []
    for (region_set, model), rows in predictions.groupby(["region_set", "model"], sort=False):
        in_train = (rows["cohort"] == "train").to_numpy()
        if model == "radscore":
            cutoff, rule = float(_expit(radscore["cutoff"])), "youden"
        elif settings["threshold"] == "youden":
            cutoff = scores.youden_cutoff_binary(rows.loc[in_train, "prediction"], labels[train])
            rule = "youden"
        else:
            cutoff, rule = float(settings["threshold"]), "fixed"
        cutoffs.append({"region_set": region_set, "model": model, "cutoff": cutoff, "rule": rule})
    outcome = pd.DataFrame({"patient_id": table["patient_id"], "cohort": cohorts, "label": labels})
    return {
        "region_set_cv": cv_table,
        "selected_features": selected,
        "funnel": funnel,
        "predictions": predictions,
        "cutoffs": pd.DataFrame(cutoffs),
        "formula": radscore["formula"],
        "scores": radscore["scores"],
        "lasso_cv": radscore["lasso_cv"],
        "labels": outcome,
        "radscore": {
            "formula": radscore["formula_text"],
            "cutoff": radscore["cutoff"],
            "cutoff_probability": float(_expit(radscore["cutoff"])),
            "region_set": settings["radscore_set"],
            "regions": list(radscore_regions),
            "cutoff_rule": "max Youden J on the training ROC",
        },
    }


# --------------------------------------------------------------------------- stage entry points
def _read_inputs(inputs: dict, settings: dict):
    clinical = read_tsv(inputs["clinical"], dtype={"patient_id": str})
    features = load_features(inputs["features"], settings.get("regions"))
    robustness = read_tsv(inputs["robustness"]) if inputs.get("robustness") else None
    return clinical, features, robustness


def _write_tables(result: dict, outputs: dict) -> None:
    for name, value in result.items():
        if name not in outputs:
            continue
        if isinstance(value, pd.DataFrame):
            write_tsv(value, outputs[name])
        else:
            write_json(value, outputs[name])


def survival_model_stage(inputs: dict, outputs: dict, settings: dict, task: str, seed: int = 0):
    """Rule ``survival_model``: fit the task, write its tables, forest / nomogram / SHAP figures."""
    from . import plots

    clinical, features, robustness = _read_inputs(inputs, settings)
    result = fit_survival_task(clinical, features, settings, robustness, seed)
    result["shap_importance"] = classifiers.shap_importance(result["shap_values"])
    _write_tables(result, outputs)
    plots.forest_plot(
        result["cox_multivariate"],
        _stem(outputs["forest"]),
        title=f"{task}: multivariate Cox (training cohort)",
    )
    plots.nomogram_plot(result["nomogram"], _stem(outputs["nomogram_figure"]))
    classifiers.plot_shap_summary(
        result["shap_values"],
        result["shap_data"],
        _stem(outputs["shap_summary"]),
        outcome=f"log-odds of the event by {settings['horizon_months']:g} months",
        seed=seed,
    )
    classifiers.plot_shap_importance(
        result["shap_values"], _stem(outputs["shap_importance_figure"])
    )
    log.info(
        "%s radscore: %s; cutoff %.4g",
        task,
        result["radscore"]["formula"],
        result["radscore"]["cutoff"],
    )


def binary_model_stage(inputs: dict, outputs: dict, settings: dict, task: str, seed: int = 0):
    """Rule ``binary_model``: region sets x classifiers and the radscore; tables only."""
    clinical, features, robustness = _read_inputs(inputs, settings)
    result = fit_binary_task(clinical, features, settings, robustness, seed)
    _write_tables(result, outputs)
    log.info(
        "%s radscore: %s; cutoff %.4g",
        task,
        result["radscore"]["formula"],
        result["radscore"]["cutoff"],
    )


def _stem(path) -> Path:
    """A figure path without its extension (the plot helpers write .png and .svg)."""
    return Path(path).with_suffix("")
