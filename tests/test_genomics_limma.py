"""limma-voom against limma 3.54 on stored R outputs (tests/reference/limma/make.R)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import polygamma

from radiogenomics.genomics import deg, limma

REFERENCE = Path(__file__).parent / "reference"
DESIGNS = {
    "unpaired": dict(factor="condition", test="B", reference="A", covariates=["batch"], pair_by=None),
    "paired": dict(factor="condition", test="tumour", reference="normal", covariates=[], pair_by="patient"),
}


@pytest.mark.parametrize("name", list(DESIGNS))
def test_voom_lmfit_ebayes_match_r(name):
    design = DESIGNS[name]
    counts = pd.read_csv(REFERENCE / "deseq2" / f"{name}_counts.csv", index_col=0)
    coldata = pd.read_csv(REFERENCE / "deseq2" / f"{name}_coldata.csv", index_col=0)
    r = pd.read_csv(REFERENCE / "limma" / f"{name}_toptable.csv", index_col=0)
    table = deg.differential_expression(counts, coldata, method="limma_voom", padj_max=0.05, **design)
    table = table.set_index("gene").loc[r.index]
    np.testing.assert_allclose(table["log2FoldChange"], r["logFC"], atol=1e-6)
    np.testing.assert_allclose(table["stat"], r["t"], atol=1e-6)
    np.testing.assert_allclose(table["pvalue"], r["P.Value"], atol=1e-8)
    np.testing.assert_allclose(table["padj"], r["adj.P.Val"], atol=1e-8)
    np.testing.assert_allclose(table["stat"] * table["lfcSE"], table["log2FoldChange"], rtol=1e-12)


def test_trigamma_inverse_inverts_trigamma():
    for x in [1e-3, 0.1, 1.0, 10.0, 1e3]:
        assert polygamma(1, limma.trigamma_inverse(x)) == pytest.approx(x, rel=1e-7)


def test_weighted_fit_equals_least_squares_on_scaled_rows():
    rng = np.random.default_rng(0)
    design = np.c_[np.ones(10), rng.normal(size=10)]
    y, w = rng.normal(size=(3, 10)), rng.uniform(0.2, 2.0, size=(3, 10))
    fit = limma.lm_fit(y, design, w)
    for g in range(3):
        scaled = design * np.sqrt(w[g])[:, None]
        beta, *_ = np.linalg.lstsq(scaled, y[g] * np.sqrt(w[g]), rcond=None)
        np.testing.assert_allclose(fit.coefficients[g], beta, rtol=1e-10)
