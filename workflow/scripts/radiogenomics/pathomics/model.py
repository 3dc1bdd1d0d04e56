"""The pathomics score of a cohort: attention MIL (plain and gated) fitted on the labelled
training patients, applied frozen to every patient with a slide.

Outputs follow a binary task's contract (``results/models/pathomics/``: predictions, scores,
labels, cutoffs) so that :func:`radiogenomics.evaluation.stages.evaluate_binary_stage` evaluates them,
and the score is also a feature table (``results/features/pathomics.parquet``, columns
``pathomics__{variant}``) that other tasks can name in ``features``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch

from radiogenomics.models import radscore as radscores
from radiogenomics.features.deep import endpoint_labels
from radiogenomics.models.tasks import PREDICTION_COLUMNS

from . import mil

log = logging.getLogger(__name__)
REGION_SET = "slide"
VARIANTS = {"abmil": False, "gated_abmil": True}  # name -> gated


def _expit(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def fit_pathomics(
    clinical: pd.DataFrame,
    bags: Mapping[str, np.ndarray],
    settings: Mapping,
    augmented: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
    device: str = "auto",
) -> dict:
    """Fit every variant on training patients with a known label; score every patient in
    ``bags`` (ids present in ``clinical``). Returns tables and the fitted models."""
    table = clinical.assign(patient_id=clinical["patient_id"].astype(str))
    table = table[table["patient_id"].isin(bags)].sort_values("patient_id").reset_index(drop=True)
    label_of = endpoint_labels(table, settings["endpoint"], settings.get("horizon_months"), None)
    train = [
        p
        for p, c in zip(table["patient_id"], table["cohort"], strict=True)
        if c == "train" and p in label_of
    ]
    y_train = np.array([label_of[p] for p in train])
    if len(train) < 4 or len(set(y_train)) < 2:
        raise ValueError(
            f"pathomics needs labelled training patients of both classes; have {len(train)} "
            f"({settings['endpoint']})"
        )
    patients = list(table["patient_id"])
    cohorts = dict(zip(table["patient_id"], table["cohort"], strict=True))
    hyper = {k: settings[k] for k in mil.TRAIN_KEYS if k in settings}
    predictions, attention, histories, models, cutoffs = [], [], [], {}, []
    for variant in settings["variants"]:
        model, history = mil.train_mil(
            [bags[p] for p in train],
            y_train,
            augmented=[(augmented or {}).get(p) for p in train],
            gated=VARIANTS[variant],
            seed=seed,
            device=device,
            **hyper,
        )
        logits, weights = mil.predict(model, [bags[p] for p in patients], device)
        models[variant] = model
        histories.append(history.assign(model=variant))
        predictions.append(
            pd.DataFrame(
                {
                    "patient_id": patients,
                    "cohort": [cohorts[p] for p in patients],
                    "model": variant,
                    "region_set": REGION_SET,
                    "prediction": _expit(logits),
                    "risk": logits,
                }
            )
        )
        for p, w in zip(patients, weights, strict=True):
            attention.append(pd.DataFrame({"patient_id": p, "model": variant, "attention": w}))
        in_train = np.isin(patients, train)
        train_prob = _expit(logits)[in_train]
        train_y = np.array([label_of[p] for p in np.asarray(patients)[in_train]])
        if settings["threshold"] == "youden":
            cutoff, rule = radscores.youden_cutoff_binary(train_prob, train_y), "youden"
        else:
            cutoff, rule = float(settings["threshold"]), "fixed"
        cutoffs.append({"region_set": REGION_SET, "model": variant, "cutoff": cutoff, "rule": rule})
    predictions = pd.concat(predictions, ignore_index=True)[PREDICTION_COLUMNS]
    reference = predictions[predictions["model"] == settings["reference"]].reset_index(drop=True)
    median = float(reference.loc[reference["cohort"] == "train", "risk"].median())
    score_table = pd.DataFrame(
        {
            "patient_id": reference["patient_id"],
            "cohort": reference["cohort"],
            "score": reference["risk"],
            "group": np.where(reference["risk"] > median, "high", "low"),
        }
    )
    features = predictions.pivot(index="patient_id", columns="model", values="risk")
    features.columns = [f"pathomics__{c}" for c in features.columns]
    labels = pd.DataFrame(
        [
            {"patient_id": p, "cohort": cohorts[p], "label": label_of[p]}
            for p in patients
            if p in label_of
        ],
        columns=["patient_id", "cohort", "label"],
    )
    return {
        "predictions": predictions,
        "scores": score_table,
        "labels": labels,
        "cutoffs": pd.DataFrame(cutoffs),
        "history": pd.concat(histories, ignore_index=True),
        "attention": pd.concat(attention, ignore_index=True),
        "features": features.reset_index(),
        "models": models,
        "training_patients": train,
        "median_training_score": median,
    }


def save_models(models: Mapping[str, mil.AttentionMIL], path) -> None:
    torch.save({name: model.state_dict() for name, model in models.items()}, path)
