"""Classifiers (S2), region sets for T stage, and the XGBoost combined model with SHAP (S1).

All estimators are fitted on training rows only; hyper-parameters come from a stratified k-fold
grid search on those rows (ROC AUC), seeded. Class balancing:
  logistic, svm, random_forest, lightgbm: ``class_weight="balanced"``;
  naive_bayes, mlp: balanced *sample weights* (n / (2 n_class)) passed to ``fit`` -- both
  estimators accept them, so no resampling is needed; for Gaussian NB this is the same as equal
  class priors.

Combined model (S1 "NHSTM-R"): an XGBoost *classifier* for death before a horizon, on the
radscore plus clinical factors. Label 1 = event at or before the horizon, 0 = followed beyond
it; patients censored before the horizon have unknown status and are left out of training
(they still get predictions). 10-fold stratified grid search; the CV AUC along n_estimators is
the learning curve.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.class_weight import compute_sample_weight

from .selection import SelectionChain

log = logging.getLogger(__name__)


def _lightgbm(seed: int):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        class_weight="balanced",
        learning_rate=0.05,
        min_child_samples=5,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        random_state=seed,
        n_jobs=1,
        verbose=-1,
    )


def _svm(seed: int):
    """SVM with Platt-scaled probabilities. sklearn 1.9 deprecates SVC(probability=True) for
    exactly this: sigmoid calibration on internal CV predictions, one SVC refitted on all rows."""
    return CalibratedClassifierCV(
        SVC(class_weight="balanced", random_state=seed),
        method="sigmoid",
        ensemble=False,
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=seed),
    )


@dataclass(frozen=True)
class ClassifierSpec:
    build: Callable[[int], object]
    grid: dict
    sample_weighted: bool = False  # balance with sample weights instead of class_weight
    grid_prefix: str = ""  # where the grid's parameters live inside a wrapped estimator


CLASSIFIERS: dict[str, ClassifierSpec] = {
    "logistic": ClassifierSpec(
        lambda seed: LogisticRegression(class_weight="balanced", max_iter=2000),
        {"C": [0.01, 0.1, 1.0, 10.0]},
    ),
    "svm": ClassifierSpec(
        _svm, {"C": [0.1, 1.0, 10.0], "kernel": ["linear", "rbf"]}, grid_prefix="estimator__"
    ),
    "random_forest": ClassifierSpec(
        lambda seed: RandomForestClassifier(
            n_estimators=200, class_weight="balanced", random_state=seed, n_jobs=1
        ),
        {"max_depth": [3, None], "min_samples_leaf": [1, 5]},
    ),
    "lightgbm": ClassifierSpec(_lightgbm, {"n_estimators": [50, 200], "num_leaves": [4, 15]}),
    "naive_bayes": ClassifierSpec(
        lambda seed: GaussianNB(), {"var_smoothing": [1e-9, 1e-6, 1e-3]}, sample_weighted=True
    ),
    "mlp": ClassifierSpec(
        lambda seed: MLPClassifier(max_iter=2000, random_state=seed),
        {"hidden_layer_sizes": [(16,), (32, 16)], "alpha": [1e-3, 1e-1]},
        sample_weighted=True,
    ),
}


def fit_classifier(
    name: str, X: pd.DataFrame, y, seed: int = 0, folds: int = 5, grid: dict | None = None
) -> GridSearchCV:
    """Grid search (stratified k-fold, ROC AUC) on the training rows; refit on all of them.
    The estimator sits behind a StandardScaler, fitted inside each fold."""
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {name!r}; known: {sorted(CLASSIFIERS)}")
    spec = CLASSIFIERS[name]
    y = np.asarray(y).astype(int)
    pipeline = Pipeline([("scale", StandardScaler()), ("model", spec.build(seed))])
    param_grid = {
        f"model__{spec.grid_prefix}{key}": values for key, values in (grid or spec.grid).items()
    }
    search = GridSearchCV(
        pipeline,
        param_grid,
        scoring="roc_auc",
        cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed),
        n_jobs=1,
    )
    fit_params = {}
    if spec.sample_weighted:
        fit_params["model__sample_weight"] = compute_sample_weight("balanced", y)
    return search.fit(X, y, **fit_params)


def fit_classifiers(
    X: pd.DataFrame, y, names=None, seed: int = 0, folds: int = 5, grids: dict | None = None
) -> dict[str, GridSearchCV]:
    names = list(names or CLASSIFIERS)
    grids = grids or {}
    return {name: fit_classifier(name, X, y, seed, folds, grids.get(name)) for name in names}


def predictions_table(
    models: dict, X: pd.DataFrame, patient_ids, cohorts, region_set: str
) -> pd.DataFrame:
    """Rows (patient_id, cohort, model, region_set, prediction = P(class 1))."""
    frames = [
        pd.DataFrame(
            {
                "patient_id": np.asarray(patient_ids),
                "cohort": np.asarray(cohorts),
                "model": name,
                "region_set": region_set,
                "prediction": model.predict_proba(X)[:, 1],
            }
        )
        for name, model in models.items()
    ]
    return pd.concat(frames, ignore_index=True)


# --- region sets (S2) --------------------------------------------------------------------


def region_columns(columns, regions) -> list[str]:
    """Feature columns named ``{region}__{feature}`` for any of ``regions``."""
    prefixes = tuple(f"{region}__" for region in regions)
    return [column for column in columns if column.startswith(prefixes)]


def cv_auc_of_chain(
    X: pd.DataFrame, y, chain_config: dict | None, seed: int = 0, folds: int = 5
) -> float:
    """Mean stratified-CV AUC of selection chain + balanced logistic regression, the chain
    refitted inside every fold (so the score is honest)."""
    pipeline = Pipeline(
        [
            ("select", SelectionChain(chain_config, seed=seed)),
            ("model", LogisticRegression(class_weight="balanced", max_iter=2000)),
        ]
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(
        np.mean(cross_val_score(pipeline, X, np.asarray(y).astype(int), cv=cv, scoring="roc_auc"))
    )


def region_sets(
    features_train: pd.DataFrame,
    y_train,
    habitats: list[str],
    whole: str = "whole",
    peri: str = "peri",
    chain_config: dict | None = None,
    seed: int = 0,
    folds: int = 5,
) -> tuple[dict[str, list[str]], pd.DataFrame]:
    """Region sets for T stage: whole, each habitat, peri, and mix = best habitat + peri.
    The best habitat has the highest CV AUC on the training rows. Returns
    ({set name: [regions]}, table of habitat, cv_auc)."""
    table = pd.DataFrame(
        {
            "habitat": habitats,
            "cv_auc": [
                cv_auc_of_chain(
                    features_train[region_columns(features_train.columns, [habitat])],
                    y_train,
                    chain_config,
                    seed,
                    folds,
                )
                for habitat in habitats
            ],
        }
    )
    best = table["habitat"].iloc[int(np.argmax(table["cv_auc"].to_numpy()))]
    sets = {whole: [whole], **{habitat: [habitat] for habitat in habitats}, peri: [peri]}
    sets["mix"] = [best, peri]
    log.info("best habitat by CV AUC: %s (%s)", best, table.to_dict("records"))
    return sets, table


def region_set_models(
    features: pd.DataFrame,
    labels,
    cohorts,
    patient_ids,
    sets: dict[str, list[str]],
    chain_config: dict | None = None,
    classifier_names=None,
    seed: int = 0,
    folds: int = 5,
    grids: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per region set: selection chain and classifiers fitted on ``cohort == "train"`` rows,
    predictions for every row. Returns (predictions, selected features with region_set,
    funnels with region_set)."""
    cohorts = np.asarray(cohorts)
    train = cohorts == "train"
    y_train = np.asarray(labels)[train].astype(int)
    predictions, selected, funnels = [], [], []
    for set_name, regions in sets.items():
        X = features[region_columns(features.columns, regions)]
        chain = SelectionChain(chain_config, seed=seed).fit(X[train], y_train)
        models = fit_classifiers(
            chain.transform(X[train]), y_train, classifier_names, seed, folds, grids
        )
        predictions.append(
            predictions_table(models, chain.transform(X), patient_ids, cohorts, set_name)
        )
        selected.append(chain.selected_features_.assign(region_set=set_name))
        funnels.append(chain.funnel_.assign(region_set=set_name))
    return (
        pd.concat(predictions, ignore_index=True),
        pd.concat(selected, ignore_index=True),
        pd.concat(funnels, ignore_index=True),
    )


# --- XGBoost combined model + SHAP (S1) --------------------------------------------------

XGBOOST_GRID = {"max_depth": [2, 3], "n_estimators": [50, 100, 200], "learning_rate": [0.05, 0.1]}


def horizon_label(time, event, horizon: float) -> np.ndarray:
    """1 = event at or before ``horizon``, 0 = followed beyond it, NaN = censored before it."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    label = np.full(len(time), np.nan)
    label[event & (time <= horizon)] = 1.0
    label[time > horizon] = 0.0
    return label


def fit_xgboost_combined(
    X: pd.DataFrame,
    time,
    event,
    horizon: float,
    seed: int = 0,
    folds: int = 10,
    grid: dict | None = None,
) -> tuple[GridSearchCV, pd.DataFrame]:
    """XGBoost classifier for death before ``horizon`` on training rows with a known status.
    Returns (fitted grid search, learning curve: n_estimators vs CV AUC at the best other
    hyper-parameters)."""
    from xgboost import XGBClassifier

    label = horizon_label(time, event, horizon)
    known = ~np.isnan(label)
    search = GridSearchCV(
        XGBClassifier(random_state=seed, n_jobs=1, eval_metric="logloss", tree_method="exact"),
        grid or XGBOOST_GRID,
        scoring="roc_auc",
        cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed),
        n_jobs=1,
    ).fit(X[known], label[known].astype(int))
    results = pd.DataFrame(search.cv_results_)
    others = {k: v for k, v in search.best_params_.items() if k != "n_estimators"}
    mask = np.ones(len(results), bool)
    for key, value in others.items():
        mask &= results[f"param_{key}"].to_numpy() == value
    curve = (
        results.loc[mask, ["param_n_estimators", "mean_test_score", "std_test_score"]]
        .rename(
            columns={
                "param_n_estimators": "n_estimators",
                "mean_test_score": "cv_auc",
                "std_test_score": "cv_auc_sd",
            }
        )
        .sort_values("n_estimators")
        .reset_index(drop=True)
    )
    return search, curve


def shap_values(model, X: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """TreeExplainer SHAP values (log-odds scale for XGBoost classifiers) and the base value."""
    import shap

    estimator = getattr(model, "best_estimator_", model)
    explainer = shap.TreeExplainer(estimator)
    values = np.asarray(explainer.shap_values(X))
    if values.ndim == 3:  # (n, p, classes) from some tree models: keep the positive class
        values = values[:, :, 1]
    base = np.atleast_1d(explainer.expected_value)[-1]
    return pd.DataFrame(values, index=X.index, columns=X.columns), float(base)


def plot_shap_summary(
    values: pd.DataFrame,
    X: pd.DataFrame,
    stem: str | Path,
    outcome: str = "log-odds of death before the horizon",
    seed: int = 0,
) -> list[Path]:
    """SHAP beeswarm summary (shap.summary_plot) saved as ``{stem}.png`` and ``{stem}.svg``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    from ..core.figure_writer import save_png_svg

    plt.close("all")
    shap.summary_plot(values.to_numpy(), X, show=False, max_display=20, rng=seed)
    figure = plt.gcf()
    figure.axes[0].set_xlabel(f"SHAP value (impact on {outcome})")
    return save_png_svg(figure, stem)


def shap_importance(values: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per feature, descending."""
    importance = values.abs().mean().sort_values(ascending=False, kind="stable")
    return importance.rename_axis("feature").reset_index(name="mean_abs_shap")


def plot_shap_importance(values: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Horizontal bars of mean |SHAP| saved as ``{stem}.png`` and ``{stem}.svg``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..core.figure_writer import save_png_svg

    table = shap_importance(values).iloc[::-1]
    figure, axis = plt.subplots(figsize=(6, 0.35 * len(table) + 1.2))
    axis.barh(table["feature"], table["mean_abs_shap"], color="#3b75af")
    axis.set_xlabel("mean |SHAP value| (log-odds)")
    axis.set_title("Feature importance")
    return save_png_svg(figure, stem)
