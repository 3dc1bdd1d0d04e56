"""Modelling tasks: fitted on training rows only, contract tables, and the Snakemake wiring
(a modelling parameter reruns only model/evaluate jobs of its own task)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_study import FAKE_ICC_TABLE, fake_study, write_fake_results
from lifelines import CoxPHFitter

from radiogenomics.models import classifiers, comparators as clinical_scores, tasks
from radiogenomics.core.io import write_json, write_parquet, write_tsv
from radiogenomics.models.settings import (
    SURVIVAL_STEP_SETTINGS,
    survival_step_settings,
    task_settings,
)

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"

SURVIVAL = {
    "kind": "survival",
    "clinical": ["age", "sex", "size_cm", "grade", "t_stage", "m_stage"],
    "selection": {"lasso": {"folds": 3, "n_lambdas": 15}},
    "xgboost": {
        "folds": 3,
        "grid": {"max_depth": [2], "n_estimators": [20], "learning_rate": [0.1]},
    },
}
BINARY = {
    "kind": "binary",
    "selection": {"univariate": {"method": "mrmr", "k": 6}, "lasso": {"folds": 3, "n_lambdas": 15}},
    "classifiers": ["logistic", "naive_bayes"],
    "region_sets": ["whole", "mix"],
    "folds": 3,
    "reference": {"region_set": "mix", "model": "logistic"},
}


@pytest.fixture(scope="module")
def study():
    clinical, radiomics, truth = fake_study(n_patients=70, features_per_region=8, seed=3)
    return clinical, radiomics.set_index("patient_id")


def perturb_held_out(clinical, features, seed=11):
    """Scramble every non-training feature value and outcome."""
    rng = np.random.default_rng(seed)
    held = clinical["cohort"].ne("train").to_numpy()
    held_ids = clinical.loc[held, "patient_id"]
    features = features.copy()
    features.loc[held_ids] = rng.normal(size=(len(held_ids), features.shape[1])) * 100
    clinical = clinical.copy()
    clinical.loc[held, "os_months"] = rng.uniform(1, 90, held.sum()).round(2)
    clinical.loc[held, "os_event"] = rng.integers(0, 2, held.sum())
    clinical.loc[held, "t_group"] = np.where(rng.uniform(size=held.sum()) < 0.5, "high", "low")
    return clinical, features


def test_survival_task_is_fitted_on_training_rows_only(study):
    clinical, features = study
    settings = task_settings(SURVIVAL)
    first = tasks.fit_survival_task(clinical, features, settings, seed=1)
    second = tasks.fit_survival_task(*perturb_held_out(clinical, features), settings, seed=1)
    for name in ("formula", "cox_univariate", "cox_multivariate", "stepwise", "schoenfeld"):
        pd.testing.assert_frame_equal(first[name], second[name])
    assert first["radscore"] == second["radscore"]
    train = first["predictions"]["cohort"] == "train"
    pd.testing.assert_frame_equal(first["predictions"][train], second["predictions"][train])
    assert not first["predictions"][~train].equals(second["predictions"][~train])


def test_survival_predictions_follow_the_contract(study):
    clinical, features = study
    result = tasks.fit_survival_task(clinical, features, task_settings(SURVIVAL), seed=1)
    predictions = result["predictions"]
    assert list(predictions.columns) == tasks.PREDICTION_COLUMNS
    assert set(predictions["model"]) == {
        "radscore",
        "clinical_cox",
        "cox_nomogram",
        "xgboost",
        "ssign",
        "uiss",
    }
    assert list(result["scores"].columns) == ["patient_id", "cohort", "score", "group"]
    assert list(result["selected_features"].columns) == ["feature", "coefficient"]
    # radscore model: P(event by horizon) recomputed with an independent lifelines Cox fit
    data = result["scores"].merge(clinical, on=["patient_id", "cohort"])
    train = data[data["cohort"] == "train"]
    fitter = CoxPHFitter().fit(train[["score", "os_months", "os_event"]], "os_months", "os_event")
    expected = 1 - fitter.predict_survival_function(data[["score"]], times=[36]).to_numpy()[0]
    radscore = predictions[predictions["model"] == "radscore"]
    np.testing.assert_allclose(radscore["prediction"], expected, rtol=1e-6)
    # the locked cutoff splits every cohort by score >= cutoff
    cutoff = result["radscore"]["cutoff"]
    np.testing.assert_array_equal(
        result["scores"]["group"] == "high", result["scores"]["score"] >= cutoff
    )


def test_survival_steps_through_their_files_write_what_the_whole_fit_gives(study, tmp_path):
    # the workflow runs a survival task as five rules handing results on through files; each
    # step gets only its part of the settings (survival_step_settings, as the rules' params)
    clinical, features = study
    settings = task_settings(SURVIVAL)
    inputs = {"clinical": tmp_path / "clinical.tsv", "features": [tmp_path / "radiomics.parquet"]}
    write_tsv(clinical, inputs["clinical"])
    write_parquet(features.reset_index(), inputs["features"][0])
    step = {name: survival_step_settings(settings, name) for name in SURVIVAL_STEP_SETTINGS}
    out = {
        name: tmp_path / "steps" / f"{name}.{ext}"
        for name, ext in [
            ("selected_features", "tsv"), ("funnel", "tsv"), ("formula", "tsv"),
            ("lasso_cv", "tsv"), ("scores", "tsv"), ("scores_exact", "parquet"),
            ("radscore_part", "json"), ("radscore_predictions", "parquet"),
            ("cox_univariate", "tsv"), ("cox_multivariate", "tsv"), ("schoenfeld", "tsv"),
            ("stepwise", "tsv"), ("nomogram", "json"), ("forest", "png"),
            ("nomogram_figure", "png"), ("design", "parquet"), ("selection", "json"),
            ("cox_predictions", "parquet"), ("xgboost_curve", "tsv"), ("shap_importance", "tsv"),
            ("shap_summary", "png"), ("shap_importance_figure", "png"),
            ("xgboost_predictions", "parquet"), ("comparators", "tsv"),
            ("comparators_predictions", "parquet"), ("predictions", "tsv"), ("radscore", "json"),
        ]
    }  # fmt: skip
    (tmp_path / "steps").mkdir()
    parts = {f"{name}_predictions": "predictions_part" for name in SURVIVAL_STEP_SETTINGS}

    def outputs(*names):
        return {parts.get(name, name): out[name] for name in names}

    tasks.survival_radscore_stage(
        inputs,
        outputs("selected_features", "funnel", "formula", "lasso_cv", "scores", "scores_exact",
                "radscore_part", "radscore_predictions"),
        step["radscore"], "os", seed=1,
    )  # fmt: skip
    tasks.survival_cox_stage(
        {"clinical": inputs["clinical"], "scores_exact": out["scores_exact"]},
        outputs("cox_univariate", "cox_multivariate", "schoenfeld", "stepwise", "nomogram",
                "forest", "nomogram_figure", "design", "selection", "cox_predictions"),
        step["cox"], "os",
    )  # fmt: skip
    tasks.survival_xgboost_stage(
        {"design": out["design"], "selection": out["selection"]},
        outputs("xgboost_curve", "shap_importance", "shap_summary", "shap_importance_figure",
                "xgboost_predictions"),
        step["xgboost"], "os", seed=1,
    )  # fmt: skip
    tasks.survival_comparators_stage(
        {"clinical": inputs["clinical"], "scores_exact": out["scores_exact"]},
        outputs("comparators", "comparators_predictions"),
        step["comparators"], "os",
    )  # fmt: skip
    tasks.survival_predictions_stage(
        {
            **{name: out[f"{name}_predictions"] for name in SURVIVAL_STEP_SETTINGS},
            "radscore_part": out["radscore_part"],
            "selection": out["selection"],
        },
        outputs("predictions", "radscore"),
    )
    whole = tmp_path / "whole"
    whole.mkdir()
    read_clinical, read_features, _ = tasks._read_inputs(inputs, settings)
    result = tasks.fit_survival_task(read_clinical, read_features, settings, seed=1)
    result["shap_importance"] = classifiers.shap_importance(result["shap_values"])
    tables = [name for name, path in out.items() if path.suffix == ".tsv"]
    tasks._write_tables(result, {name: whole / f"{name}.tsv" for name in tables})
    for name in tables:
        assert out[name].read_bytes() == (whole / f"{name}.tsv").read_bytes(), name
    for name in ("radscore", "nomogram"):
        write_json(result[name], whole / f"{name}.json")
        assert out[name].read_bytes() == (whole / f"{name}.json").read_bytes(), name
    assert set(pd.read_csv(out["predictions"], sep="\t")["model"]) == {
        "radscore", "clinical_cox", "cox_nomogram", "xgboost", "ssign", "uiss"
    }  # fmt: skip


def test_binary_task_is_fitted_on_training_rows_only(study):
    clinical, features = study
    settings = task_settings(BINARY)
    first = tasks.fit_binary_task(clinical, features, settings, seed=2)
    second = tasks.fit_binary_task(*perturb_held_out(clinical, features), settings, seed=2)
    for name in ("selected_features", "funnel", "formula", "cutoffs", "region_set_cv"):
        pd.testing.assert_frame_equal(first[name], second[name])
    preds = first["predictions"]
    assert set(preds["region_set"]) == {"whole", "mix"}
    assert set(preds["model"]) == {"logistic", "naive_bayes", "radscore"}
    train = preds["cohort"] == "train"
    pd.testing.assert_frame_equal(preds[train], second["predictions"][train])
    # fixed probability threshold for classifiers, Youden (as a probability) for the radscore
    cutoffs = first["cutoffs"].set_index("model")
    assert cutoffs.loc["logistic", "cutoff"].tolist() == [0.5, 0.5]
    assert cutoffs.loc["radscore", "cutoff"] == pytest.approx(
        1 / (1 + np.exp(-first["radscore"]["cutoff"]))
    )


def test_clinical_covariates_by_hand():
    table = pd.DataFrame(
        {
            "sex": ["M", "F"],
            "t_stage": ["pT3a", "T1b"],
            "m_stage": ["M1", 0],
            "n_stage": ["NX", "N2"],
            "t_group": ["high", "low"],
            "grade": [3, 1],
        }
    )
    covariates = tasks.clinical_covariates(table, list(table.columns))
    expected = pd.DataFrame(
        {
            "male": [1.0, 0.0],
            "t_stage": [3.0, 1.0],
            "m_stage": [1.0, 0.0],
            "n_stage": [0.0, 1.0],
            "t_group_high": [1.0, 0.0],
            "grade": [3.0, 1.0],
        }
    )
    pd.testing.assert_frame_equal(covariates, expected)
    with pytest.raises(ValueError, match="M stage"):
        tasks.clinical_covariates(pd.DataFrame({"m_stage": ["M7"]}), ["m_stage"])


def test_comparator_scores_read_numeric_stages():
    clinical = pd.DataFrame(
        {
            "patient_id": ["A", "B"],
            "t_stage": ["T3a", "T1a"],
            "n_stage": [1, 0],
            "m_stage": [0, 1],
            "size_cm": [6.0, 3.0],
            "grade": [4, 2],
            "necrosis": [1, 0],
            "ecog": [1, 0],
        }
    )
    table = tasks.comparator_scores(clinical, ["ssign", "uiss"])
    # SSIGN by hand (Frank 2002): A = T3 2 + N1 2 + M0 0 + size>=5 2 + grade 4 3 + necrosis 2
    assert table["ssign"].tolist() == [11, 4]
    assert table["ssign"].tolist() == [
        clinical_scores.ssign_score("T3a", "N1", "M0", 6.0, 4, 1),
        clinical_scores.ssign_score("T1a", "N0", "M1", 3.0, 2, 0),
    ]
    assert table["uiss"].isna().all()  # both metastatic (N1 or M1): not scored


def test_task_settings_overlay_defaults():
    settings = task_settings({"kind": "survival", "xgboost": {"folds": 3}})
    assert settings["xgboost"] == {"folds": 3, "grid": None}
    assert settings["horizon_months"] == 36
    assert task_settings({"kind": "binary"})["label"] == "t_group"


# --------------------------------------------------------------------------- workflow wiring
SURVIVAL_STEPS = {
    "survival_radscore",
    "survival_cox",
    "survival_xgboost",
    "survival_comparators",
    "survival_predictions",
}
MODEL_RULES = {
    *SURVIVAL_STEPS,
    "binary_model",
    "evaluate_survival",
    "evaluate_binary",
    "radscore_truth",
    "models",
}


def snakemake(workdir, *args, override: str | None = None):
    """Run Snakemake on the tiny config with the fake tree's ICC table, plus an override config
    file (YAML text) if given."""
    (workdir / "fake_tree.yaml").write_text(f"models: {{robustness_table: {FAKE_ICC_TABLE}}}\n")
    configs = [str(REPO / "config/tiny.yaml"), str(workdir / "fake_tree.yaml")]
    if override:
        (workdir / "override.yaml").write_text(override)
        configs.append(str(workdir / "override.yaml"))
    command = [
        str(SNAKEMAKE),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "1",
        *args,
        "--configfile",
        *configs,
    ]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> count from the 'Job stats' table of a dry run."""
    if "Nothing to be done" in output:
        return {}
    block = output.split("Job stats:")[1].split("total")[0]
    rows = [line.split() for line in block.splitlines()[3:] if line.strip()]
    return {rule: int(count) for rule, count in rows}


@pytest.mark.workflow
def test_modelling_parameters_rerun_only_their_model_jobs(tmp_path):
    write_fake_results(tmp_path, n_patients=30, features_per_region=6)
    first = planned_jobs(snakemake(tmp_path, "-n", "models"))
    assert set(first) == MODEL_RULES  # features exist: nothing upstream is planned
    # record the model jobs as done (empty outputs, metadata with the current params)
    summary = snakemake(tmp_path, "--summary", "models").splitlines()
    for line in summary:
        fields = line.split("\t")
        if len(fields) > 2 and fields[2] in MODEL_RULES and fields[4] == "missing":
            path = tmp_path / fields[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    snakemake(tmp_path, "models", "--touch", "--forcerun", *sorted(SURVIVAL_STEPS), "binary_model")
    assert planned_jobs(snakemake(tmp_path, "-n", "models")) == {}

    folds = "models: {tasks: {os: {selection: {lasso: {folds: 4}}}}}"
    rerun = planned_jobs(snakemake(tmp_path, "-n", "models", override=folds))
    assert rerun == {
        **dict.fromkeys(SURVIVAL_STEPS, 1),
        "evaluate_survival": 1,
        "radscore_truth": 1,
        "models": 1,
    }
    # a setting of a later step reruns that step and what reads it, not the radscore
    # (radscore_truth: its params hold the whole task's settings)
    grid = "models: {tasks: {os: {xgboost: {folds: 4}}}}"
    assert planned_jobs(snakemake(tmp_path, "-n", "models", override=grid)) == {
        "survival_xgboost": 1,
        "survival_predictions": 1,
        "evaluate_survival": 1,
        "radscore_truth": 1,
        "models": 1,
    }
    bootstrap = planned_jobs(
        snakemake(tmp_path, "-n", "models", override="evaluation: {bootstrap: 7}")
    )
    assert set(bootstrap) == {"evaluate_survival", "evaluate_binary", "radscore_truth", "models"}
