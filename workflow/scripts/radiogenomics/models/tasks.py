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

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import classifiers, comparators as clinical_scores, radscore as scores
from ..evaluation import survival
from ..core.io import read_tsv, write_json, write_parquet, write_tsv
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


def _survival_rows(clinical: pd.DataFrame, scores_table: pd.DataFrame, settings: dict):
    """The task table of a step after the radscore: the clinical rows of the radscore's patients
    (``scores``: patient_id, cohort, score), in its order, with the training mask."""
    patients = pd.DataFrame(index=scores_table["patient_id"].astype(str))
    table = task_table(clinical, patients, [settings["time"], settings["event"]])
    if table["patient_id"].tolist() != scores_table["patient_id"].astype(str).tolist():
        raise ValueError("the radscore's patients are not the task's: rerun the radscore step")
    return table, (table["cohort"] == "train").to_numpy()


def fit_survival_radscore(
    clinical: pd.DataFrame,
    features: pd.DataFrame,
    settings: dict,
    robustness: pd.DataFrame | None = None,
    seed: int = 0,
) -> dict:
    """Step 1 of a survival task: selection chain -> LASSO-Cox radscore with its locked cutoff,
    and the radscore's own Cox model (P(event by the horizon)), fitted on the training rows.

    Returns tables selected_features, funnel, formula, lasso_cv, scores (at full precision: the
    later steps read the score), predictions (the ``radscore`` rows); and radscore (dict).
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
    data = pd.DataFrame(
        {
            "radscore": radscore["scores"]["score"].to_numpy(),
            time_col: table[time_col].astype(float),
            event_col: table[event_col].astype(int),
        }
    )
    train_data = data.loc[train].reset_index(drop=True)
    radscore_cox = survival.fit_cox(train_data, time_col, event_col, ["radscore"])
    predictions = _prediction_rows(
        table, "radscore", _event_probability(radscore_cox, data, horizon), data["radscore"]
    )
    return {
        "selected_features": radscore["selected_features"],
        "funnel": radscore["funnel"],
        "formula": radscore["formula"],
        "lasso_cv": radscore["lasso_cv"],
        "scores": radscore["scores"],
        "predictions": predictions,
        "radscore": {
            "formula": radscore["formula_text"],
            "cutoff": radscore["cutoff"],
            "horizon_months": horizon,
            "cutoff_rule": "max Youden J on the time-dependent ROC of the training cohort",
        },
    }


def fit_survival_cox(clinical: pd.DataFrame, radscores: pd.DataFrame, settings: dict) -> dict:
    """Step 2: univariate and multivariate Cox on clinical covariates + the radscore
    (``radscores``: step 1's scores), Schoenfeld test, backward stepwise AIC, the stepwise model
    as a nomogram; the clinical-only and nomogram Cox models' predictions. Fitted on train.

    Returns tables cox_univariate, cox_multivariate, schoenfeld, stepwise, predictions
    (``clinical_cox``, ``cox_nomogram``) and design (patient_id, cohort, the covariates after
    the checks below, radscore, time, event: what the XGBoost step reads); nomogram (spec) and
    selection (``multivariate_candidates``, ``stepwise_kept``).
    """
    time_col, event_col = settings["time"], settings["event"]
    horizon = float(settings["horizon_months"])
    table, train = _survival_rows(clinical, radscores, settings)
    data = clinical_covariates(table, settings["clinical"])
    # a covariate constant on train has no estimable hazard ratio
    constant = [c for c in data if data.loc[train, c].nunique(dropna=True) < 2]
    if constant:
        log.warning("covariates constant on train, left out: %s", constant)
    data = data.drop(columns=constant)
    data = data.fillna(data.loc[train].median())
    data["radscore"] = radscores["score"].to_numpy()
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

    clinical_only = [c for c in candidates if c != "radscore"] or [
        ranked.loc[ranked["variable"] != "radscore", "variable"].iloc[0]
    ]
    clinical_fit = survival.fit_cox(train_data, time_col, event_col, clinical_only)
    nomogram_fit = survival.fit_cox(train_data, time_col, event_col, kept)
    predictions = [
        _prediction_rows(
            table,
            model,
            _event_probability(fit, data, horizon),
            fit.predict_log_partial_hazard(data),
        )
        for model, fit in (("clinical_cox", clinical_fit), ("cox_nomogram", nomogram_fit))
    ]
    design = data.copy()
    design.insert(0, "cohort", table["cohort"].to_numpy())
    design.insert(0, "patient_id", table["patient_id"].to_numpy())
    return {
        "cox_univariate": univariate,
        "cox_multivariate": multivariate,
        "schoenfeld": schoenfeld,
        "stepwise": stepwise.assign(kept=", ".join(kept)),
        "nomogram": survival.nomogram_spec(nomogram_fit, train_data, horizon),
        "predictions": pd.concat(predictions, ignore_index=True),
        "design": design,
        "selection": {"multivariate_candidates": candidates, "stepwise_kept": kept},
    }


def fit_survival_xgboost(design: pd.DataFrame, selection: dict, settings: dict, seed: int = 0):
    """Step 3: the XGBoost combined model on the multivariate candidates (step 2's ``design``
    and ``selection``), tuned and fitted on train, with SHAP values of the training rows.

    Returns tables xgboost_curve, shap_values, shap_data (the SHAP plot's feature values),
    predictions (``xgboost``).
    """
    time_col, event_col = settings["time"], settings["event"]
    horizon = float(settings["horizon_months"])
    candidates = list(selection["multivariate_candidates"])
    train = (design["cohort"] == "train").to_numpy()
    train_data = design.loc[train].reset_index(drop=True)
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
    probability = search.predict_proba(design[candidates])[:, 1]
    values, _ = classifiers.shap_values(search, train_data[candidates])
    return {
        "xgboost_curve": curve,
        "shap_values": values,
        "shap_data": train_data[candidates],
        "predictions": _prediction_rows(design, "xgboost", probability, probability),
    }


def fit_survival_comparators(
    clinical: pd.DataFrame, radscores: pd.DataFrame, settings: dict
) -> dict:
    """Step 4: SSIGN / UISS of the radscore's patients (step 1's scores), each as a Cox model on
    the training rows. Returns tables comparators and predictions (one model per score)."""
    time_col, event_col = settings["time"], settings["event"]
    horizon = float(settings["horizon_months"])
    table, train = _survival_rows(clinical, radscores, settings)
    comparators = pd.DataFrame({"patient_id": table["patient_id"]})
    predictions = []
    if settings["comparators"]:
        comparators = comparator_scores(table, settings["comparators"])
        for name in settings["comparators"]:
            score = pd.to_numeric(comparators[name], errors="coerce").to_numpy()
            scored = ~np.isnan(score)
            frame = pd.DataFrame(
                {
                    name: score,
                    time_col: table[time_col].astype(float),
                    event_col: table[event_col].astype(int),
                }
            )
            fit = survival.fit_cox(frame.loc[train & scored], time_col, event_col, [name])
            probability = np.full(len(frame), np.nan)
            probability[scored] = _event_probability(fit, frame.loc[scored], horizon)
            predictions.append(_prediction_rows(table, name, probability, score))
    return {
        "comparators": comparators,
        "predictions": (
            pd.concat(predictions, ignore_index=True)
            if predictions
            else pd.DataFrame(columns=PREDICTION_COLUMNS)
        ),
    }


def survival_predictions(parts, radscore: dict, selection: dict):
    """Step 5: predictions.tsv (the steps' prediction rows in order: radscore, Cox models,
    XGBoost, comparators) and radscore.json (step 1's radscore with step 2's model choice)."""
    parts = [part for part in parts if len(part)]
    predictions = pd.concat(parts, ignore_index=True)[PREDICTION_COLUMNS]
    return predictions, {**radscore, **selection}


def fit_survival_task(
    clinical: pd.DataFrame,
    features: pd.DataFrame,
    settings: dict,
    robustness: pd.DataFrame | None = None,
    seed: int = 0,
) -> dict:
    """Every step of a survival task in memory (the workflow runs them as separate rules):
    fitted on the training rows, predicting every row.

    Returns tables: selected_features, funnel, formula, lasso_cv, scores, predictions,
    cox_univariate, cox_multivariate, schoenfeld, stepwise, xgboost_curve, shap_values,
    comparators; plus radscore (dict), nomogram (spec) and shap_data (features of the SHAP plot).
    """
    radscore = fit_survival_radscore(clinical, features, settings, robustness, seed)
    cox = fit_survival_cox(clinical, radscore["scores"], settings)
    xgboost = fit_survival_xgboost(cox["design"], cox["selection"], settings, seed)
    comparators = fit_survival_comparators(clinical, radscore["scores"], settings)
    predictions, radscore_json = survival_predictions(
        [step["predictions"] for step in (radscore, cox, xgboost, comparators)],
        radscore["radscore"],
        cox["selection"],
    )
    result = {**radscore, **cox, **xgboost, **comparators}
    del result["design"], result["selection"]
    result.update(predictions=predictions, radscore=radscore_json)
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


def _read_json(path):
    # here, not in radiogenomics.core.io: every rule's sidecar records io.py's hash
    with open(path) as handle:
        return json.load(handle)


def _write_parts(result: dict, outputs: dict) -> None:
    """Tables handed to a later step as parquet (full precision; a TSV keeps 10 digits)."""
    for name, value in result.items():
        if name in outputs and isinstance(value, pd.DataFrame):
            write_parquet(value.reset_index(drop=True), outputs[name])


def survival_radscore_stage(inputs: dict, outputs: dict, settings: dict, task: str, seed: int = 0):
    """Rule ``survival_radscore``: selection chain and LASSO-Cox radscore; the contract tables,
    and for the later steps the exact scores (``scores_exact``), the radscore (``radscore_part``)
    and its prediction rows (``predictions_part``)."""
    clinical, features, robustness = _read_inputs(inputs, settings)
    result = fit_survival_radscore(clinical, features, settings, robustness, seed)
    _write_tables(result, outputs)
    _write_parts(
        {"scores_exact": result["scores"], "predictions_part": result["predictions"]}, outputs
    )
    write_json(result["radscore"], outputs["radscore_part"])
    log.info(
        "%s radscore: %s; cutoff %.4g",
        task,
        result["radscore"]["formula"],
        result["radscore"]["cutoff"],
    )


def survival_cox_stage(inputs: dict, outputs: dict, settings: dict, task: str):
    """Rule ``survival_cox``: Cox models, Schoenfeld, stepwise AIC, nomogram on step 1's
    radscore; tables, forest and nomogram figures, and the design and model choice for the
    XGBoost step and predictions.tsv."""
    from ..evaluation import figures as plots

    clinical = read_tsv(inputs["clinical"], dtype={"patient_id": str})
    radscores = pd.read_parquet(inputs["scores_exact"])
    result = fit_survival_cox(clinical, radscores, settings)
    _write_tables({k: v for k, v in result.items() if k not in ("design", "predictions")}, outputs)
    _write_parts({"design": result["design"], "predictions_part": result["predictions"]}, outputs)
    plots.forest_plot(
        result["cox_multivariate"],
        _stem(outputs["forest"]),
        title=f"{task}: multivariate Cox (training cohort)",
    )
    plots.nomogram_plot(result["nomogram"], _stem(outputs["nomogram_figure"]))
    log.info(
        "%s multivariate candidates %s; stepwise AIC kept %s", task, *result["selection"].values()
    )


def survival_xgboost_stage(inputs: dict, outputs: dict, settings: dict, task: str, seed: int = 0):
    """Rule ``survival_xgboost``: XGBoost combined model + SHAP on step 2's design."""
    design = pd.read_parquet(inputs["design"])
    selection = _read_json(inputs["selection"])
    result = fit_survival_xgboost(design, selection, settings, seed)
    result["shap_importance"] = classifiers.shap_importance(result["shap_values"])
    _write_tables(result, outputs)
    _write_parts({"predictions_part": result["predictions"]}, outputs)
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
    log.info("%s XGBoost on %s", task, selection["multivariate_candidates"])


def survival_comparators_stage(inputs: dict, outputs: dict, settings: dict, task: str):
    """Rule ``survival_comparators``: SSIGN / UISS scores and their Cox models."""
    clinical = read_tsv(inputs["clinical"], dtype={"patient_id": str})
    radscores = pd.read_parquet(inputs["scores_exact"])
    result = fit_survival_comparators(clinical, radscores, settings)
    _write_tables({"comparators": result["comparators"]}, outputs)
    _write_parts({"predictions_part": result["predictions"]}, outputs)
    log.info("%s comparators: %s", task, settings["comparators"])


def survival_predictions_stage(inputs: dict, outputs: dict):
    """Rule ``survival_predictions``: predictions.tsv and radscore.json from the steps' parts."""
    parts = [
        pd.read_parquet(inputs[name]) for name in ("radscore", "cox", "xgboost", "comparators")
    ]
    predictions, radscore = survival_predictions(
        parts, _read_json(inputs["radscore_part"]), _read_json(inputs["selection"])
    )
    write_tsv(predictions, outputs["predictions"])
    write_json(radscore, outputs["radscore"])


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
