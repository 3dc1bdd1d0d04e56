"""Group comparisons used by the radiogenomics figures: Mann-Whitney U with BH across
variables, and log-rank tests of median-split gene expression (prognostic DEGs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from lifelines.statistics import logrank_test
from scipy.stats import mannwhitneyu
from statsmodels.stats.multitest import multipletests


def compare_groups(values: pd.DataFrame, groups: pd.Series, high: str = "high", low: str = "low") -> pd.DataFrame:
    """Two-sided Mann-Whitney U per column of ``values`` (rows = patients), BH across columns."""
    groups = groups.loc[values.index].astype(str)
    rows = []
    for column in values.columns:
        a = values.loc[groups == high, column].dropna().to_numpy(float)
        b = values.loc[groups == low, column].dropna().to_numpy(float)
        if len(a) == 0 or len(b) == 0:
            continue
        test = mannwhitneyu(a, b, alternative="two-sided")
        rows.append({"variable": column, "median_high": float(np.median(a)), "median_low": float(np.median(b)),
                     "u": float(test.statistic), "pvalue": float(test.pvalue)})
    table = pd.DataFrame(rows)
    if not table.empty:
        table["padj"] = multipletests(table["pvalue"], method="fdr_bh")[1]
    return table


def median_split_survival(expression: pd.DataFrame, survival: pd.DataFrame, genes: list[str],
                          time: str = "os_months", event: str = "os_event") -> pd.DataFrame:
    """Log-rank test per gene between patients above vs at-or-below the gene's median.

    ``expression`` is genes x patients, ``survival`` is indexed by patient.
    """
    patients = [p for p in expression.columns if p in survival.index]
    durations = survival.loc[patients, time].to_numpy(float)
    events = survival.loc[patients, event].to_numpy(int)
    rows = []
    for gene in genes:
        level = expression.loc[gene, patients].to_numpy(float)
        high = level > np.median(level)
        if high.all() or not high.any():
            continue
        test = logrank_test(durations[high], durations[~high], events[high], events[~high])
        rows.append({"gene": gene, "n_high": int(high.sum()), "n_low": int((~high).sum()),
                     "chisq": float(test.test_statistic), "pvalue": float(test.p_value)})
    return pd.DataFrame(rows)
