"""PyDESeq2 settings against independent computations of DESeq2's model."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

from pydeseq2.ds import DeseqStats

from radiogenomics.genomics import deg, inputs


def simulate_counts(n_genes=200, n_per_group=20, n_de=20, log2fc=2.0, seed=0):
    rng = np.random.default_rng(seed)
    n = 2 * n_per_group
    base = rng.lognormal(mean=5.0, sigma=1.0, size=n_genes)
    library = rng.uniform(0.6, 1.6, size=n)
    is_high = np.r_[np.zeros(n_per_group, bool), np.ones(n_per_group, bool)]
    effect = np.zeros(n_genes)
    effect[: n_de // 2] = log2fc
    effect[n_de // 2 : n_de] = -log2fc
    mu = base[:, None] * library[None, :] * 2.0 ** (effect[:, None] * is_high[None, :])
    dispersion = 0.1
    counts = rng.negative_binomial(1 / dispersion, 1 / (1 + mu * dispersion))
    genes = [f"G{i:03d}" for i in range(n_genes)]
    samples = [f"P{j:02d}" for j in range(n)]
    groups = pd.Series(np.where(is_high, "high", "low"), index=samples)
    truth = pd.Series(np.sign(effect), index=genes)
    return pd.DataFrame(counts, index=genes, columns=samples), groups, truth


def group_design(groups):
    return deg.design_metadata(groups.to_frame("group"), "group", "high", "low")


@pytest.fixture(scope="module")
def fitted():
    counts, groups, truth = simulate_counts()
    dds = deg.fit_deseq2(counts, group_design(groups))
    raw = deg.differential_expression(counts, groups.to_frame("group"), shrink=False, dds=dds)
    shrunk = deg.differential_expression(counts, groups.to_frame("group"), shrink=True, dds=dds)
    return counts, groups, truth, dds, raw, shrunk


def test_size_factors_match_hand_median_of_ratios_and_pydeseq2(fitted):
    counts, _, _, dds, _, _ = fitted
    # hand computation on a 3x3 toy: geometric means, ratios, column medians
    toy = pd.DataFrame([[10, 20, 40], [5, 10, 20], [100, 100, 100]], columns=list("abc"))
    geo = np.exp(np.log(toy.to_numpy(float)).mean(axis=1))
    expected = np.median(toy.to_numpy(float) / geo[:, None], axis=0)
    np.testing.assert_allclose(inputs.size_factors(toy), expected)
    np.testing.assert_allclose(expected, [0.5, 1.0, 2.0])
    np.testing.assert_allclose(inputs.size_factors(counts), dds.obs["size_factors"], rtol=1e-10)


def test_lfc_and_wald_se_solve_the_negative_binomial_glm(fitted):
    """For a two-group NB GLM the MLE of each group mean solves
    sum_i (y_i - s_i mu) / (1 + a s_i mu) = 0; solved with brentq using PyDESeq2's dispersions."""
    counts, groups, _, dds, wald, _ = fitted
    wald = wald.set_index("gene")
    sf = np.asarray(dds.obs["size_factors"])
    dispersions = np.asarray(dds.var["dispersions"])
    lfc = dds.varm["LFC"]
    high = (groups.loc[counts.columns] == "high").to_numpy()
    for g in [0, 5, 15, 50, 120]:
        y = counts.iloc[g].to_numpy(float)
        alpha = dispersions[g]

        def group_mean(mask):
            s, yy = sf[mask], y[mask]
            score = lambda log_mu: np.sum((yy - s * np.exp(log_mu)) / (1 + alpha * s * np.exp(log_mu)))
            return brentq(score, -20, 20, xtol=1e-14)

        log_low, log_high = group_mean(~high), group_mean(high)
        np.testing.assert_allclose(lfc.iloc[g, 1], log_high - log_low, atol=1e-4)
        # Wald SE from the Fisher information (X' W X)^-1, W = mu / (1 + alpha mu), mu >= 0.5
        mu = np.maximum(sf * np.exp(np.where(high, log_high, log_low)), 0.5)
        w = mu / (1 + alpha * mu)
        x = np.c_[np.ones_like(mu), high.astype(float)]
        cov = np.linalg.inv(x.T @ (w[:, None] * x))
        se_log2 = np.sqrt(cov[1, 1]) / np.log(2)
        np.testing.assert_allclose(wald.loc[counts.index[g], "lfcSE"], se_log2, rtol=1e-3)


def test_differential_expression_recovers_planted_genes(fitted):
    counts, groups, truth, dds, table, _ = fitted
    assert list(table.columns) == deg.DEG_COLUMNS
    called = table.set_index("gene")["direction"]
    planted_up = set(truth.index[truth > 0])
    planted_down = set(truth.index[truth < 0])
    up, down = set(called.index[called == "up"]), set(called.index[called == "down"])
    assert up == planted_up and down == planted_down
    # unshrunken log2FC = natural-log coefficient / ln 2 from the fitted model
    np.testing.assert_allclose(table.set_index("gene").loc[counts.index, "log2FoldChange"],
                               dds.varm["LFC"].iloc[:, 1] / np.log(2), rtol=1e-8)


def test_shrinkage_pulls_noise_towards_zero_and_keeps_pvalues(fitted):
    counts, groups, _, _, raw, shrunk = fitted
    raw, shrunk = raw.set_index("gene"), shrunk.set_index("gene")
    np.testing.assert_allclose(raw.loc[counts.index, "pvalue"], shrunk.loc[counts.index, "pvalue"])
    noise = counts.index[30:]
    assert shrunk.loc[noise, "log2FoldChange"].abs().mean() < raw.loc[noise, "log2FoldChange"].abs().mean()
    thresholds = deg.call_degs(raw.reset_index(), padj_max=0.05, abs_log2fc_min=5.0)
    assert (thresholds["direction"] == "ns").all()


def test_wald_se_floors_fitted_means_at_one_half_as_deseq2():
    """A gene with counts near zero in one group: DESeq2's nbinomWaldTest computes W from
    max(mu, 0.5); the SE is checked against (X'WX)^-1 with and without that floor."""
    counts, groups, _ = simulate_counts(n_genes=60, n_per_group=10, seed=4)
    counts.iloc[0] = 0
    counts.iloc[0, -10:] = [3, 0, 5, 2, 1, 4, 0, 2, 3, 6]   # high group only; low fitted means ~0
    dds = deg.fit_deseq2(counts, group_design(groups))
    table = deg.deseq2_table(dds, "group", "high", "low", shrink=False)
    sf = np.asarray(dds.obs["size_factors"])
    x = dds.obsm["design_matrix"].to_numpy(float)
    mu = sf * np.exp(x @ dds.varm["LFC"].iloc[0].to_numpy())
    alpha = dds.var["dispersions"].iloc[0]
    assert mu.min() < 0.5

    def se(means):
        w = means / (1 + alpha * means)
        return np.sqrt(np.linalg.inv(x.T @ (w[:, None] * x))[1, 1]) / np.log(2)

    np.testing.assert_allclose(table["lfcSE"].iloc[0], se(np.maximum(mu, 0.5)), rtol=1e-4)
    assert abs(se(mu) - se(np.maximum(mu, 0.5))) / se(mu) > 0.01


def test_shrinkage_uses_the_outlier_replaced_counts_of_refitted_genes():
    """A planted outlier in a gene that is down in the high group: DESeq2 replaces it and refits,
    so the test's MLE is negative; shrinking on the original counts (PyDESeq2's lfc_shrink) turns
    it positive, shrinking on the replaced counts keeps it negative. No significant gene's
    shrunken log2FC may disagree in sign with its MLE."""
    rng = np.random.default_rng(3)
    high = np.r_[np.zeros(8, bool), np.ones(8, bool)]
    mu = rng.lognormal(4, 1, 300)[:, None] * 2.0 ** (np.r_[-2.5, np.zeros(299)][:, None] * high)
    counts = pd.DataFrame(rng.negative_binomial(10, 10 / (10 + mu)), index=[f"G{i:03d}" for i in range(300)],
                          columns=[f"S{j:02d}" for j in range(16)])
    counts.iloc[0, 12] = counts.iloc[0].max() * 60
    groups = pd.Series(np.where(high, "high", "low"), index=counts.columns)
    dds = deg.fit_deseq2(counts, group_design(groups))
    assert dds.var.loc["G000", "refitted"]
    mle = deg.deseq2_table(dds, "group", "high", "low", shrink=False)
    shrunk = deg.deseq2_table(dds, "group", "high", "low", shrink=True)
    assert mle.loc["G000", "padj"] < 1e-5 and mle.loc["G000", "log2FoldChange"] < -1
    assert -mle.loc["G000", "log2FoldChange"] > -shrunk.loc["G000", "log2FoldChange"] > 1
    significant = mle["padj"] < 0.05
    assert (np.sign(mle.loc[significant, "log2FoldChange"]) == np.sign(shrunk.loc[significant, "log2FoldChange"])).all()
    with deg._quiet():
        untouched = DeseqStats(dds, contrast=["group", "high", "low"], quiet=True)
        untouched.summary()
        untouched.lfc_shrink("group[T.high]")
    assert untouched.results_df.loc["G000", "log2FoldChange"] > 0   # what the replaced counts fix


def test_tested_counts_restores_the_original_counts():
    counts, groups, _ = simulate_counts(n_genes=80, n_per_group=8, seed=5)
    counts.iloc[3, 2] = 50000
    dds = deg.fit_deseq2(counts, group_design(groups))
    before = dds.X.copy()
    with deg.tested_counts(dds):
        inside = dds.X.copy()
    np.testing.assert_array_equal(dds.X, before)
    assert dds.var["refitted"].iloc[3] and inside[2, 3] < 50000


def test_unknown_method_and_missing_design_column_are_refused():
    counts, groups, _ = simulate_counts(n_genes=40, n_per_group=4)
    with pytest.raises(ValueError, match="limma_voom"):
        deg.differential_expression(counts, groups.to_frame("group"), method="edger")
    with pytest.raises(KeyError, match="site"):
        deg.differential_expression(counts, groups.to_frame("group"), covariates=["site"])


def design_counts(samples):
    rng = np.random.default_rng(6)
    return pd.DataFrame(rng.poisson(50, (30, len(samples))), index=[f"G{i:02d}" for i in range(30)], columns=samples)


@pytest.mark.parametrize("method", ["deseq2", "limma_voom"])
def test_covariate_identical_to_the_condition_is_refused_with_the_columns_at_fault(method):
    samples = [f"S{j}" for j in range(8)]
    metadata = pd.DataFrame({"group": ["low"] * 4 + ["high"] * 4, "site": ["a"] * 4 + ["b"] * 4}, index=samples)
    with pytest.raises(ValueError) as error:
        deg.differential_expression(design_counts(samples), metadata, covariates=["site"], method=method)
    message = str(error.value)
    assert "'~site + group'" in message and "not of full rank (2 of 3" in message
    assert "site[T.b]" in message and "group[T.high]" in message and "Intercept" not in message
    assert "Fix: remove one of the variables" in message


def test_paired_design_without_within_patient_contrast_names_the_patients():
    """Two samples per patient but every patient's samples share one condition: the condition
    is the sum of patient columns (rank 6 of 7)."""
    patients = np.repeat([f"P{k}" for k in range(1, 7)], 2)
    samples = [f"{p}_{j}" for p, j in zip(patients, [1, 2] * 6)]
    metadata = pd.DataFrame({"patient": patients, "condition": ["normal"] * 6 + ["tumour"] * 6}, index=samples)
    with pytest.raises(ValueError) as error:
        deg.differential_expression(design_counts(samples), metadata, factor="condition", test="tumour",
                                    reference="normal", pair_by="patient")
    message = str(error.value)
    assert "'~patient + condition'" in message and "(6 of 7" in message
    assert "condition[T.tumour]" in message and "patient[T.P4]" in message
    assert "patient ['P1', 'P2', 'P3', 'P4', 'P5', 'P6'] have samples of one 'condition' level only" in message


def test_single_sample_patient_leaving_no_residual_degrees_of_freedom_is_refused():
    samples = ["P1_normal", "P1_tumour", "P2_tumour"]
    metadata = pd.DataFrame({"patient": ["P1", "P1", "P2"], "condition": ["normal", "tumour", "tumour"]},
                            index=samples)
    with pytest.raises(ValueError, match=r"'~patient \+ condition' has as many coefficients as samples \(3\)"):
        deg.differential_expression(design_counts(samples), metadata, factor="condition", test="tumour",
                                    reference="normal", pair_by="patient")


def test_tested_level_without_samples_is_refused():
    samples = [f"S{j}" for j in range(6)]
    metadata = pd.DataFrame({"group": ["low"] * 6}, index=samples)
    with pytest.raises(ValueError, match=r"\['group\[T.high\]'\] are all zero"):
        deg.fit_deseq2(design_counts(samples), group_design(metadata["group"]))
