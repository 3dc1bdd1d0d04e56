"""Evaluation of the frozen pathomics score (S3) beyond the binary-task metrics.

The binary metrics, DeLong tests, ROC / confusion / calibration / decision curves and KM by
the median training score come from :func:`radiogenomics.evaluation.stages.evaluate_binary_stage`;
here: FPR and FNR rows, KM and hazard ratios of the score groups in clinical subgroups
(T1-2 / T3-4, grade I-II / III-IV, necrosis), Harrell's C of the score against T stage, grade,
necrosis, UISS and SSIGN, and the correlation of the score with grade, T and diameter. The
Karakiewicz nomogram, the sixth comparator S3 names, is not computed
(:func:`radiogenomics.models.comparators.karakiewicz_gap` logs why).
"""

from __future__ import annotations

import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lifelines.exceptions import ConvergenceError  # noqa: E402
from scipy import stats  # noqa: E402

from radiogenomics.models import comparators as clinical_scores  # noqa: E402
from radiogenomics.evaluation import figures as plots, survival  # noqa: E402
from radiogenomics.core.figure_writer import save_png_svg  # noqa: E402
from radiogenomics.core.labels import endpoint_name  # noqa: E402

log = logging.getLogger(__name__)

SUBGROUPS = {
    "all patients": lambda t: np.ones(len(t), bool),
    "T1-2": lambda t: t["t_number"] <= 2,
    "T3-4": lambda t: t["t_number"] >= 3,
    "grade I-II": lambda t: t["grade"] <= 2,
    "grade III-IV": lambda t: t["grade"] >= 3,
    "no necrosis": lambda t: t["necrosis"] == 0,
    "necrosis": lambda t: t["necrosis"] == 1,
}


def error_rate_rows(metrics_table: pd.DataFrame) -> pd.DataFrame:
    """FPR = 1 - specificity and FNR = 1 - recall, with their intervals mirrored."""
    rows = []
    for source, name in (("specificity", "fpr"), ("recall", "fnr")):
        part = metrics_table[metrics_table["metric"] == source]
        rows.append(
            part.assign(
                metric=name,
                value=1 - part["value"],
                ci_low=1 - part["ci_high"],
                ci_high=1 - part["ci_low"],
            )
        )
    return pd.concat(rows, ignore_index=True)


def with_clinical(scores: pd.DataFrame, clinical: pd.DataFrame, time: str, event: str):
    """Scores joined to the endpoint and the subgroup variables (T as a number 1-4)."""
    table = scores.merge(
        clinical.drop(columns=["cohort"]), on="patient_id", how="inner", validate="1:1"
    )
    table["t_number"] = table["t_stage"].map(
        lambda v: clinical_scores.parse_t(v)[0] if isinstance(v, str) and v else np.nan
    )
    table["grade"] = pd.to_numeric(table["grade"])
    table["necrosis"] = pd.to_numeric(table["necrosis"])
    return table.rename(columns={time: "time", event: "event"}).dropna(subset=["time", "event"])


def group_hazard(rows: pd.DataFrame) -> dict:
    """Log-rank p and univariate Cox HR, high vs low score group."""
    out = {
        "n": len(rows),
        "events": int(rows["event"].sum()),
        "n_high": int((rows["group"] == "high").sum()),
        "logrank_p": np.nan,
        "hr": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p": np.nan,
    }
    if rows["group"].nunique() < 2 or not rows["event"].any():
        return out
    out["logrank_p"] = survival.logrank_p(rows["time"], rows["event"], rows["group"])
    frame = pd.DataFrame(
        {
            "high": (rows["group"] == "high").astype(float).to_numpy(),
            "time": rows["time"].to_numpy(float),
            "event": rows["event"].to_numpy(float),
        }
    )
    try:
        hr = survival.cox_univariate(frame, "time", "event", ["high"]).iloc[0]
        out.update(hr=hr["hr"], ci_low=hr["ci_low"], ci_high=hr["ci_high"], p=hr["p"])
    except ConvergenceError as error:  # e.g. no event in one group
        log.warning("hazard ratio not estimable: %s", error)
    return out


def subgroup_table(table: pd.DataFrame, cohorts) -> pd.DataFrame:
    rows = []
    for cohort in cohorts:
        part = table[table["cohort"] == cohort]
        for name, select in SUBGROUPS.items():
            rows.append({"cohort": cohort, "subgroup": name, **group_hazard(part[select(part)])})
    return pd.DataFrame(rows)


def subgroup_km_figure(table: pd.DataFrame, cohort: str, stem, endpoint: str) -> None:
    """KM of the score groups in every subgroup of one cohort, one panel each."""
    part = table[table["cohort"] == cohort]
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.5), sharey=True)
    for ax, (name, select) in zip(axes.ravel(), SUBGROUPS.items(), strict=False):
        rows = part[select(part)]
        for group, colour in (("low", "tab:blue"), ("high", "tab:red")):
            members = rows[rows["group"] == group]
            if members.empty:
                continue
            km = survival.kaplan_meier(members["time"], members["event"])
            ax.step(
                km["time"],
                km["survival"],
                where="post",
                color=colour,
                label=f"{group} (n={len(members)})",
            )
        summary = group_hazard(rows)
        p = summary["logrank_p"]
        ax.set_title(f"{name}\nlog-rank p {p:.3g}" if np.isfinite(p) else name, fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7, loc="lower left")
    axes.ravel()[-1].axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("months")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{endpoint_name(endpoint)} probability")
    fig.suptitle(f"Pathomics score groups (median training score), {cohort} cohort")
    save_png_svg(fig, stem)


def forest_figure(subgroups: pd.DataFrame, cohort: str, stem) -> None:
    rows = subgroups[(subgroups["cohort"] == cohort) & np.isfinite(subgroups["hr"])]
    if rows.empty:
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{cohort}: no estimable hazard ratio", ha="center")
        save_png_svg(fig, stem)
        return
    table = rows.assign(variable=rows["subgroup"] + " (n=" + rows["n"].astype(str) + ")")
    plots.forest_plot(
        table.reset_index(drop=True),
        stem,
        title=f"Pathomics high vs low score: hazard ratios by subgroup, {cohort}",
    )


def concordance_table(
    table: pd.DataFrame,
    comparators: pd.DataFrame,
    risks: list[str],
    cohorts,
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """Harrell's C (bootstrap CI) of the score(s) and of T stage, grade, necrosis, UISS, SSIGN."""
    data = table.merge(comparators, on="patient_id", how="left")
    markers = {
        **{r: r for r in risks},
        "t_stage": "t_number",
        "grade": "grade",
        "necrosis": "necrosis",
    }
    markers.update({name: name for name in ("ssign", "uiss") if name in data})
    rows = []
    for cohort in cohorts:
        part = data[data["cohort"] == cohort]
        if part.empty or not part["event"].any():
            continue
        for name, column in markers.items():
            usable = part[np.isfinite(part[column].astype(float))]
            c = survival.harrell_c_ci(
                usable["time"], usable["event"], usable[column].astype(float), n_boot, seed
            )
            rows.append({"cohort": cohort, "marker": name, "n": len(usable), **c})
    return pd.DataFrame(rows, columns=["cohort", "marker", "n", "value", "ci_low", "ci_high"])


def correlation_table(table: pd.DataFrame, cohorts) -> pd.DataFrame:
    """Spearman correlation of the score with grade, T stage (1-4) and diameter (size_cm)."""
    rows = []
    for cohort in [*cohorts, "all"]:
        part = table if cohort == "all" else table[table["cohort"] == cohort]
        for variable in ("grade", "t_number", "size_cm"):
            if len(part) < 3 or part[variable].nunique() < 2:
                continue
            rho, p = stats.spearmanr(part["score"], part[variable].astype(float))
            rows.append(
                {"cohort": cohort, "variable": variable, "n": len(part), "rho": rho, "p": p}
            )
    return pd.DataFrame(rows, columns=["cohort", "variable", "n", "rho", "p"])


def correlation_figure(table: pd.DataFrame, stem) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
    for ax, (variable, label) in zip(
        axes, (("grade", "WHO/ISUP grade"), ("t_number", "T stage")), strict=False
    ):
        levels = sorted(table[variable].dropna().unique())
        ax.boxplot([table.loc[table[variable] == v, "score"] for v in levels], showfliers=False)
        ax.set_xticks(range(1, len(levels) + 1), [f"{int(v)}" for v in levels])
        rho, p = stats.spearmanr(table["score"], table[variable])
        ax.set_title(f"{label}: Spearman rho {rho:.2f} (p {p:.2g})", fontsize=9)
        ax.set_xlabel(label)
    rho, p = stats.spearmanr(table["score"], table["size_cm"])
    for cohort, part in table.groupby("cohort"):
        axes[2].scatter(part["size_cm"], part["score"], s=10, label=cohort)
    axes[2].set_title(f"diameter: Spearman rho {rho:.2f} (p {p:.2g})", fontsize=9)
    axes[2].set_xlabel("tumour diameter (cm)")
    axes[2].legend(fontsize=7)
    axes[0].set_ylabel("pathomics score (logit)")
    save_png_svg(fig, stem)
