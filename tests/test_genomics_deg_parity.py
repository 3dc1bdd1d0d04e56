"""DESeq2 as this project fits it (PyDESeq2 with DESeq2's algorithms, radiogenomics.genomics.deseq2)
against DESeq2 1.38 on stored R outputs.

tests/reference/deseq2/make.R simulated the counts (with planted outlier counts) and ran
DESeq() + results(); the Python side reads the identical count matrix. Measured agreement
(`deg.fit_deseq2` + `deg.deseq2_table`, shrink off), unpaired ~ batch + condition (28 samples,
23 genes with replaced outliers) and paired ~ patient + condition (8 patients x 1 normal + 2
tumour): every gene's log2FC, lfcSE and stat within 2 % of R (largest differences: unpaired
2.9e-12 / 5.8e-6 / 5.8e-6 relative, paired 1.8e-2 on one gene's log2FC that R's optim fits,
7.5e-6 on lfcSE); dispersions within 1.8e-14 (unpaired) and 3.6e-6 (paired); the same replaced
genes; identical pvalue / padj NA patterns and padj < 0.1 calls. PyDESeq2 0.5.4's own algorithms
(``algorithm="pydeseq2"``) put 97.3 / 97.4 / 96.2 % of the paired genes within 2 %.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radiogenomics.genomics import deg

REFERENCE = Path(__file__).parent / "reference" / "deseq2"
DESIGNS = {
    "unpaired": dict(factor="condition", test="B", reference="A", covariates=["batch"], pair_by=None),
    "paired": dict(factor="condition", test="tumour", reference="normal", covariates=[], pair_by="patient"),
}
STATISTICS = ["log2FoldChange", "lfcSE", "stat"]


def fit(name, algorithm="deseq2"):
    design = DESIGNS[name]
    counts = pd.read_csv(REFERENCE / f"{name}_counts.csv", index_col=0)
    coldata = pd.read_csv(REFERENCE / f"{name}_coldata.csv", index_col=0)
    metadata = deg.design_metadata(coldata, design["factor"], design["test"], design["reference"],
                                   design["covariates"], design["pair_by"])
    formula = deg.design_formula(design["factor"], design["covariates"], design["pair_by"])
    dds = deg.fit_deseq2(counts, metadata, formula, algorithm=algorithm)
    table = deg.deseq2_table(dds, design["factor"], design["test"], design["reference"], shrink=False)
    return dds, table, pd.read_csv(REFERENCE / f"{name}_results.csv", index_col=0)


@pytest.fixture(scope="module", params=list(DESIGNS))
def fitted(request):
    return (request.param, *fit(request.param))


def within(ours, theirs, tolerance=0.02):
    return ((ours - theirs).abs() <= tolerance * theirs.abs()) | (ours.isna() & theirs.isna())


def test_statistics_agree_with_deseq2(fitted):
    """The issue's target is >= 99 % of genes within 2 %; all of them are."""
    name, _, ours, r = fitted
    for column in STATISTICS:
        assert within(ours[column], r[column]).all(), column
        assert within(ours[column], r[column], 1e-4).mean() >= 0.998, column
    np.testing.assert_allclose(ours["baseMean"], r["baseMean"], rtol=1e-10)
    small = r["pvalue"] < 1e-10
    assert small.sum() > 100
    assert within(np.log10(ours["pvalue"][small]), np.log10(r["pvalue"][small]), 1e-4).all()


def test_dispersions_agree_with_deseq2(fitted):
    name, dds, _, r = fitted
    for ours, theirs in [("genewise_dispersions", "dispGeneEst"), ("fitted_dispersions", "dispFit"),
                         ("dispersions", "dispersion")]:
        assert within(dds.var[ours], r[theirs], 1e-6).mean() >= 0.999, ours
        assert within(dds.var[ours], r[theirs], 1e-4).all(), ours


def test_missing_value_pattern_and_calls_agree(fitted):
    name, _, ours, r = fitted
    assert (ours["padj"].isna() == r["padj"].isna()).all()
    assert (ours["pvalue"].isna() == r["pvalue"].isna()).all()
    assert ((ours["padj"] < 0.1) == (r["padj"] < 0.1)).all()


def test_same_genes_have_outliers_replaced(fitted):
    name, dds, _, r = fitted
    replaced = dds.var["replaced"] if "replaced" in dds.var else pd.Series(False, index=r.index)
    assert (replaced.to_numpy(bool) == r["replaced"].to_numpy(bool)).all()
    assert r["replaced"].sum() == (23 if name == "unpaired" else 0)


def test_pydeseq2s_own_algorithms_miss_the_target_on_the_paired_design():
    """Before/after: PyDESeq2 0.5.4 unchanged is below the 99 % target on the paired design."""
    _, theirs, r = fit("paired", algorithm="pydeseq2")
    fractions = [within(theirs[column], r[column]).mean() for column in STATISTICS]
    assert max(fractions) < 0.99 and min(fractions) > 0.95
