"""Evaluation of a task's frozen predictions, per cohort (config ``evaluation``).

Reads ``results/models/{task}/predictions.tsv`` and the clinical table; nothing is refitted,
except that the censoring distribution of IPCW statistics comes from the training cohort.

survival  Harrell and Uno C with bootstrap CI, td-AUC per horizon with bootstrap CI, paired
          bootstrap C comparisons between every pair of models, KM of the radscore groups
          (locked cutoff) with log-rank p and the hazard ratio high vs low, calibration and
          decision curves at the task horizon.
binary    AUC with DeLong CI and accuracy / precision / recall / specificity / F1 at the locked
          cutoff (bootstrap CI); DeLong tests against the reference model; ROC, confusion
          matrix, calibration and decision curves.
Figures: ``results/figures/{task}_{kind}_{cohort}.png`` (+ .svg).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lifelines.exceptions import ConvergenceError  # noqa: E402

from . import binary as metrics, figures as plots, survival  # noqa: E402
from ..core.figure_writer import save_png_svg  # noqa: E402
from ..core.io import read_tsv, write_tsv  # noqa: E402
from .binary import METRIC_COLUMNS  # noqa: E402

log = logging.getLogger(__name__)


def dca_thresholds(spec: dict) -> np.ndarray:
    return np.round(np.arange(spec["start"], spec["stop"] + 1e-9, spec["step"]), 6)


def no_patients_figure(stem, message: str) -> None:
    """A figure that says why there is nothing to draw (e.g. a cohort without patients)."""
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    save_png_svg(fig, stem)


def _stem(path) -> Path:
    return Path(path).with_suffix("")


def _figure(outputs: dict, kind: str, cohort: str) -> Path:
    return _stem(outputs[f"{kind}_{cohort}"])


def _with_outcome(predictions: pd.DataFrame, outcome: pd.DataFrame) -> pd.DataFrame:
    return predictions.merge(outcome, on=["patient_id", "cohort"], how="inner", validate="m:1")


# --------------------------------------------------------------------------- survival
def survival_evaluation(
    predictions: pd.DataFrame,
    scores: pd.DataFrame,
    clinical: pd.DataFrame,
    settings: dict,
    task_settings: dict,
    seed: int = 0,
) -> dict:
    """Tables: metrics (contract columns), c_comparisons, km, calibration, decision_curve."""
    time_col, event_col = task_settings["time"], task_settings["event"]
    horizon = float(task_settings["horizon_months"])
    outcome = clinical[["patient_id", "cohort", time_col, event_col]].dropna()
    outcome = outcome.rename(columns={time_col: "time", event_col: "event"})
    data = _with_outcome(predictions, outcome)
    train_outcome = outcome[outcome["cohort"] == "train"]
    train_time, train_event = train_outcome["time"].to_numpy(), train_outcome["event"].to_numpy()
    n_boot = int(settings["bootstrap"])
    thresholds = dca_thresholds(settings["dca_thresholds"])
    models = list(dict.fromkeys(data["model"]))
    rows, comparisons, km_rows, calibration, curves = [], [], [], [], []
    for cohort in settings["cohorts"]:
        part = data[data["cohort"] == cohort]
        if part.empty:
            continue
        for model in models:
            rows_m = part[(part["model"] == model) & part["prediction"].notna()]
            if len(rows_m) < 2 or not rows_m["event"].any():
                continue
            horizons = settings["td_auc_horizons_months"]
            evaluable = _evaluable_horizons(rows_m["time"], rows_m["event"], horizons)
            rows += survival.survival_metrics_rows(
                model,
                cohort,
                train_time,
                train_event,
                rows_m["time"],
                rows_m["event"],
                rows_m["risk"],
                evaluable,
                n_boot,
                seed,
                uno_tau=float(train_time.max()),
            )
            rows += [
                {
                    "model": model,
                    "cohort": cohort,
                    "metric": f"td_auc_{float(h):g}",
                    "value": np.nan,
                    "ci_low": np.nan,
                    "ci_high": np.nan,
                }
                for h in horizons
                if h not in evaluable
            ]
            try:
                calibration.append(
                    survival.calibration_at_horizon(
                        rows_m["time"],
                        rows_m["event"],
                        1.0 - rows_m["prediction"],
                        horizon,
                        settings["calibration_groups"],
                    ).assign(model=model, cohort=cohort)
                )
            except ValueError as error:
                log.warning("calibration %s/%s: %s", model, cohort, error)
            curves.append(
                survival.survival_net_benefit(
                    rows_m["time"], rows_m["event"], rows_m["prediction"], horizon, thresholds
                )
                .rename(columns={"model": "net_benefit"})
                .assign(model=model, cohort=cohort)
            )
        wide = part.pivot(index="patient_id", columns="model", values="risk")
        wide = wide.join(outcome.set_index("patient_id")[["time", "event"]])
        for model_a, model_b in itertools.combinations(models, 2):
            both = wide[[model_a, model_b, "time", "event"]].dropna()
            if len(both) < 2 or not both["event"].any():
                continue
            comparison = survival.compare_c_bootstrap(
                both["time"], both["event"], both[model_a], both[model_b], n_boot, seed
            )
            comparisons.append(
                {
                    "cohort": cohort,
                    "model_a": model_a,
                    "model_b": model_b,
                    "n": len(both),
                    **comparison,
                }
            )
        group_rows = scores[scores["cohort"] == cohort].merge(outcome, on=["patient_id", "cohort"])
        km_rows.append(_km_summary(group_rows, cohort))
    metrics_table = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    km = pd.DataFrame(km_rows)
    extra = [
        {
            "model": "radscore_groups",
            "cohort": r["cohort"],
            "metric": name,
            "value": r[key],
            "ci_low": r.get(f"{key}_ci_low", np.nan),
            "ci_high": r.get(f"{key}_ci_high", np.nan),
        }
        for r in km_rows
        for name, key in (("logrank_p", "logrank_p"), ("hr_high_vs_low", "hr"))
    ]
    return {
        "metrics": pd.concat(
            [metrics_table, pd.DataFrame(extra, columns=METRIC_COLUMNS)], ignore_index=True
        ),
        "c_comparisons": pd.DataFrame(comparisons),
        "km": km,
        "calibration": pd.concat(calibration, ignore_index=True) if calibration else pd.DataFrame(),
        "decision_curve": pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(),
        "outcome": outcome,
        "data": data,
    }


def _evaluable_horizons(time, event, horizons) -> list:
    """Horizons with at least one event by then and one patient followed beyond: the others
    have no cases or no controls, and their td-AUC is undefined (reported as NaN)."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(bool)
    return [h for h in horizons if (event & (time <= h)).any() and (time > h).any()]


def _km_summary(rows: pd.DataFrame, cohort: str) -> dict:
    """Log-rank p and Cox HR (high vs low radscore group) in one cohort."""
    summary = {
        "cohort": cohort,
        "n_high": int((rows["group"] == "high").sum()),
        "n_low": int((rows["group"] == "low").sum()),
        "logrank_p": np.nan,
        "hr": np.nan,
        "hr_ci_low": np.nan,
        "hr_ci_high": np.nan,
    }
    if summary["n_high"] and summary["n_low"] and rows["event"].any():
        summary["logrank_p"] = survival.logrank_p(rows["time"], rows["event"], rows["group"])
        frame = pd.DataFrame(
            {
                "high": (rows["group"] == "high").astype(float).to_numpy(),
                "time": rows["time"].to_numpy(),
                "event": rows["event"].to_numpy(),
            }
        )
        try:
            hr = survival.cox_univariate(frame, "time", "event", ["high"]).iloc[0]
            summary.update(hr=hr["hr"], hr_ci_low=hr["ci_low"], hr_ci_high=hr["ci_high"])
        except ConvergenceError as error:  # e.g. no events in one group: HR not estimable
            log.warning("%s: hazard ratio high vs low not estimable: %s", cohort, error)
    return summary


def evaluate_survival_stage(
    inputs: dict, outputs: dict, settings: dict, task_settings: dict, task: str, seed: int = 0
) -> None:
    """Rule ``evaluate_survival``: metrics tables and KM / td-AUC / calibration / DCA figures."""
    predictions = read_tsv(inputs["predictions"], dtype={"patient_id": str}, keep_default_na=True)
    predictions["region_set"] = predictions["region_set"].fillna("")
    scores = read_tsv(inputs["scores"], dtype={"patient_id": str})
    clinical = read_tsv(inputs["clinical"], dtype={"patient_id": str})
    result = survival_evaluation(predictions, scores, clinical, settings, task_settings, seed)
    for name in ("metrics", "c_comparisons", "km", "calibration", "decision_curve"):
        write_tsv(result[name], outputs[name])
    horizon = float(task_settings["horizon_months"])
    endpoint = (
        "Overall survival" if task_settings["time"].startswith("os") else "Disease-free survival"
    )
    metrics_table = result["metrics"]
    for cohort in settings["cohorts"]:
        rows = scores[scores["cohort"] == cohort].merge(
            result["outcome"], on=["patient_id", "cohort"]
        )
        if rows.empty:
            for kind in ("km", "td_auc", "calibration", "dca"):
                no_patients_figure(
                    _figure(outputs, kind, cohort), f"no patients in the {cohort} cohort"
                )
            continue
        plots.kaplan_meier_plot(
            rows["time"],
            rows["event"],
            rows["group"],
            _figure(outputs, "km", cohort),
            settings["km_at_risk_months"],
            endpoint=endpoint,
            title=f"{task}: radscore groups, {cohort} cohort",
        )
        td = metrics_table[
            (metrics_table["cohort"] == cohort) & metrics_table["metric"].str.startswith("td_auc_")
        ]
        td = td.assign(horizon=td["metric"].str.removeprefix("td_auc_").astype(float)).rename(
            columns={"value": "auc"}
        )
        if td["auc"].notna().any():
            plots.td_auc_plot(
                td,
                _figure(outputs, "td_auc", cohort),
                title=f"{task}: time-dependent AUC, {cohort} cohort",
            )
        else:
            no_patients_figure(
                _figure(outputs, "td_auc", cohort),
                f"td-AUC undefined in the {cohort} cohort (follow-up)",
            )
        calibration = result["calibration"]
        tables = {
            model: table
            for model, table in (
                calibration[calibration["cohort"] == cohort].groupby("model")
                if len(calibration)
                else []
            )
        }
        if tables:
            plots.calibration_plot(
                tables,
                _figure(outputs, "calibration", cohort),
                quantity=f"{horizon:g}-month survival",
                title=f"{task}: calibration, {cohort}",
            )
        else:
            no_patients_figure(_figure(outputs, "calibration", cohort), "calibration undefined")
        curves = result["decision_curve"]
        tables = {
            model: table.drop(columns="model").rename(columns={"net_benefit": "model"})
            for model, table in (
                curves[curves["cohort"] == cohort].groupby("model") if len(curves) else []
            )
        }
        if tables:
            plots.decision_curve_plot(
                tables,
                _figure(outputs, "dca", cohort),
                title=f"{task}: decision curve at {horizon:g} months, {cohort}",
            )
        else:
            no_patients_figure(_figure(outputs, "dca", cohort), "decision curve undefined")


def truth_comparison(
    scores: pd.DataFrame,
    clinical: pd.DataFrame,
    truth: pd.DataFrame,
    task_settings: dict,
    n_boot: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Per cohort: Harrell C of the radscore vs of the planted truth risk on the same patients,
    with the paired bootstrap difference, and Spearman rho between the two scores."""
    from scipy.stats import spearmanr

    time_col, event_col = task_settings["time"], task_settings["event"]
    truth_col = "risk" if "risk" in truth else "z"
    data = scores.merge(clinical[["patient_id", time_col, event_col]], on="patient_id").merge(
        truth[["patient_id", truth_col]].rename(columns={truth_col: "truth"}), on="patient_id"
    )
    data = data.dropna(subset=[time_col, event_col])
    rows = []
    for cohort, part in data.groupby("cohort", sort=False):
        if len(part) < 3 or not part[event_col].any():
            continue
        comparison = survival.compare_c_bootstrap(
            part[time_col], part[event_col], part["score"], part["truth"], n_boot, seed
        )
        rows.append(
            {
                "cohort": cohort,
                "n": len(part),
                "events": int(part[event_col].sum()),
                "truth_column": truth_col,
                "c_radscore": comparison["c_a"],
                "c_truth": comparison["c_b"],
                "difference": comparison["difference"],
                "ci_low": comparison["ci_low"],
                "ci_high": comparison["ci_high"],
                "p": comparison["p"],
                "spearman_rho": float(spearmanr(part["score"], part["truth"]).statistic),
            }
        )
    return pd.DataFrame(rows)


def truth_stage(inputs: dict, outputs: dict, settings: dict, task_settings: dict, seed: int = 0):
    """Rule ``radscore_truth`` (synthetic runs): writes truth_comparison.tsv."""
    table = truth_comparison(
        read_tsv(inputs["scores"], dtype={"patient_id": str}),
        read_tsv(inputs["clinical"], dtype={"patient_id": str}),
        read_tsv(inputs["truth"], dtype={"patient_id": str}),
        task_settings,
        int(settings["bootstrap"]),
        seed,
    )
    write_tsv(table, outputs["table"])


# --------------------------------------------------------------------------- binary
def binary_evaluation(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    cutoffs: pd.DataFrame,
    settings: dict,
    reference: dict,
    seed: int = 0,
) -> dict:
    """Tables: metrics (contract columns; model = '{region_set}:{model}') and delong tests of
    every model against the reference model, per cohort."""
    data = _with_outcome(predictions, labels)
    data["name"] = data["region_set"] + ":" + data["model"]
    cutoff = {f"{r.region_set}:{r.model}": r.cutoff for r in cutoffs.itertuples(index=False)}
    reference_name = f"{reference['region_set']}:{reference['model']}"
    n_boot = int(settings["bootstrap"])
    rows, tests = [], []
    for cohort in settings["cohorts"]:
        part = data[data["cohort"] == cohort]
        if part.empty or part["label"].nunique() < 2:
            continue
        for name, rows_m in part.groupby("name", sort=False):
            rows += metrics.metrics_rows(
                name, cohort, rows_m["label"], rows_m["prediction"], cutoff[name], n_boot, seed
            )
        wide = part.pivot(index="patient_id", columns="name", values="prediction")
        y = labels.set_index("patient_id").loc[wide.index, "label"]
        if reference_name not in wide:
            continue
        for name in wide.columns:
            if name == reference_name:
                continue
            test = metrics.delong_test(y, wide[reference_name], wide[name])
            tests.append({"cohort": cohort, "model_a": reference_name, "model_b": name, **test})
    return {
        "metrics": pd.DataFrame(rows, columns=METRIC_COLUMNS),
        "delong": pd.DataFrame(tests),
        "data": data,
    }


def radscore_km(inputs: dict, outputs: dict, settings: dict, task_settings: dict, task: str):
    """KM figure per cohort and km_logrank.tsv for the radscore groups of a binary task."""
    endpoint = task_settings["km_endpoint"]
    clinical = read_tsv(inputs["clinical"], dtype={"patient_id": str})
    outcome = clinical[["patient_id", "cohort", endpoint["time"], endpoint["event"]]].dropna()
    outcome = outcome.rename(columns={endpoint["time"]: "time", endpoint["event"]: "event"})
    scores = read_tsv(inputs["scores"], dtype={"patient_id": str})
    summaries = []
    for cohort in settings["cohorts"]:
        rows = scores[scores["cohort"] == cohort].merge(outcome, on=["patient_id", "cohort"])
        if rows.empty:
            no_patients_figure(
                _figure(outputs, "km", cohort), f"no patients in the {cohort} cohort"
            )
            continue
        summaries.append(_km_summary(rows, cohort))
        plots.kaplan_meier_plot(
            rows["time"],
            rows["event"],
            rows["group"],
            _figure(outputs, "km", cohort),
            settings["km_at_risk_months"],
            endpoint=endpoint["time"],
            title=f"{task}: radscore groups, {cohort} cohort",
        )
    write_tsv(pd.DataFrame(summaries), outputs["km"])


def evaluate_binary_stage(
    inputs: dict, outputs: dict, settings: dict, task_settings: dict, task: str, seed: int = 0
) -> None:
    """Rule ``evaluate_binary``: metrics, DeLong tests, ROC / confusion / calibration / DCA, and
    KM curves of the radscore groups on the task's ``km_endpoint`` (S2: OS by Radscore group)."""
    radscore_km(inputs, outputs, settings, task_settings, task)
    predictions = read_tsv(inputs["predictions"], dtype={"patient_id": str})
    labels = read_tsv(inputs["labels"], dtype={"patient_id": str})
    cutoffs = read_tsv(inputs["cutoffs"])
    reference = task_settings["reference"]
    result = binary_evaluation(predictions, labels, cutoffs, settings, reference, seed)
    write_tsv(result["metrics"], outputs["metrics"])
    write_tsv(result["delong"], outputs["delong"])
    data = result["data"]
    # figures show the reference classifier of every region set, and the radscore
    shown = data[(data["model"] == reference["model"]) | (data["model"] == "radscore")]
    reference_name = f"{reference['region_set']}:{reference['model']}"
    cutoff = cutoffs.set_index(["region_set", "model"])["cutoff"]
    thresholds = dca_thresholds(settings["dca_thresholds"])
    classes = (f"not {task_settings['positive']}", str(task_settings["positive"]))
    for cohort in settings["cohorts"]:
        part = shown[shown["cohort"] == cohort]
        if part.empty or part["label"].nunique() < 2:
            message = f"{cohort} cohort: no patients or a single class"
            for kind in ("roc", "confusion", "calibration", "dca"):
                no_patients_figure(_figure(outputs, kind, cohort), message)
            continue
        groups = dict(tuple(part.groupby("name", sort=False)))
        plots.roc_plot(
            {name: (g["label"], g["prediction"]) for name, g in groups.items()},
            _figure(outputs, "roc", cohort),
            title=f"{task}: ROC, {cohort} cohort",
        )
        ref = groups.get(reference_name, next(iter(groups.values())))
        ref_cutoff = cutoff[(ref["region_set"].iloc[0], ref["model"].iloc[0])]
        plots.confusion_matrix_plot(
            metrics.confusion_matrix(ref["label"], ref["prediction"], ref_cutoff),
            _figure(outputs, "confusion", cohort),
            class_names=classes,
            title=f"{task}: {ref['name'].iloc[0]}, {cohort} (cutoff {ref_cutoff:.3g})",
        )
        plots.calibration_plot(
            {
                name: metrics.calibration_curve(
                    g["label"], g["prediction"], settings["calibration_bins"]
                )
                for name, g in groups.items()
            },
            _figure(outputs, "calibration", cohort),
            title=f"{task}: calibration, {cohort}",
        )
        plots.decision_curve_plot(
            {
                name: metrics.net_benefit(g["label"], g["prediction"], thresholds)
                for name, g in groups.items()
            },
            _figure(outputs, "dca", cohort),
            title=f"{task}: decision curve, {cohort}",
        )
