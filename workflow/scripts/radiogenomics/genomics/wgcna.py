"""Weighted gene co-expression network analysis (Langfelder & Horvath 2008) on numpy/scipy.

PyWGCNA is not used: it pulls in a large dependency stack, writes figures and caches as side
effects and its module detection is not reproducible run to run. The steps follow the WGCNA R
package: soft power by scale-free topology fit (``pickSoftThreshold``), signed or unsigned
adjacency, topological overlap (``TOMsimilarity``), average-linkage clustering of 1 - TOM,
WGCNA's dynamic hybrid tree cut (``cutreeDynamic(method = "hybrid")`` with ``deepSplit``,
``pamStage``, ``minClusterSize``, by the ``dynamicTreeCut`` Python port of the R package),
optional removal of genes whose module membership is below ``min_kme`` (``minKMEtoStay`` of
``blockwiseModules``; |kME| for unsigned networks, kME for signed), eigengenes (first principal
component), merging of modules whose eigengenes correlate above 1 - ``merge_cut_height``
(``mergeCloseModules``) and module-trait correlations (``corPvalueStudent``). Power, modules
and sizes are tested against WGCNA 1.72 on simulateDatExpr data (tests/reference/wgcna/).
"""

from __future__ import annotations

import contextlib
import io
import types
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from scipy.stats import pearsonr

GREY = "grey"
COLOURS = ["turquoise", "blue", "brown", "yellow", "green", "red", "black", "pink", "magenta",
           "purple", "greenyellow", "tan", "salmon", "cyan", "midnightblue", "lightcyan", "grey60",
           "lightgreen", "lightyellow", "royalblue", "darkred", "darkgreen", "darkturquoise",
           "darkgrey", "orange", "darkorange", "white", "skyblue", "saddlebrown", "steelblue"]


def correlation(expression: np.ndarray) -> np.ndarray:
    """Pearson correlation between the columns (genes) of a samples x genes matrix."""
    centred = expression - expression.mean(axis=0)
    norms = np.linalg.norm(centred, axis=0)
    norms[norms == 0] = np.inf
    scaled = centred / norms
    return np.clip(scaled.T @ scaled, -1.0, 1.0)


def adjacency(corr: np.ndarray, power: float, network_type: str = "signed") -> np.ndarray:
    """Unsigned |r|^power or signed ((1 + r) / 2)^power (WGCNA ``adjacency``)."""
    if network_type == "unsigned":
        return np.abs(corr) ** power
    if network_type == "signed":
        return ((1.0 + corr) / 2.0) ** power
    raise ValueError(f"network_type must be 'signed' or 'unsigned', not {network_type!r}")


def scale_free_fit(connectivity: np.ndarray, n_breaks: int = 10) -> tuple[float, float]:
    """WGCNA ``scaleFreeFitIndex``: R^2 and slope of log10 p(k) on log10 k over equal-width bins."""
    edges = np.linspace(connectivity.min(), connectivity.max(), n_breaks + 1)
    bins = np.clip(np.searchsorted(edges, connectivity, side="left") - 1, 0, n_breaks - 1)
    mids = (edges[:-1] + edges[1:]) / 2
    counts = np.bincount(bins, minlength=n_breaks)
    sums = np.bincount(bins, weights=connectivity, minlength=n_breaks)
    mean_k = np.where(counts > 0, sums / np.maximum(counts, 1), mids)
    mean_k = np.where(mean_k == 0, mids, mean_k)
    log_k = np.log10(mean_k)
    log_p = np.log10(counts / len(connectivity) + 1e-9)
    slope, intercept = np.polyfit(log_k, log_p, 1)
    residual = log_p - (slope * log_k + intercept)
    r2 = 1.0 - residual.var() / log_p.var() if log_p.var() > 0 else 0.0
    return float(r2), float(slope)


def pick_soft_power(expression: np.ndarray, powers=range(1, 21), network_type: str = "signed",
                    r2_threshold: float = 0.8) -> tuple[int, pd.DataFrame]:
    """Lowest power whose signed scale-free fit -sign(slope) R^2 reaches ``r2_threshold``.

    When none does, the power with the best fit is returned (WGCNA returns NA and leaves the
    choice to the user; the table records the fit so the choice can be audited).
    """
    corr = correlation(expression)
    rows = []
    for power in powers:
        adj = adjacency(corr, power, network_type)
        k = adj.sum(axis=0) - 1.0
        r2, slope = scale_free_fit(k)
        rows.append({"power": power, "sft_r2": -np.sign(slope) * r2, "slope": slope,
                     "mean_k": k.mean(), "median_k": np.median(k), "max_k": k.max()})
    table = pd.DataFrame(rows)
    passing = table[table["sft_r2"] >= r2_threshold]
    chosen = passing.iloc[0] if len(passing) else table.loc[table["sft_r2"].idxmax()]
    return int(chosen["power"]), table


def topological_overlap(adj: np.ndarray) -> np.ndarray:
    """TOM_ij = (sum_u a_iu a_uj + a_ij) / (min(k_i, k_j) + 1 - a_ij), u != i, j; TOM_ii = 1."""
    a = adj.copy()
    np.fill_diagonal(a, 0.0)
    shared = a @ a
    k = a.sum(axis=0)
    tom = (shared + a) / (np.minimum.outer(k, k) + 1.0 - a)
    np.fill_diagonal(tom, 1.0)
    return tom


def _dynamic_tree_cut_port():
    """dynamicTreeCut 0.1.1 calls ``np.in1d``, removed in numpy 2.4: its module gets a numpy
    namespace in which ``in1d`` is ``np.isin`` (same result for 1-d input)."""
    import dynamicTreeCut.dynamicTreeCut as port

    if not hasattr(port.np, "in1d"):
        compatible = types.ModuleType("numpy_with_in1d")
        compatible.__dict__.update(vars(np))
        compatible.in1d = np.isin
        port.np = compatible
    return port


def dynamic_tree_cut(tree_linkage: np.ndarray, dissimilarity: np.ndarray, min_module_size: int = 30,
                     deep_split: int = 2, pam_stage: bool = True, pam_respects_dendro: bool = True,
                     cut_height: float | None = None) -> np.ndarray:
    """``cutreeDynamic(method = "hybrid")``: labels 0 (grey), 1 = largest module, 2, ...

    ``dissimilarity`` is the square 1 - TOM matrix the tree was built from; ``cut_height`` None is
    cutreeDynamic's default (99 % of the range between the 5th percentile and the top join).
    """
    port = _dynamic_tree_cut_port()
    with contextlib.redirect_stdout(io.StringIO()):  # the port prints progress unconditionally
        result = port.cutreeHybrid(tree_linkage, dissimilarity, cutHeight=cut_height,
                                   minClusterSize=min_module_size, deepSplit=deep_split,
                                   pamStage=pam_stage, pamRespectsDendro=pam_respects_dendro, verbose=0)
    return np.asarray(result["labels"], dtype=int)


def eigengenes(expression: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """First principal component per module (unit variance, sign aligned with the module mean)."""
    standardised = (expression - expression.mean(axis=0)) / np.where(expression.std(axis=0) > 0,
                                                                     expression.std(axis=0), 1.0)
    result = {}
    for module in sorted(set(labels) - {0}):
        block = standardised[:, labels == module]
        # leading left singular vector of the block = top eigenvector of the samples x samples
        # Gram matrix (a small eigh instead of an SVD over every module gene)
        _, vectors = np.linalg.eigh(block @ block.T)
        component = vectors[:, -1]
        component = (component - component.mean()) / component.std()
        if np.corrcoef(component, block.mean(axis=1))[0, 1] < 0:
            component = -component
        result[module] = component
    return pd.DataFrame(result)


def _filter_by_kme(expression: np.ndarray, labels: np.ndarray, min_kme: float, min_module_size: int,
                   network_type: str) -> np.ndarray:
    labels = labels.copy()
    mes = eigengenes(expression, labels)
    for module in mes.columns:
        members = np.flatnonzero(labels == module)
        kme = correlation(np.c_[mes[module].to_numpy(), expression[:, members]])[0, 1:]
        if network_type == "unsigned":
            kme = np.abs(kme)
        labels[members[kme < min_kme]] = 0
        if (labels == module).sum() < min_module_size:
            labels[labels == module] = 0
    return labels


def merge_close_modules(expression: np.ndarray, labels: np.ndarray, merge_cut_height: float = 0.25) -> np.ndarray:
    """Merge modules whose eigengene dissimilarity 1 - r joins below ``merge_cut_height``
    (average linkage on eigengenes, repeated until stable, as WGCNA's mergeCloseModules)."""
    labels = labels.copy()
    while True:
        mes = eigengenes(expression, labels)
        if mes.shape[1] < 2:
            return labels
        dissimilarity = 1.0 - np.corrcoef(mes.to_numpy().T)
        np.fill_diagonal(dissimilarity, 0.0)
        groups = fcluster(linkage(squareform(np.clip(dissimilarity, 0, None), checks=False), "average"),
                          t=merge_cut_height, criterion="distance")
        if len(set(groups)) == mes.shape[1]:
            return labels
        target = {module: mes.columns[np.flatnonzero(groups == group)[0]]
                  for module, group in zip(mes.columns, groups)}
        labels = np.array([target.get(label, 0) for label in labels])


@dataclass
class WgcnaResult:
    power: int
    soft_power_table: pd.DataFrame
    modules: pd.DataFrame        # gene, module (colour; grey = unassigned)
    eigengenes: pd.DataFrame     # samples x module colours
    tree_linkage: np.ndarray


def run_wgcna(expression: pd.DataFrame, powers=range(1, 21), network_type: str = "signed",
              r2_threshold: float = 0.8, power: int | None = None, min_module_size: int = 30,
              deep_split: int = 2, pam_stage: bool = True, cut_height: float | None = None,
              min_kme: float | None = 0.3, merge_cut_height: float = 0.25,
              top_variable_genes: int | None = 5000) -> WgcnaResult:
    """Modules from a samples x genes matrix of log-scale expression (e.g. log2 normalised counts).

    ``top_variable_genes`` keeps the most variable genes first (ties broken by gene order).
    ``power`` skips the scale-free search when given (S2 used 5). ``min_kme`` None skips the
    kME filter (WGCNA's step-by-step path: cutreeDynamic then mergeCloseModules).
    """
    if top_variable_genes is not None and expression.shape[1] > top_variable_genes:
        variance = expression.var(axis=0).to_numpy()
        keep = np.sort(np.argsort(-variance, kind="stable")[:top_variable_genes])
        expression = expression.iloc[:, keep]
    values = expression.to_numpy(float)
    chosen, table = pick_soft_power(values, powers, network_type, r2_threshold)
    if power is not None:
        chosen = int(power)
    tom = topological_overlap(adjacency(correlation(values), chosen, network_type))
    dissimilarity = np.clip(1.0 - tom, 0.0, None)
    np.fill_diagonal(dissimilarity, 0.0)
    tree_linkage = linkage(squareform(dissimilarity, checks=False), "average")
    labels = dynamic_tree_cut(tree_linkage, dissimilarity, min_module_size, deep_split, pam_stage,
                              cut_height=cut_height)
    if min_kme is not None:
        labels = _filter_by_kme(values, labels, min_kme, min_module_size, network_type)
    labels = merge_close_modules(values, labels, merge_cut_height)
    # colours by decreasing size, ties by first gene, as WGCNA's labels2colors
    sizes = pd.Series(labels[labels > 0]).value_counts()
    order = sorted(sizes.index, key=lambda m: (-sizes[m], int(np.flatnonzero(labels == m)[0])))
    colour_of = {m: COLOURS[i] if i < len(COLOURS) else f"module{i + 1}" for i, m in enumerate(order)}
    colours = np.array([colour_of.get(label, GREY) for label in labels])
    modules = pd.DataFrame({"gene": expression.columns.astype(str), "module": colours})
    mes = eigengenes(values, np.array([order.index(label) + 1 if label > 0 else 0 for label in labels]))
    mes.columns = [colour_of[order[i - 1]] for i in mes.columns]
    mes.index = expression.index
    return WgcnaResult(chosen, table, modules, mes, tree_linkage)


def module_trait_correlation(eigengene_table: pd.DataFrame, traits: pd.DataFrame) -> pd.DataFrame:
    """Pearson r and two-sided p (Student t, as corPvalueStudent) for every module x trait."""
    traits = traits.loc[eigengene_table.index]
    rows = []
    for module in eigengene_table.columns:
        for trait in traits.columns:
            present = traits[trait].notna().to_numpy()
            r, p = pearsonr(eigengene_table[module].to_numpy()[present], traits[trait].to_numpy(float)[present])
            rows.append({"module": module, "trait": trait, "r": float(r), "pvalue": float(p)})
    return pd.DataFrame(rows)
