"""Differential expression between high and low imaging-score groups with PyDESeq2."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
from pydeseq2.dds import DeseqDataSet
from pydeseq2.default_inference import DefaultInference
from pydeseq2.ds import DeseqStats

DEG_COLUMNS = ["gene", "baseMean", "log2FoldChange", "lfcSE", "stat", "pvalue", "padj", "direction"]


def fit_deseq2(counts: pd.DataFrame, groups: pd.Series, high: str = "high", low: str = "low",
               n_cpus: int = 1) -> DeseqDataSet:
    """Fit DESeq2 (design ~group, reference level ``low``) on a genes x samples count matrix."""
    metadata = pd.DataFrame({"group": pd.Categorical(groups.loc[counts.columns].astype(str),
                                                     categories=[low, high])},
                            index=counts.columns)
    inference = DefaultInference(n_cpus=n_cpus)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        dds = DeseqDataSet(counts=counts.T.astype(int), metadata=metadata, design="~group",
                           refit_cooks=True, inference=inference, quiet=True)
        dds.deseq2()
    return dds


def differential_expression(counts: pd.DataFrame, groups: pd.Series, high: str = "high",
                            low: str = "low", padj_max: float = 0.05, abs_log2fc_min: float = 1.0,
                            shrink: bool = True, n_cpus: int = 1,
                            dds: DeseqDataSet | None = None) -> pd.DataFrame:
    """High vs low Wald test; ``log2FoldChange`` is apeGLM-shrunken when ``shrink`` is set.

    P-values always come from the unshrunken Wald test (as in DESeq2's lfcShrink). Returns the
    deg.tsv table sorted by padj, with ``direction`` in {up, down, ns}. A model already fitted
    by :func:`fit_deseq2` on the same data may be passed as ``dds``.
    """
    if dds is None:
        dds = fit_deseq2(counts, groups, high=high, low=low, n_cpus=n_cpus)
    inference = DefaultInference(n_cpus=n_cpus)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        stats = DeseqStats(dds, contrast=["group", high, low], alpha=padj_max, inference=inference,
                           quiet=True)
        stats.summary()
        table = stats.results_df.copy()
        if shrink:
            coefficient = [c for c in stats.LFC.columns if c != "Intercept"][0]
            stats.lfc_shrink(coeff=coefficient)
            table["log2FoldChange"] = stats.results_df["log2FoldChange"]
            table["lfcSE"] = stats.results_df["lfcSE"]
    table.index.name = "gene"
    table = table.reset_index()
    return call_degs(table, padj_max=padj_max, abs_log2fc_min=abs_log2fc_min)


def call_degs(table: pd.DataFrame, padj_max: float = 0.05, abs_log2fc_min: float = 1.0) -> pd.DataFrame:
    """Label each gene up/down/ns by adjusted p-value and |log2 fold change| thresholds."""
    table = table.copy()
    significant = (table["padj"] < padj_max) & (table["log2FoldChange"].abs() > abs_log2fc_min)
    table["direction"] = np.where(significant, np.where(table["log2FoldChange"] > 0, "up", "down"), "ns")
    table = table.sort_values(["padj", "pvalue", "gene"], na_position="last", kind="mergesort")
    return table[DEG_COLUMNS].reset_index(drop=True)
