"""DESeq2's fitting steps (radiogenomics.genomics.deseq2), each on R's own inputs and against
independent computations.

R's side: tests/reference/deseq2/make.R stored, per gene, DESeq2 1.38's gene-wise and MAP
dispersions with the number of line-search steps it took (dispGeneIter, dispIter), the trend
coefficients and prior variance, and fitBeta's coefficients and IRLS steps (betaIter). Each step
here is fed R's inputs for it (R's gene-wise estimates and trend for the MAP step, R's final
dispersions for the GLM), so that a difference points at that step alone. Genes whose outliers R
replaced are left out: their R values come from the refit on replaced counts.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from formulaic import model_matrix
from pydeseq2 import utils
from scipy.optimize import minimize, minimize_scalar
from scipy.stats import nbinom

from radiogenomics.genomics import deg, deseq2, inputs

REFERENCE = Path(__file__).parent / "reference" / "deseq2"
DESIGNS = {
    "unpaired": ("condition", "B", "A", ["batch"], None),
    "paired": ("condition", "tumour", "normal", [], "patient"),
}
MIN_DISP = 1e-8


def load(name):
    factor, test, reference, covariates, pair_by = DESIGNS[name]
    counts = pd.read_csv(REFERENCE / f"{name}_counts.csv", index_col=0)
    coldata = pd.read_csv(REFERENCE / f"{name}_coldata.csv", index_col=0)
    r = pd.read_csv(REFERENCE / f"{name}_results.csv", index_col=0)
    function = json.loads((REFERENCE / f"{name}_dispersion_function.json").read_text())
    metadata = deg.design_metadata(coldata, factor, test, reference, covariates, pair_by)
    x = model_matrix(deg.design_formula(factor, covariates, pair_by), metadata).to_numpy(float)
    keep = (counts.sum(axis=1) > 0) & ~r["replaced"]
    y = counts[keep].to_numpy(float)
    size_factors = np.asarray(inputs.size_factors(counts), float)
    max_disp = max(10, len(size_factors))
    # DESeq2's starting values (roughDispEstimate, momentsDispEstimate), as PyDESeq2 computes them
    normed = (y / size_factors).T
    alpha_init = np.clip(np.minimum(utils.fit_rough_dispersions(normed, x),
                                    utils.fit_moments_dispersions(normed, size_factors)), MIN_DISP, max_disp)
    mu = np.maximum(deseq2.fit_beta(y, size_factors, x, alpha_init).mu, deseq2.MIN_MU)
    return dict(y=y, x=x, size_factors=size_factors, max_disp=max_disp, alpha_init=alpha_init, mu=mu,
                r=r[keep], function=function)


@pytest.fixture(scope="module", params=list(DESIGNS))
def stage(request):
    return request.param, load(request.param)


def relative(ours, theirs):
    return np.abs(np.asarray(ours) - np.asarray(theirs)) / np.abs(np.asarray(theirs))


def test_genewise_dispersions_take_deseq2s_steps(stage):
    """estimateDispersionsGeneEst: same estimates (measured: max 3.6e-6 relative, 1,999 of 2,000
    genes within 1e-6) and, for genes above minDisp, the same number of line-search steps (genes
    that run to minDisp cross a likelihood so flat that lgamma's last bits decide the steps)."""
    name, s = stage
    r = s["r"]
    estimates, _ = deseq2.genewise_dispersions(s["y"], s["mu"], s["x"], s["alpha_init"], MIN_DISP, s["max_disp"])
    assert (relative(estimates, r["dispGeneEst"]) <= 1e-6).mean() >= 0.999
    assert relative(estimates, r["dispGeneEst"]).max() < 1e-4
    search = deseq2.line_search(s["y"], s["mu"], s["x"], np.log(s["alpha_init"]), np.log(MIN_DISP / 10))
    above = (r["dispGeneEst"] > 100 * MIN_DISP).to_numpy()
    assert (search.iterations[above] == r["dispGeneIter"].to_numpy()[above]).mean() >= 0.995
    # genes the search did not converge for (one step, or maxit) went to the grid in R, and here
    iterations = r["dispGeneIter"].to_numpy()
    gridded = ((iterations == 1) | (iterations == deseq2.MAXIT)) & (r["dispGeneEst"] > 10 * MIN_DISP).to_numpy()
    assert gridded.sum() >= 1
    assert (relative(estimates[gridded], r["dispGeneEst"][gridded]) <= 1e-6).all()


def test_map_dispersions_take_deseq2s_steps(stage):
    """estimateDispersionsMAP from R's gene-wise estimates, trend and prior variance."""
    name, s = stage
    r, prior_var = s["r"], s["function"]["dispPriorVar"]
    start = deseq2.map_start(r["dispGeneEst"], r["dispFit"])
    estimates, converged = deseq2.map_dispersions(s["y"], s["mu"], s["x"], start, r["dispFit"], prior_var,
                                                  MIN_DISP, s["max_disp"])
    assert (relative(estimates, r["dispMAP"]) <= 1e-6).mean() >= 0.999
    assert relative(estimates, r["dispMAP"]).max() < 1e-4
    search = deseq2.line_search(s["y"], s["mu"], s["x"], np.log(start), np.log(MIN_DISP / 10),
                                deseq2.Prior(np.log(r["dispFit"].to_numpy()), prior_var))
    assert (search.iterations == r["dispIter"].to_numpy()).mean() >= 0.999
    np.testing.assert_array_equal(converged, r["dispIter"] < deseq2.MAXIT)


def test_trend_is_deseq2s_parametric_fit():
    """parametricDispersionFit on R's gene-wise estimates (paired: no gene was refitted, so R's
    stored estimates are the ones its trend was fitted on): coefficients to 1e-8."""
    s = load("paired")
    coefficients = deseq2.parametric_trend(s["r"]["baseMean"], s["r"]["dispGeneEst"])
    expected = [s["function"]["coefficients"]["asymptDisp"], s["function"]["coefficients"]["extraPois"]]
    np.testing.assert_allclose(coefficients, expected, rtol=1e-8)


@pytest.mark.filterwarnings("ignore:The Identity link function:statsmodels.tools.sm_exceptions.DomainWarning")
def test_gamma_glm_matches_statsmodels():
    rng = np.random.default_rng(7)
    means = rng.lognormal(3, 1.5, 400)
    dispersions = (0.08 + 3 / means) * rng.gamma(4, 0.25, 400)
    x = np.column_stack([np.ones_like(means), 1 / means])
    ours, converged = deseq2._gamma_identity_glm(dispersions, x, np.array([0.1, 1.0]))
    reference = sm.GLM(dispersions, x, family=sm.families.Gamma(sm.families.links.Identity()),
                       ).fit(start_params=[0.1, 1.0], tol=1e-12)
    assert converged
    np.testing.assert_allclose(ours, reference.params, rtol=1e-6)


def test_trend_refuses_a_curve_that_rises_with_the_mean():
    means = np.geomspace(1, 1e4, 200)
    with pytest.raises(deseq2.TrendFitError):
        deseq2.parametric_trend(means, 0.01 + 1e-4 * means)


def test_glm_fit_matches_fitnbinomglms(stage):
    """fitNbinomGLMs with R's final dispersions: log2 fold changes (measured: 1e-6 relative for
    1,998 of 2,000 paired genes; the 2 genes IRLS gives up on go to optim, where R differentiates
    numerically and stops 2 % away), the same IRLS step counts and convergence flags."""
    name, s = stage
    r = s["r"]
    fit = deseq2.fit_beta(s["y"], s["size_factors"], s["x"], r["dispersion"].to_numpy())
    log2_fold_change = fit.beta[:, -1] / np.log(2)
    assert (relative(log2_fold_change, r["log2FoldChange"]) <= 1e-6).mean() >= 0.998
    assert (relative(log2_fold_change, r["log2FoldChange"]) <= 0.05).all()
    np.testing.assert_array_equal(fit.iterations, r["betaIter"])
    np.testing.assert_array_equal(fit.converged, r["betaConv"])


def test_log_posterior_is_the_cox_reid_adjusted_nb_likelihood_with_prior():
    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(9), np.r_[np.zeros(4), np.ones(5)], rng.normal(size=9)])
    mu = rng.uniform(0.5, 40, (3, 9))
    counts = rng.poisson(mu).astype(float)
    log_alpha = np.log([0.05, 0.4, 2.0])
    prior = deseq2.Prior(np.log([0.1, 0.1, 1.0]), 0.5)
    ours = deseq2.log_posterior(log_alpha, counts, mu, x, prior)
    for g in range(3):
        alpha = np.exp(log_alpha[g])
        # scipy's NB(n = 1/alpha, p = 1 / (1 + alpha mu)) without the terms DESeq2 leaves out
        # because they do not depend on alpha: -log(y!) and y log(mu)
        log_factorial = np.array([np.sum(np.log(np.arange(1, k + 1))) for k in counts[g]])
        likelihood = (nbinom.logpmf(counts[g], 1 / alpha, 1 / (1 + alpha * mu[g])) + log_factorial
                      - counts[g] * np.log(mu[g])).sum()
        w = mu[g] / (1 + alpha * mu[g])
        cox_reid = -0.5 * np.log(np.linalg.det(x.T @ np.diag(w) @ x))
        log_prior = -0.5 * (log_alpha[g] - prior.log_mean[g]) ** 2 / prior.variance
        assert ours[g] == pytest.approx(likelihood + cox_reid + log_prior, rel=1e-10)


@pytest.mark.parametrize("with_prior", [False, True])
def test_dlog_posterior_is_the_derivative(with_prior):
    rng = np.random.default_rng(2)
    x = np.column_stack([np.ones(12), np.repeat([0.0, 1.0], 6)])
    mu = rng.uniform(0.5, 200, (4, 12))
    counts = rng.negative_binomial(5, 5 / (5 + mu)).astype(float)
    log_alpha = np.log([0.01, 0.2, 1.0, 5.0])
    prior = deseq2.Prior(np.log([0.1, 0.1, 0.3, 0.3]), 0.25) if with_prior else None
    h = 1e-5
    numeric = (deseq2.log_posterior(log_alpha + h, counts, mu, x, prior)
               - deseq2.log_posterior(log_alpha - h, counts, mu, x, prior)) / (2 * h)
    np.testing.assert_allclose(deseq2.dlog_posterior(log_alpha, counts, mu, x, prior), numeric, rtol=1e-5)


def test_line_search_ends_near_the_maximum_and_grid_search_finds_it():
    rng = np.random.default_rng(3)
    x = np.column_stack([np.ones(16), np.repeat([0.0, 1.0], 8)])
    mu = np.repeat(rng.uniform(20, 300, (5, 1)), 16, axis=1)
    counts = rng.negative_binomial(4, 4 / (4 + mu)).astype(float)   # alpha = 0.25
    search = deseq2.line_search(counts, mu, x, np.log(np.full(5, 1.0)), np.log(MIN_DISP / 10))
    grid = deseq2.grid_search(counts, mu, x, max_disp=16)
    for g in range(5):
        best = minimize_scalar(lambda a: -deseq2.log_posterior(np.array([a]), counts[g:g + 1], mu[g:g + 1], x)[0],
                               bounds=(-12, 2), method="bounded", options={"xatol": 1e-10})
        assert search.last_lp[g] >= -best.fun - 1e-4   # stops once a step gains < 1e-6
        assert abs(search.log_alpha[g] - best.x) < 0.05
        # the fine grid's spacing is 2/19 of a coarse step (log(1.6e9)/19)
        assert abs(np.log(grid[g]) - best.x) <= np.log(16 / MIN_DISP) / 19 * 2 / 19
        assert search.iterations[g] < deseq2.MAXIT


def test_line_search_stops_at_min_dispersion_for_underdispersed_counts():
    """Counts less variable than Poisson: log(alpha) heads for -infinity; fitDisp stops below
    log(minDisp / 10) and the gene ends at minDisp."""
    x = np.ones((10, 1))
    counts = np.full((1, 10), 50.0) + np.array([[0, 1, -1, 0, 1, -1, 0, 0, 1, -1]])
    mu = np.full((1, 10), 50.0)
    estimates, _ = deseq2.genewise_dispersions(counts, mu, x, np.array([0.1]), MIN_DISP, 10)
    assert estimates[0] == MIN_DISP


def test_glm_fit_is_the_nb_maximum_likelihood():
    rng = np.random.default_rng(4)
    x = np.column_stack([np.ones(20), np.repeat([0.0, 1.0], 10)])
    size_factors = rng.uniform(0.7, 1.4, 20)
    mu = size_factors * np.exp(x @ np.array([3.0, 1.2]))
    counts = rng.negative_binomial(10, 10 / (10 + mu)).astype(float)[None, :]
    fit = deseq2.fit_beta(counts, size_factors, x, np.array([0.1]))
    ridge = deseq2.RIDGE_LOG2 / np.log(2) ** 2

    def objective(beta):
        m = size_factors * np.exp(x @ beta)
        return -nbinom.logpmf(counts[0], 10, 10 / (10 + m)).sum() + 0.5 * ridge * beta @ beta

    reference = minimize(objective, np.zeros(2), method="Nelder-Mead",
                         options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
    assert fit.converged[0] and fit.iterations[0] < deseq2.BETA_MAXIT
    np.testing.assert_allclose(fit.beta[0], reference.x, atol=1e-6)
    np.testing.assert_allclose(fit.mu[0], size_factors * np.exp(x @ fit.beta[0]))


def test_optim_fallback_finds_the_irls_maximum():
    """fitNbinomGLMsOptim (L-BFGS-B on log2 coefficients) from a poor start reaches the
    maximum that IRLS converges to on a regular gene."""
    rng = np.random.default_rng(5)
    x = np.column_stack([np.ones(12), np.repeat([0.0, 1.0], 6), np.tile([0.0, 1.0], 6)])
    size_factors = rng.uniform(0.7, 1.4, 12)
    counts = rng.negative_binomial(5, 5 / (5 + size_factors * np.exp(x @ [2.0, -1.0, 0.5])))[None, :].astype(float)
    irls = deseq2.fit_beta(counts, size_factors, x, np.array([0.2]))
    beta, converged = deseq2._optim_beta(counts[0], size_factors, x, 0.2, start=np.zeros(3))
    assert irls.converged[0] and converged
    np.testing.assert_allclose(beta, irls.beta[0], atol=1e-4)


def test_map_starts_at_the_trend_for_genewise_estimates_far_below_it():
    np.testing.assert_allclose(deseq2.map_start([0.5, 0.005, np.nan], [0.1, 0.1, 0.2]), [0.5, 0.1, 0.2])


def test_inference_refuses_a_fit_without_cox_reid():
    with pytest.raises(ValueError, match="Cox-Reid"):
        deseq2.DESeq2Inference(n_cpus=1).alpha_mle(np.ones((4, 1)), np.ones((4, 1)), np.ones((4, 1)),
                                                   np.ones(1), MIN_DISP, 10, cr_reg=False)
