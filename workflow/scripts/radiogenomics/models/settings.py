"""Task and evaluation settings: the defaults of each task kind overlaid by the user's config.

Kept free of heavy imports because common.smk reads it at every DAG build.
"""

from __future__ import annotations

import copy

SURVIVAL_DEFAULTS: dict = {
    "kind": "survival",
    "time": "os_months",
    "event": "os_event",
    "features": ["radiomics"],
    "regions": None,  # None: every region of the feature tables
    "horizon_months": 36,
    "selection": {},
    "clinical": ["age", "sex", "size_cm", "necrosis", "grade", "mvi", "t_stage", "ecog"],
    "univariate_p": 0.05,
    "events_per_variable": 10,
    "comparators": ["ssign", "uiss"],
    "xgboost": {"folds": 10, "grid": None},
}

# The task settings each step of a survival task reads (rules survival_radscore, survival_cox,
# survival_xgboost, survival_comparators): a setting reruns only the steps that read it (and
# the steps after them).
SURVIVAL_STEP_SETTINGS: dict = {
    "radscore": ("time", "event", "horizon_months", "regions", "selection"),
    "cox": ("time", "event", "horizon_months", "clinical", "univariate_p", "events_per_variable"),
    "xgboost": ("time", "event", "horizon_months", "xgboost"),
    "comparators": ("time", "event", "horizon_months", "comparators"),
}

BINARY_DEFAULTS: dict = {
    "kind": "binary",
    "label": "t_group",
    "positive": "high",
    "features": ["radiomics"],
    "selection": {},
    "classifiers": ["logistic", "svm", "random_forest", "lightgbm", "naive_bayes", "mlp"],
    "region_sets": ["whole", "habitats", "peri", "mix"],
    "folds": 5,
    "radscore_set": "mix",
    "threshold": 0.5,  # probability cutoff of the classifiers, or "youden" (on train)
    "reference": {"region_set": "mix", "model": "svm"},
    "km_endpoint": {"time": "os_months", "event": "os_event"},  # KM of the radscore groups
}

EVALUATION_DEFAULTS: dict = {
    "cohorts": ["train", "test", "external"],
    "bootstrap": 200,
    "td_auc_horizons_months": [12, 36, 60],
    "km_at_risk_months": [0, 12, 24, 36, 48, 60],
    "calibration_groups": 4,
    "calibration_bins": 5,
    "dca_thresholds": {"start": 0.01, "stop": 0.8, "step": 0.01},
}


def evaluation_settings(config: dict | None) -> dict:
    settings = dict(EVALUATION_DEFAULTS)
    settings.update(config or {})
    return settings


def survival_step_settings(settings: dict, step: str) -> dict:
    """The part of a survival task's settings that one step reads (SURVIVAL_STEP_SETTINGS)."""
    return {key: copy.deepcopy(settings[key]) for key in SURVIVAL_STEP_SETTINGS[step]}


def task_settings(task: dict) -> dict:
    """The task's config over the defaults of its kind (one level deep, ``xgboost`` two)."""
    defaults = SURVIVAL_DEFAULTS if task.get("kind", "survival") == "survival" else BINARY_DEFAULTS
    settings = copy.deepcopy(defaults)
    for key, value in task.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict) and key != "selection":
            settings[key].update(value)
        else:
            settings[key] = copy.deepcopy(value)
    return settings
