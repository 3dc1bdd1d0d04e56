"""Mann-Whitney by brute-force U; log-rank against scikit-survival's implementation."""

import numpy as np
import pandas as pd
import pytest
from sksurv.compare import compare_survival
from sksurv.util import Surv

from radiogenomics.genomics import compare


def test_mann_whitney_u_and_bh():
    rng = np.random.default_rng(0)
    patients = [f"P{i}" for i in range(30)]
    groups = pd.Series(["high"] * 15 + ["low"] * 15, index=patients)
    values = pd.DataFrame({"a": np.r_[rng.normal(2, 1, 15), rng.normal(0, 1, 15)],
                           "b": rng.normal(size=30), "c": rng.normal(size=30)}, index=patients)
    table = compare.compare_groups(values, groups).set_index("variable")
    for column in values.columns:
        high, low = values.loc[groups == "high", column], values.loc[groups == "low", column]
        u = sum((h > l) + 0.5 * (h == l) for h in high for l in low)  # brute-force U
        assert table.loc[column, "u"] == pytest.approx(u)
    p = table["pvalue"].to_numpy()
    order = np.argsort(p)
    bh = np.minimum.accumulate((p[order] * 3 / np.arange(1, 4))[::-1])[::-1]
    np.testing.assert_allclose(np.sort(table["padj"].to_numpy()), np.minimum(bh, 1))
    assert table.loc["a", "pvalue"] < 0.01


def test_median_split_logrank_matches_scikit_survival():
    rng = np.random.default_rng(1)
    patients = [f"P{i}" for i in range(40)]
    expression = pd.DataFrame(rng.normal(size=(2, 40)), index=["G1", "G2"], columns=patients)
    survival = pd.DataFrame({"os_months": rng.exponential(30, 40) * np.exp(-expression.loc["G1"].to_numpy()),
                             "os_event": rng.integers(0, 2, 40)}, index=patients)
    table = compare.median_split_survival(expression, survival, ["G1", "G2"]).set_index("gene")
    for gene in ["G1", "G2"]:
        high = expression.loc[gene] > expression.loc[gene].median()
        y = Surv.from_arrays(survival["os_event"].astype(bool), survival["os_months"])
        chisq, pvalue = compare_survival(y, high.to_numpy().astype(int))
        assert table.loc[gene, "chisq"] == pytest.approx(chisq, rel=1e-6)
        assert table.loc[gene, "pvalue"] == pytest.approx(pvalue, rel=1e-6)
