"""Differential expression with PyDESeq2 (or limma-voom, :mod:`radiogenomics.genomics.limma`).

The design is ``~ [pair_by +] covariates + factor``: ``pair_by`` (e.g. ``patient`` for
tumour/normal pairs, several samples per patient) and ``covariates`` (site, batch) are adjusted
for, and the Wald test is ``factor``'s ``test`` level against its ``reference`` level.

Departures from PyDESeq2 0.5.4, all towards DESeq2 (tested against R in
tests/test_genomics_deg_parity.py and tests/test_genomics_deseq2.py):

* DESeq2's own algorithms for the steps where PyDESeq2 has its own (the GLM fits' IRLS and optim
  fallback, the dispersion line search and grid, the trend fit, the MAP starting values, the
  0.5 floor on fitted means): :mod:`radiogenomics.genomics.deseq2`. With them every gene of the
  R references is within 2 % of DESeq2 (PyDESeq2's own: 96-98 %); ``algorithm="pydeseq2"``
  runs PyDESeq2 unchanged;
* apeGLM shrinkage runs on the counts the Wald test used: for genes whose Cook's outliers were
  replaced and refitted, the replaced counts. PyDESeq2 (and DESeq2's ``lfcShrink``, which reads
  ``counts(dds)``, the original counts) shrink those genes on the unreplaced counts, which can
  flip the sign of a significant gene's log2FC;
* a design that is not of full rank, or leaves no residual degrees of freedom, is refused with
  the columns at fault (PyDESeq2 warns and fails later in a linear solve).

BLAS runs with at most ``threads`` threads while PyDESeq2 fits (threadpoolctl): OpenBLAS left
multithreaded inside PyDESeq2's per-gene loops oversubscribes the cores and is many times slower.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from formulaic import model_matrix
from pydeseq2.dds import DeseqDataSet
from pydeseq2.default_inference import DefaultInference
from pydeseq2.ds import DeseqStats
from threadpoolctl import threadpool_limits

from radiogenomics.genomics import deseq2

DEG_COLUMNS = ["gene", "baseMean", "log2FoldChange", "lfcSE", "stat", "pvalue", "padj", "direction"]
ALGORITHMS = ("deseq2", "pydeseq2")


def _inference(algorithm: str, n_cpus: int):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, not {algorithm!r}")
    return deseq2.DESeq2Inference(n_cpus=n_cpus) if algorithm == "deseq2" else DefaultInference(n_cpus=n_cpus)


def design_formula(factor: str = "group", covariates: Sequence[str] = (), pair_by: str | None = None) -> str:
    """``~ pair_by + covariates + factor`` (the tested factor last, as DESeq2 recommends)."""
    terms = ([pair_by] if pair_by else []) + list(covariates) + [factor]
    return "~" + " + ".join(terms)


def design_metadata(metadata: pd.DataFrame, factor: str, test: str, reference: str,
                    covariates: Sequence[str] = (), pair_by: str | None = None) -> pd.DataFrame:
    """The design columns of ``metadata``: text columns as categoricals, ``reference`` first."""
    columns = ([pair_by] if pair_by else []) + list(covariates) + [factor]
    missing = [c for c in columns if c not in metadata.columns]
    if missing:
        raise KeyError(f"design columns {missing} are not in the sample metadata")
    design = metadata[columns].copy()
    for column in columns:
        if column == factor:
            design[column] = pd.Categorical(design[column].astype(str), categories=[reference, test])
        elif not pd.api.types.is_numeric_dtype(design[column]):
            design[column] = pd.Categorical(design[column].astype(str))
    if design[factor].isna().any():
        raise ValueError(f"{factor!r} has levels other than {reference!r} and {test!r}")
    return design


def check_design(metadata: pd.DataFrame, design: str, factor: str | None = None,
                 pair_by: str | None = None) -> None:
    """Refuse a design that DESeq2 (checkFullRank, estimateDispersionsGeneEst) or limma cannot
    fit: a model matrix not of full rank, or as many coefficients as samples. The message names
    the design, the columns at fault and the fix; with ``factor`` and ``pair_by`` it also names
    the ``pair_by`` groups whose samples all have one ``factor`` level."""
    matrix = model_matrix(design, metadata)
    x = matrix.to_numpy(float)
    n_samples, n_columns = x.shape
    _, singular, vt = np.linalg.svd(x)
    rank = int((singular > singular.max() * max(x.shape) * np.finfo(float).eps).sum())
    if rank < n_columns:
        empty = [c for c, column in zip(matrix.columns, x.T) if not column.any()]
        if empty:
            fault = (f"column(s) {empty} are all zero: levels or combinations of levels without any "
                     "sample")
            fix = "drop the unused levels, or the variable, from the design"
        else:
            null_space = vt[rank:]
            involved = np.abs(null_space).max(axis=0) > 1e-8
            fault = (f"columns {list(matrix.columns[involved])} are linear combinations of each other "
                     "(a covariate that duplicates another variable or the condition)")
            fix = "remove one of the variables involved, or merge levels so that they no longer coincide"
            if factor and pair_by:
                levels = metadata.groupby(pair_by, observed=True)[factor].nunique()
                unpaired = sorted(map(str, levels.index[levels < 2]))
                if unpaired:
                    fix += (f"; {pair_by} {unpaired} have samples of one {factor!r} level only and carry "
                            f"no within-{pair_by} contrast: drop their samples, or leave out the pairing")
        raise ValueError(f"design {design!r} is not of full rank ({rank} of {n_columns} model-matrix "
                         f"columns independent): {fault}. Fix: {fix}.")
    if n_samples == n_columns:
        raise ValueError(f"design {design!r} has as many coefficients as samples ({n_samples}): no "
                         "replicates to estimate the dispersion. Fix: use a design with fewer variables "
                         "or add samples.")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def fit_deseq2(counts: pd.DataFrame, metadata: pd.DataFrame, design: str = "~group",
               n_cpus: int = 1, threads: int | None = 1, algorithm: str = "deseq2") -> DeseqDataSet:
    """DESeq2 (Cook's replacement and refit on) of a genes x samples count matrix.

    ``metadata`` is indexed by sample and holds the design's columns (see :func:`design_metadata`).
    ``algorithm`` ``deseq2`` fits as DESeq2 does (:mod:`radiogenomics.genomics.deseq2`),
    ``pydeseq2`` as PyDESeq2 0.5.4 does. BLAS runs with at most ``threads`` threads (None: as
    many as BLAS chooses, for benchmarks). Raises ValueError for a design that cannot be fitted.
    """
    metadata = metadata.loc[counts.columns]
    check_design(metadata, design)
    dataset = deseq2.DESeq2DataSet if algorithm == "deseq2" else DeseqDataSet
    with threadpool_limits(limits=threads, user_api="blas"), _quiet():
        dds = dataset(counts=counts.T.astype(int), metadata=metadata, design=design, refit_cooks=True,
                      inference=_inference(algorithm, n_cpus), quiet=True)
        dds.deseq2()
    return dds


@contextlib.contextmanager
def tested_counts(dds: DeseqDataSet) -> Iterator[None]:
    """Within the block ``dds.X`` holds the outlier-replaced counts of the refitted genes (and
    zeros for genes that replacement emptied), i.e. the counts the Wald test's estimates came from."""
    if not dds.refit_cooks or not dds.var.get("replaced", pd.Series(False)).any():
        yield
        return
    original = dds.X.copy()
    try:
        refitted = dds.var_names[dds.var["refitted"].to_numpy(bool)]
        if len(refitted):
            dds.X[:, dds.var_names.get_indexer(refitted)] = dds.counts_to_refit[:, refitted].X
        emptied = dds.var_names.get_indexer(dds.new_all_zeroes_genes)
        dds.X[:, emptied] = 0
        yield
    finally:
        dds.X = original


def deseq2_table(dds: DeseqDataSet, factor: str, test: str, reference: str, alpha: float = 0.05,
                 shrink: bool = True, threads: int | None = 1) -> pd.DataFrame:
    """Wald test of ``factor`` ``test`` vs ``reference``: DESeq2's results() columns, index gene.

    With ``shrink`` the log2FoldChange / lfcSE are apeGLM posterior estimates computed on the
    tested counts (see :func:`tested_counts`); p-values stay the unshrunken Wald test's.
    """
    with threadpool_limits(limits=threads, user_api="blas"), _quiet():
        stats = DeseqStats(dds, contrast=[factor, test, reference], alpha=alpha,
                           inference=dds.inference, quiet=True)
        stats.summary()
        table = stats.results_df.copy()
        if shrink:
            coefficient = next(c for c in stats.LFC.columns if c.startswith(f"{factor}[") and test in c)
            with tested_counts(dds):
                stats.lfc_shrink(coeff=coefficient)
            table["log2FoldChange"] = stats.results_df["log2FoldChange"]
            table["lfcSE"] = stats.results_df["lfcSE"]
    table.index.name = "gene"
    return table


def differential_expression(counts: pd.DataFrame, metadata: pd.DataFrame, factor: str = "group",
                            test: str = "high", reference: str = "low", covariates: Sequence[str] = (),
                            pair_by: str | None = None, method: str = "deseq2", padj_max: float = 0.05,
                            abs_log2fc_min: float = 1.0, shrink: bool = True, n_cpus: int = 1,
                            threads: int | None = 1, dds: DeseqDataSet | None = None) -> pd.DataFrame:
    """``test`` vs ``reference`` of ``factor`` adjusted for ``pair_by`` and ``covariates``.

    ``method`` is ``deseq2`` (DESeq2 on PyDESeq2, see :func:`fit_deseq2`; apeGLM-shrunken
    log2FoldChange when ``shrink``) or
    ``limma_voom`` (voom + lmFit + eBayes; ``shrink`` does not apply). Returns the deg.tsv table
    sorted by padj with ``direction`` in {up, down, ns}. A DESeq2 model already fitted by
    :func:`fit_deseq2` on the same data and design may be passed as ``dds``.
    """
    design = design_metadata(metadata.loc[counts.columns], factor, test, reference, covariates, pair_by)
    formula = design_formula(factor, covariates, pair_by)
    check_design(design, formula, factor, pair_by)
    if method == "limma_voom":
        from radiogenomics.genomics import limma

        table = limma.voom_table(counts, design, formula, factor, test)
    elif method == "deseq2":
        if dds is None:
            dds = fit_deseq2(counts, design, formula, n_cpus=n_cpus, threads=threads)
        table = deseq2_table(dds, factor, test, reference, alpha=padj_max, shrink=shrink, threads=threads)
    else:
        raise ValueError(f"genomics.deg.method must be 'deseq2' or 'limma_voom', not {method!r}")
    return call_degs(table.reset_index(), padj_max=padj_max, abs_log2fc_min=abs_log2fc_min)


def call_degs(table: pd.DataFrame, padj_max: float = 0.05, abs_log2fc_min: float = 1.0) -> pd.DataFrame:
    """Label each gene up/down/ns by adjusted p-value and |log2 fold change| thresholds."""
    table = table.copy()
    significant = (table["padj"] < padj_max) & (table["log2FoldChange"].abs() > abs_log2fc_min)
    table["direction"] = np.where(significant, np.where(table["log2FoldChange"] > 0, "up", "down"), "ns")
    table = table.sort_values(["padj", "pvalue", "gene"], na_position="last", kind="mergesort")
    return table[DEG_COLUMNS].reset_index(drop=True)
