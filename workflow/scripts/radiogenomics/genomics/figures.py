"""Radiogenomics figures (matplotlib Agg). Each function returns a Figure; the pipeline writes
it with :func:`radiogenomics.core.figure_writer.save_png_svg` (PNG + SVG, identical bytes on rerun)."""

from __future__ import annotations


import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lifelines import KaplanMeierFitter  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from radiogenomics.genomics.compare import median_split_survival  # noqa: E402
from radiogenomics.core.labels import endpoint_name, label  # noqa: E402

GROUP_COLOURS = {"high": "#c0392b", "low": "#2c7fb8"}


def _group_colour(group: str) -> str:
    return GROUP_COLOURS.get(str(group), "#7f7f7f")


def volcano(deg_table: pd.DataFrame, padj_max: float = 0.05, abs_log2fc_min: float = 1.0, n_labels: int = 10):
    table = deg_table.dropna(subset=["padj"])
    fig, ax = plt.subplots(figsize=(5, 4.5))
    y = -np.log10(table["padj"].clip(lower=1e-300))
    colours = table["direction"].map({"up": "#c0392b", "down": "#2c7fb8"}).fillna("#bdbdbd")
    ax.scatter(table["log2FoldChange"], y, c=colours, s=6, linewidths=0)
    ax.axhline(-np.log10(padj_max), ls="--", lw=0.8, c="k")
    for x in (-abs_log2fc_min, abs_log2fc_min):
        ax.axvline(x, ls="--", lw=0.8, c="k")
    # labels of genes with near-equal p would overlap: each is stacked 7 points above the last
    labelled = table[table["direction"] != "ns"].head(n_labels)
    for k, (_, row) in enumerate(labelled.sort_values("log2FoldChange").iterrows()):
        ax.annotate(row["gene"], (row["log2FoldChange"], -np.log10(max(row["padj"], 1e-300))), fontsize=6,
                    xytext=(3, 2 + 7 * (k % 4)), textcoords="offset points",
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.4"})
    n_up, n_down = (table["direction"] == "up").sum(), (table["direction"] == "down").sum()
    ax.set(xlabel="log2 fold change (high vs low)", ylabel="-log10 adjusted p",
           title=f"DEGs: {n_up} up, {n_down} down")
    return fig


def pca_on_degs(log_expression: pd.DataFrame, genes: list[str], groups: pd.Series):
    """Samples on the first two principal components of the standardised DEG expression."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    patients = [p for p in log_expression.columns if p in groups.index]
    data = log_expression.loc[genes, patients].T.to_numpy(float)
    sd = data.std(axis=0)
    data = (data - data.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    if data.shape[1] >= 2:
        pca = PCA(n_components=2, svd_solver="full").fit(data)
        coords = pca.transform(data)
        for group in sorted(groups.loc[patients].astype(str).unique()):
            mask = (groups.loc[patients].astype(str) == group).to_numpy()
            ax.scatter(coords[mask, 0], coords[mask, 1], s=14, c=_group_colour(group), label=group)
        ax.set(xlabel=f"PC1 ({pca.explained_variance_ratio_[0]:.0%})",
               ylabel=f"PC2 ({pca.explained_variance_ratio_[1]:.0%})")
        ax.legend(title="score group")
    ax.set_title(f"PCA on {len(genes)} DEGs")
    return fig


def top_deg_heatmap(log_expression: pd.DataFrame, deg_table: pd.DataFrame, groups: pd.Series, n_genes: int = 50):
    top = deg_table[deg_table["direction"] != "ns"].head(n_genes)
    top = top.sort_values("log2FoldChange", ascending=False, kind="mergesort")["gene"].tolist()
    patients = sorted([p for p in log_expression.columns if p in groups.index],
                      key=lambda p: (str(groups[p]) != "high", p))
    data = log_expression.loc[top, patients].to_numpy(float)
    sd = data.std(axis=1, keepdims=True)
    z = (data - data.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
    fig, (bar, ax) = plt.subplots(2, 1, figsize=(7, 1.5 + 0.12 * max(len(top), 1)),
                                  gridspec_kw={"height_ratios": [0.4, max(len(top), 1)]}, sharex=True)
    bar.imshow([[0 if str(groups[p]) == "high" else 1 for p in patients]], aspect="auto",
               cmap=matplotlib.colors.ListedColormap([GROUP_COLOURS["high"], GROUP_COLOURS["low"]]), vmin=0, vmax=1)
    bar.set_yticks([0], ["group"])
    image = ax.imshow(np.clip(z, -3, 3), aspect="auto", cmap="RdBu_r", vmin=-3, vmax=3, interpolation="nearest")
    ax.set_yticks(range(len(top)), top, fontsize=5)
    ax.set_xticks([])
    ax.set_xlabel("patients (high | low)")
    fig.colorbar(image, ax=ax, label="z-score", shrink=0.6)
    return fig


def enrichment_dotplot(enrichment: pd.DataFrame, n_terms: int = 10, method: str = "ora", direction: str = "all"):
    """Top terms per library by adjusted p; dot size = overlapping genes, colour = -log10 padj."""
    subset = enrichment[(enrichment["method"] == method) & (enrichment["direction"] == direction)]
    subset = subset.sort_values(["library", "padj", "pvalue", "term"], kind="mergesort").groupby("library").head(n_terms)
    fig, ax = plt.subplots(figsize=(7, 1 + 0.25 * max(len(subset), 1)))
    if not subset.empty:
        counts = subset["genes"].fillna("").map(lambda g: len([x for x in g.split(";") if x]))
        labels = subset["library"].map(label) + ": " + subset["term"].astype(str).str.slice(0, 60)
        y = np.arange(len(subset))[::-1]
        score = -np.log10(subset["padj"].astype(float).clip(lower=1e-300))
        points = ax.scatter(score, y, s=20 + 8 * counts, c=score, cmap="viridis")
        ax.set_yticks(y, labels, fontsize=6)
        fig.colorbar(points, ax=ax, label="-log10 adjusted p")
    ax.set(xlabel="-log10 adjusted p", title=f"Enrichment ({method}, {direction})")
    return fig


def soft_threshold_plot(soft_power_table: pd.DataFrame, power: int, r2_threshold: float = 0.8):
    fig, (fit, conn) = plt.subplots(1, 2, figsize=(9, 4))
    fit.plot(soft_power_table["power"], soft_power_table["sft_r2"], "o-", ms=3)
    fit.axhline(r2_threshold, c="r", lw=0.8)
    fit.axvline(power, c="k", ls="--", lw=0.8)
    fit.set(xlabel="soft threshold power", ylabel="scale-free fit (signed R^2)", title=f"chosen power {power}")
    conn.plot(soft_power_table["power"], soft_power_table["mean_k"], "o-", ms=3)
    conn.set(xlabel="soft threshold power", ylabel="mean connectivity", yscale="log")
    return fig


def module_trait_heatmap(module_trait: pd.DataFrame):
    r = module_trait.pivot(index="module", columns="trait", values="r")
    p = module_trait.pivot(index="module", columns="trait", values="pvalue").loc[r.index, r.columns]
    fig, ax = plt.subplots(figsize=(1.5 + 1.1 * r.shape[1], 1 + 0.45 * r.shape[0]))
    image = ax.imshow(r.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for i in range(r.shape[0]):
        for j in range(r.shape[1]):
            ax.text(j, i, f"{r.iat[i, j]:.2f}\n({p.iat[i, j]:.1e})", ha="center", va="center", fontsize=6)
    ax.set_xticks(range(r.shape[1]), r.columns, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(r.shape[0]), [f"ME{m}" for m in r.index], fontsize=7)
    fig.colorbar(image, ax=ax, label="Pearson r")
    ax.set_title("Module-trait relationships")
    return fig


def stacked_fractions(fractions: pd.DataFrame, groups: pd.Series):
    """One bar per patient (rows of ``fractions`` = patients, columns = cell types), by group."""
    patients = sorted([p for p in fractions.index if p in groups.index],
                      key=lambda p: (str(groups[p]) != "high", p))
    data = fractions.loc[patients]
    fig, ax = plt.subplots(figsize=(max(6, 0.08 * len(patients)), 4))
    bottom = np.zeros(len(patients))
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(data.shape[1], 2)))
    for colour, cell in zip(colours, data.columns):
        ax.bar(range(len(patients)), data[cell].to_numpy(), bottom=bottom, width=1.0, color=colour, label=cell)
        bottom += data[cell].to_numpy()
    n_high = sum(str(groups[p]) == "high" for p in patients)
    ax.axvline(n_high - 0.5, c="k", lw=1)
    ax.set(xlim=(-0.5, len(patients) - 0.5), ylim=(0, 1), xticks=[], ylabel="estimated fraction",
           xlabel=f"patients (high n={n_high} | low n={len(patients) - n_high})")
    ax.legend(fontsize=6, bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


def group_boxplots(values: pd.DataFrame, groups: pd.Series, comparison: pd.DataFrame, title: str = ""):
    """Box plots high vs low per variable, annotated with Mann-Whitney BH-adjusted p."""
    groups = groups.loc[values.index].astype(str)
    padj = comparison.set_index("variable")["padj"] if not comparison.empty else pd.Series(dtype=float)
    columns = list(values.columns)
    fig, ax = plt.subplots(figsize=(max(4, 0.7 * len(columns)), 4))
    for offset, group in ((-0.18, "high"), (0.18, "low")):
        data = [values.loc[groups == group, c].dropna().to_numpy(float) for c in columns]
        parts = ax.boxplot(data, positions=np.arange(len(columns)) + offset, widths=0.3, patch_artist=True,
                           showfliers=False)
        for box in parts["boxes"]:
            box.set_facecolor(_group_colour(group))
    top = np.nanmax(values.to_numpy(float)) if values.size else 1.0
    for i, column in enumerate(columns):
        if column in padj.index:
            ax.text(i, top, f"q={padj[column]:.2g}", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(range(len(columns)), [label(c) for c in columns], rotation=45, ha="right", fontsize=7)
    ax.set_title(title)
    ax.legend([plt.Rectangle((0, 0), 1, 1, fc=_group_colour(g)) for g in ("high", "low")], ["high", "low"], fontsize=7)
    return fig


def km_top_genes(expression: pd.DataFrame, survival: pd.DataFrame, genes: list[str],
                 time: str = "os_months", event: str = "os_event"):
    """Kaplan-Meier curves by median split for each gene, with log-rank p (up to 10 genes)."""
    genes = list(genes)[:10]
    tests = median_split_survival(expression, survival, genes, time, event)
    tests = tests.set_index("gene") if not tests.empty else tests
    n_cols = 5
    n_rows = max(1, int(np.ceil(len(genes) / n_cols)))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3 * n_cols, 2.6 * n_rows), squeeze=False)
    patients = [p for p in expression.columns if p in survival.index]
    for ax, gene in zip(axes.ravel(), genes):
        level = expression.loc[gene, patients].to_numpy(float)
        high = level > np.median(level)
        for mask, group, colour in ((high, "high", GROUP_COLOURS["high"]), (~high, "low", GROUP_COLOURS["low"])):
            if mask.any():
                KaplanMeierFitter().fit(survival.loc[patients, time].to_numpy(float)[mask],
                                        survival.loc[patients, event].to_numpy(int)[mask],
                                        label=f"{group} (n={mask.sum()})").plot_survival_function(
                    ax=ax, ci_show=False, color=colour)
        p = tests.loc[gene, "pvalue"] if gene in getattr(tests, "index", []) else np.nan
        ax.set(title=f"{gene} (log-rank p={p:.2g})", xlabel=label(time), ylabel=f"{endpoint_name(time)} probability")
        ax.legend(fontsize=6)
    for ax in axes.ravel()[len(genes):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def message(title: str, text: str):
    """A figure that says why there is nothing to plot (a rule declares its figures either way)."""
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    ax.set_title(title)
    return fig
