"""PyDESeq2 (with this project's Wald-mean floor) against DESeq2 1.38 on stored R outputs.

tests/reference/deseq2/make.R simulated the counts (with planted outlier counts) and ran
DESeq() + results(); the Python side reads the identical count matrix. Measured agreement
(fraction of genes within 2 % relative): unpaired ~ batch + condition, 28 samples, 23 genes with
replaced outliers: log2FC 99.85 %, lfcSE 98.35 %, stat 98.25 %, and >= 99.9 % for all three on
genes with baseMean >= 10; paired ~ patient + condition, 8 patients x 3 samples: log2FC 97.3 %,
lfcSE 97.45 %, stat 96.2 %, >= 99.1 % on genes with baseMean >= 10. The misses are low-count
genes whose dispersion estimates differ (PyDESeq2's L-BFGS-B genewise and MAP dispersion fits
against DESeq2's line search); the thresholds below are those measurements, rounded down.
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
# minimum fraction within 2 %: (all genes: log2FC, lfcSE, stat), (baseMean >= 10: each)
TARGETS = {"unpaired": ((0.998, 0.98, 0.98), 0.999), "paired": ((0.97, 0.97, 0.96), 0.99)}


def fit(name, wald_min_mu=deg.WALD_MIN_MU):
    design = DESIGNS[name]
    counts = pd.read_csv(REFERENCE / f"{name}_counts.csv", index_col=0)
    coldata = pd.read_csv(REFERENCE / f"{name}_coldata.csv", index_col=0)
    metadata = deg.design_metadata(coldata, design["factor"], design["test"], design["reference"],
                                   design["covariates"], design["pair_by"])
    formula = deg.design_formula(design["factor"], design["covariates"], design["pair_by"])
    original = deg.WALD_MIN_MU
    deg.WALD_MIN_MU = wald_min_mu
    try:
        dds = deg.fit_deseq2(counts, metadata, formula)
        table = deg.deseq2_table(dds, design["factor"], design["test"], design["reference"], shrink=False)
    finally:
        deg.WALD_MIN_MU = original
    return dds, table, pd.read_csv(REFERENCE / f"{name}_results.csv", index_col=0)


@pytest.fixture(scope="module", params=list(DESIGNS))
def fitted(request):
    return (request.param, *fit(request.param))


def within(ours, theirs, tolerance=0.02):
    return ((ours - theirs).abs() <= tolerance * theirs.abs()) | (ours.isna() & theirs.isna())


def test_statistics_agree_with_deseq2(fitted):
    name, _, ours, r = fitted
    all_genes, expressed = TARGETS[name]
    for column, target in zip(["log2FoldChange", "lfcSE", "stat"], all_genes):
        assert within(ours[column], r[column]).mean() >= target, column
        assert within(ours[column], r[column])[r["baseMean"] >= 10].mean() >= expressed, column
    np.testing.assert_allclose(ours["baseMean"], r["baseMean"], rtol=0.15)  # refitted genes' means
    small = r["pvalue"] < 1e-10
    assert within(np.log10(ours["pvalue"][small]), np.log10(r["pvalue"][small])).mean() >= 0.95


def test_missing_value_pattern_and_calls_agree(fitted):
    name, _, ours, r = fitted
    assert (ours["padj"].isna() == r["padj"].isna()).all()
    assert (ours["pvalue"].isna() == r["pvalue"].isna()).all()
    assert ((ours["padj"] < 0.1) == (r["padj"] < 0.1)).mean() >= 0.999


def test_same_genes_have_outliers_replaced(fitted):
    name, dds, _, r = fitted
    replaced = dds.var["replaced"] if "replaced" in dds.var else pd.Series(False, index=r.index)
    assert (replaced.to_numpy(bool) == r["replaced"].to_numpy(bool)).all()
    assert r["replaced"].sum() == (23 if name == "unpaired" else 0)


def test_wald_mean_floor_brings_lfcse_closer_to_deseq2():
    _, floored, r = fit("unpaired")
    _, raw, _ = fit("unpaired", wald_min_mu=0.0)
    assert within(floored["lfcSE"], r["lfcSE"]).sum() > within(raw["lfcSE"], r["lfcSE"]).sum()
