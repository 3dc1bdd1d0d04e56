"""Evaluation figures, one function per figure kind; each writes ``{stem}.png`` and ``{stem}.svg``.

Output is byte-identical across reruns: the PNG carries no software tag, the SVG no date, and
SVG element ids are hashed with a fixed salt instead of a random one.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from . import survival  # noqa: E402
from ..core.figure_writer import save_png_svg  # noqa: E402
from ..core.labels import endpoint_name, label  # noqa: E402

STYLE = {
    "svg.hashsalt": "radiogenomics",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
}


def _styled(plot):
    """Draw and save under the fixed style, so fonts and ids do not depend on user rcParams."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return plot(*args, **kwargs)

    return wrapper


@_styled
def kaplan_meier_plot(
    time,
    event,
    groups,
    stem,
    at_times: Sequence[float],
    time_unit: str = "months",
    endpoint: str = "Overall survival",
    title: str = "",
) -> list[Path]:
    """KM curves per group with 95% CI bands, censor marks, log-rank p and numbers at risk."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(bool)
    groups = np.asarray(groups)
    labels = sorted(pd.unique(groups), key=str)
    fig, (ax, table_ax) = plt.subplots(
        2, 1, figsize=(6.5, 5.2), gridspec_kw={"height_ratios": [4, 1.1]}, sharex=True
    )
    colors = plt.get_cmap("tab10").colors
    for k, label in enumerate(labels):
        members = groups == label
        km = survival.kaplan_meier(time[members], event[members])
        color = colors[k % len(colors)]
        ax.step(
            km["time"],
            km["survival"],
            where="post",
            color=color,
            label=f"{label} (n={members.sum()})",
        )
        ax.fill_between(
            km["time"],
            km["ci_low"],
            km["ci_high"],
            step="post",
            color=color,
            alpha=0.15,
            linewidth=0,
        )
        censored = time[members & ~event]
        ax.plot(
            censored,
            [survival.survival_at(km, t) for t in censored],
            "|",
            color=color,
            markersize=7,
        )
    if len(labels) > 1:
        p = survival.logrank_p(time, event, groups)
        ax.text(
            0.03,
            0.05,
            f"log-rank p {'< 0.001' if p < 0.001 else f'= {p:.3f}'}",
            transform=ax.transAxes,
        )
    ax.set_ylim(0, 1.02)
    ax.set_ylabel(f"{endpoint_name(endpoint)} probability")
    ax.legend(loc="upper right", frameon=False)
    if title:
        ax.set_title(title)
    at_risk = survival.numbers_at_risk(time, groups, at_times)
    for k, label in enumerate(labels):
        for t in at_times:
            table_ax.text(
                t,
                len(labels) - 1 - k,
                str(at_risk.loc[label, float(t)]),
                ha="center",
                va="center",
                color=colors[k % len(colors)],
            )
    table_ax.set_yticks(range(len(labels)), [str(lab) for lab in reversed(labels)])
    table_ax.set_ylim(-0.6, len(labels) - 0.4)
    table_ax.set_title("Number at risk", fontsize=9, loc="left")
    table_ax.tick_params(left=False)
    table_ax.spines["left"].set_visible(False)
    table_ax.set_xticks(list(at_times))
    table_ax.set_xlabel(f"Time ({time_unit})")
    return save_png_svg(fig, stem)


@_styled
def forest_plot(table: pd.DataFrame, stem, title: str = "Hazard ratios") -> list[Path]:
    """HR with 95% CI per variable on a log axis; table columns variable, hr, ci_low, ci_high, p."""
    n = len(table)
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * n + 1.4))
    y = np.arange(n)[::-1]
    ax.errorbar(
        table["hr"],
        y,
        xerr=[table["hr"] - table["ci_low"], table["ci_high"] - table["hr"]],
        fmt="s",
        color="black",
        ecolor="gray",
        capsize=3,
    )
    ax.axvline(1.0, color="gray", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_yticks(y, [label(v) for v in table["variable"]])
    ax.set_xlabel("Hazard ratio (95% CI, log scale)")
    labels = [
        f"{r.hr:.2f} ({r.ci_low:.2f}-{r.ci_high:.2f}), p {'< 0.001' if r.p < 0.001 else f'= {r.p:.3f}'}"
        for r in table.itertuples()
    ]
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(y, labels)
    right.tick_params(right=False)
    right.spines["right"].set_visible(False)
    ax.set_title(title)
    return save_png_svg(fig, stem)


@_styled
def roc_plot(curves: Mapping[str, tuple], stem, title: str = "ROC") -> list[Path]:
    """ROC curve per model from (y_true, y_score) pairs; AUC in the legend."""
    from .binary import roc_auc_delong

    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    for name, (y_true, y_score) in curves.items():
        fpr, tpr, _ = roc_curve(y_true, y_score)
        auc = roc_auc_delong(y_true, y_score)
        ax.plot(
            fpr,
            tpr,
            label=f"{label(name)}: AUC {auc['value']:.3f} ({auc['ci_low']:.3f}-{auc['ci_high']:.3f})",
        )
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1)
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("Sensitivity (true positive rate)")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    ax.set_title(title)
    return save_png_svg(fig, stem)


@_styled
def td_auc_plot(
    table: pd.DataFrame, stem, time_unit: str = "months", title: str = "Time-dependent AUC"
) -> list[Path]:
    """Grouped bars of td-AUC with 95% CI; table columns model, horizon, auc, ci_low, ci_high."""
    models = list(dict.fromkeys(table["model"]))
    horizons = sorted(pd.unique(table["horizon"]))
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(1.6 * len(horizons) + 3.0, 4.0))
    for k, model in enumerate(models):
        rows = table[table["model"] == model].set_index("horizon").reindex(horizons)
        x = np.arange(len(horizons)) + (k - (len(models) - 1) / 2) * width
        ax.bar(
            x,
            rows["auc"],
            width,
            label=label(model),
            yerr=[rows["auc"] - rows["ci_low"], rows["ci_high"] - rows["auc"]],
            capsize=3,
        )
    ax.axhline(0.5, color="gray", linestyle="--", linewidth=1)
    ax.set_xticks(np.arange(len(horizons)), [f"{h:g}" for h in horizons])
    ax.set_xlabel(f"Horizon ({time_unit})")
    ax.set_ylabel("Cumulative/dynamic AUC (95% CI)")
    ax.set_ylim(0, 1)
    # outside the axes: bars reach 1.0 at every horizon
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title)
    return save_png_svg(fig, stem)


@_styled
def calibration_plot(
    tables: Mapping[str, pd.DataFrame],
    stem,
    quantity: str = "probability",
    title: str = "Calibration",
) -> list[Path]:
    """Observed vs predicted per model; tables have predicted, observed (+ observed_low/high)."""
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    for name, table in tables.items():
        if {"observed_low", "observed_high"} <= set(table.columns):
            ax.errorbar(
                table["predicted"],
                table["observed"],
                capsize=3,
                marker="o",
                label=label(name),
                yerr=[
                    table["observed"] - table["observed_low"],
                    table["observed_high"] - table["observed"],
                ],
            )
        else:
            ax.plot(table["predicted"], table["observed"], marker="o", label=label(name))
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="ideal")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"Predicted {quantity}")
    ax.set_ylabel(f"Observed {quantity}")
    ax.set_aspect("equal")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    ax.set_title(title)
    return save_png_svg(fig, stem)


@_styled
def decision_curve_plot(
    tables: Mapping[str, pd.DataFrame], stem, title: str = "Decision curve"
) -> list[Path]:
    """Net benefit vs threshold per model, with treat-all and treat-none references."""
    fig, ax = plt.subplots(figsize=(6.0, 4.5))
    first = next(iter(tables.values()))
    for name, table in tables.items():
        ax.plot(table["threshold"], table["model"], label=label(name))
    ax.plot(first["threshold"], first["treat_all"], color="gray", label="treat all")
    ax.plot(
        first["threshold"], first["treat_none"], color="black", linestyle="--", label="treat none"
    )
    top = max(float(t["model"].max()) for t in tables.values())
    top = max(top, float(first["treat_all"].max()), 0.01)
    ax.set_ylim(-0.05 * top - 0.01, top * 1.15)
    ax.set_xlabel("Threshold probability")
    ax.set_ylabel("Net benefit")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(title)
    return save_png_svg(fig, stem)


@_styled
def confusion_matrix_plot(
    matrix: pd.DataFrame,
    stem,
    class_names: Sequence[str] = ("negative", "positive"),
    title: str = "Confusion matrix",
) -> list[Path]:
    """2 x 2 counts (rows actual, columns predicted) with counts and row percentages."""
    values = matrix.to_numpy()
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(values, cmap="Blues")
    row_totals = values.sum(axis=1, keepdims=True)
    for (i, j), count in np.ndenumerate(values):
        share = count / row_totals[i, 0] if row_totals[i, 0] else 0.0
        ax.text(
            j,
            i,
            f"{count}\n({share:.0%})",
            ha="center",
            va="center",
            color="white" if count > values.max() / 2 else "black",
        )
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("Actual class")
    ax.spines[:].set_visible(False)
    ax.set_title(title)
    return save_png_svg(fig, stem)


@_styled
def nomogram_plot(
    spec: dict, stem, time_unit: str = "months", title: str = "Cox nomogram"
) -> list[Path]:
    """Points scale, one axis per covariate, total points and predicted survival at the horizon.

    ``spec`` comes from :func:`radiogenomics.evaluation.survival.nomogram_spec`.
    """
    names = spec["covariates"]
    rows = (
        ["Points"]
        + names
        + ["Total points", f"{spec['horizon']:g}-{time_unit.rstrip('s')} survival"]
    )
    fig, ax = plt.subplots(figsize=(8.0, 0.6 * len(rows) + 1.0))
    y = {row: len(rows) - 1 - k for k, row in enumerate(rows)}

    def axis_line(row, positions, labels):
        ax.plot([min(positions), max(positions)], [y[row]] * 2, color="black", linewidth=1)
        for x, label in zip(positions, labels):
            ax.plot([x, x], [y[row], y[row] + 0.12], color="black", linewidth=1)
            ax.text(x, y[row] + 0.18, label, ha="center", va="bottom", fontsize=7)

    ticks = np.linspace(0, 100, 11)
    axis_line("Points", ticks, [f"{t:.0f}" for t in ticks])
    for name in names:
        low, high = spec["ranges"][name]
        values = np.linspace(low, high, 5) if high - low > 1 else np.array([low, high])
        points = [
            spec["coefficients"][name] * (v - spec["reference"][name]) * spec["points_per_unit_lp"]
            for v in values
        ]
        axis_line(name, points, [f"{v:.3g}" for v in values])
    total_max = sum(
        abs(spec["coefficients"][n] * (spec["ranges"][n][1] - spec["ranges"][n][0]))
        * spec["points_per_unit_lp"]
        for n in names
    )
    total_ticks = np.linspace(0, total_max, 9)
    scale = 100.0 / total_max
    axis_line("Total points", total_ticks * scale, [f"{t:.0f}" for t in total_ticks])
    probabilities = np.array([0.95, 0.9, 0.8, 0.7, 0.5, 0.3, 0.1, 0.05])
    # Invert S = S0 ** exp(lp) for total points: only probabilities reachable on the scale are drawn.
    survival_at_ticks = survival.nomogram_survival(spec, np.linspace(0, total_max, 400))
    reachable = [
        (p, np.interp(-p, -survival_at_ticks, np.linspace(0, total_max, 400)))
        for p in probabilities
        if survival_at_ticks.min() <= p <= survival_at_ticks.max()
    ]
    if reachable:
        axis_line(rows[-1], [t * scale for _, t in reachable], [f"{p:.2f}" for p, _ in reachable])
    ax.set_yticks([y[r] for r in rows], [label(r) for r in rows])
    ax.set_xticks([])
    ax.set_xlim(-5, 105)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.spines[:].set_visible(False)
    ax.tick_params(left=False)
    ax.set_title(title)
    return save_png_svg(fig, stem)


@_styled
def icc_distribution_plot(
    table: pd.DataFrame, stem, thresholds: Sequence[float] = (), title: str = "Feature robustness"
) -> list[Path]:
    """Histogram of ICC per feature group (radiomics by region, deep), selection thresholds
    as dashed lines; the legend gives each group's share of features above the first one."""
    region = "radiomics " + table["feature"].str.split("__").str[0]
    group = region.where(table["source"] == "radiomics", table["source"])
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    bins = np.linspace(-0.2, 1.0, 49)
    for name, values in table["icc"].groupby(group, sort=True):
        values = np.clip(values.to_numpy(dtype=float), bins[0], bins[-1])
        finite = values[np.isfinite(values)]
        share = f", {np.mean(finite > thresholds[0]):.0%} > {thresholds[0]:g}" if thresholds else ""
        ax.hist(finite, bins=bins, histtype="step", linewidth=1.4, label=f"{name} (n={len(values)}{share})")
    for threshold in thresholds:
        ax.axvline(threshold, color="gray", linestyle="--", linewidth=1)
    ax.set_xlabel("ICC (values below -0.2 shown at -0.2)")
    ax.set_ylabel("Number of features")
    ax.legend(frameon=False, fontsize=7, loc="upper left")
    ax.set_title(title)
    return save_png_svg(fig, stem)
