"""DESeq2's fitting algorithms, where PyDESeq2 0.5.4 uses algorithms of its own.

PyDESeq2 fits DESeq2's model, but some of its steps are its own algorithms, and on small designs
with many low-count genes (a paired ``~ patient + condition`` design, 8 patients x 3 samples) 3-4 %
of genes then get a log2FC, lfcSE or Wald statistic more than 2 % off DESeq2's; genes with
planted outlier counts can even get a different set of replaced counts. This module ports what
DESeq2 1.38 does (R/core.R ``estimateDispersionsGeneEst``, ``estimateDispersionsMAP``,
``parametricDispersionFit``, R/fitNbinomGLMs.R ``fitNbinomGLMs``, ``fitNbinomGLMsOptim``;
src/DESeq2.cpp ``fitDisp``, ``fitDispGrid``, ``fitBeta``, unchanged since 2019):

* the GLM fits (the means for the gene-wise dispersions, the coefficients): fitBeta's IRLS with
  DESeq2's ridge (1e-6 on the log2 scale), 100 steps, and, for genes IRLS does not converge for,
  L-BFGS-B on the log2 scale from the IRLS estimate. PyDESeq2 restarts its L-BFGS-B from the
  initial estimate, which for a gene with an outlier can end in another optimum (and then flag
  other samples as Cook's outliers);
* the fitted means that enter the dispersion fits are floored at ``minmu = 0.5``. PyDESeq2 floors
  them only when it fits the means with a linear model; when the design needs the GLM (more
  distinct sample groups than coefficients, as a paired design) it passes the unfloored means,
  near 0 for a patient whose samples are all zero. The Wald test's means are floored too
  (nbinomWaldTest's minmu), which PyDESeq2 does not do;
* the gene-wise and MAP dispersions come from DESeq2's backtracking line search on log(alpha)
  (Armijo rule, epsilon 1e-4, first step kappa_0 = 1 times the gradient, stopped when an accepted
  step gains less than ``dispTol`` = 1e-6 in the log posterior, or after ``maxit`` = 100 steps),
  with DESeq2's rules after it: a gene-wise estimate whose log likelihood rose by less than a
  millionth keeps its starting value, and a gene the search did not converge for is refitted on
  DESeq2's two-stage grid. PyDESeq2 minimises the same objective with L-BFGS-B; on the flat
  likelihoods of low-count genes the two stop at different dispersions;
* the MAP search starts where DESeq2 starts it: at the gene-wise estimate unless that lies more
  than an order of magnitude below the trend (PyDESeq2 starts at the trend);
* the parametric trend ``a0 + a1 / mean`` is fitted as DESeq2 does: on the genes whose gene-wise
  estimate is above 100 x minDisp, re-selecting the genes within [1e-4, 15) times the current
  curve before every Gamma-family GLM fit (PyDESeq2 fits all genes first and then drops genes
  cumulatively). Where DESeq2's parametric fit fails it substitutes a local fit (locfit, not
  ported); here, as in PyDESeq2, the mean of the gene-wise estimates is used instead.

Left to PyDESeq2, because they are DESeq2's already: size factors, the rough/moments starting
dispersions, the choice between linear-model and GLM means, niter = 1, the bounds minDisp = 1e-8
and maxDisp = max(10, samples), the prior variance for more than 3 residual degrees of freedom,
the dispersion-outlier rule, Cook's distances, outlier replacement, the Wald test. The code runs
vectorised over genes in one process (PyDESeq2's joblib workers, ``n_cpus``, are not used for
these steps). Compared with R in tests/test_genomics_deseq2.py (each step on R's inputs) and
tests/test_genomics_deg_parity.py (the whole fit).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from pydeseq2.dds import DeseqDataSet
from pydeseq2.default_inference import DefaultInference
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

MIN_MU = 0.5            # minmu of estimateDispersionsGeneEst and nbinomWaldTest
KAPPA_0 = 1.0           # first step of the line search, in units of the gradient
DISP_TOL = 1e-6         # dispTol: stop when an accepted step gains less log posterior
MAXIT = 100             # maxit of the line search
ARMIJO_EPSILON = 1e-4   # fitDisp's sufficient-increase constant
LOG_ALPHA_LIMITS = (-30.0, 10.0)   # fitDisp keeps log(alpha) here (lgamma is unstable beyond)
GRID_MIN_DISP = 1e-8    # fitDispGridWrapper's grid starts at log(1e-8) whatever minDisp is
GRID_POINTS = 20
GENES_PER_BLOCK = 4096  # genes searched together (memory: block x samples doubles per array)


@dataclass
class Prior:
    """DESeq2's log-normal dispersion prior: log(alpha) ~ N(log(trend), variance)."""

    log_mean: np.ndarray
    variance: float

    def take(self, rows: np.ndarray) -> Prior:
        return Prior(self.log_mean[rows], self.variance)


def _design_products(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """X' diag(w_g) X for each gene g (w: genes x samples) -> genes x p x p."""
    return np.einsum("ni,gn,nj->gij", x, w, x, optimize=True)


def log_posterior(log_alpha: np.ndarray, counts: np.ndarray, mu: np.ndarray, x: np.ndarray,
                  prior: Prior | None = None) -> np.ndarray:
    """fitDisp's log_posterior: NB log likelihood (less log y! and y log mu, which do not depend
    on alpha), Cox-Reid term
    -log det(X' W X) / 2 with W = 1 / (1/mu + alpha), and the prior's log density if given.
    ``counts`` and ``mu`` are genes x samples, ``log_alpha`` one value per gene."""
    alpha = np.exp(log_alpha)[:, None]
    inverse = 1.0 / alpha
    likelihood = (gammaln(counts + inverse) - gammaln(inverse) - counts * np.log(mu + inverse)
                  - inverse * np.log(1.0 + mu * alpha)).sum(axis=1)
    cox_reid = -0.5 * np.linalg.slogdet(_design_products(x, 1.0 / (1.0 / mu + alpha)))[1]
    value = likelihood + cox_reid
    if prior is not None:
        value = value - 0.5 * (log_alpha - prior.log_mean) ** 2 / prior.variance
    return value


def dlog_posterior(log_alpha: np.ndarray, counts: np.ndarray, mu: np.ndarray, x: np.ndarray,
                   prior: Prior | None = None) -> np.ndarray:
    """fitDisp's dlog_posterior: the derivative of :func:`log_posterior` in log(alpha)."""
    alpha = np.exp(log_alpha)[:, None]
    inverse = 1.0 / alpha
    likelihood = inverse[:, 0] ** 2 * (digamma(inverse) + np.log(1.0 + mu * alpha)
                                       - mu * alpha / (1.0 + mu * alpha) - digamma(counts + inverse)
                                       + counts / (mu + inverse)).sum(axis=1)
    b = _design_products(x, 1.0 / (1.0 / mu + alpha))
    db = _design_products(x, -1.0 / (1.0 / mu + alpha) ** 2)
    cox_reid = -0.5 * np.trace(np.linalg.solve(b, db), axis1=1, axis2=2)
    value = (likelihood + cox_reid) * alpha[:, 0]
    if prior is not None:
        value = value - (log_alpha - prior.log_mean) / prior.variance
    return value


@dataclass
class SearchResult:
    log_alpha: np.ndarray
    iterations: np.ndarray   # steps tried (accepted or not), as fitDisp's iter
    initial_lp: np.ndarray
    last_lp: np.ndarray


def line_search(counts: np.ndarray, mu: np.ndarray, x: np.ndarray, log_alpha: np.ndarray,
                min_log_alpha: float, prior: Prior | None = None, kappa_0: float = KAPPA_0,
                tol: float = DISP_TOL, maxit: int = MAXIT) -> SearchResult:
    """fitDisp: per gene, an Armijo backtracking line search along the gradient of the log
    posterior in log(alpha), step by step as DESeq2.cpp takes them (the genes move in lock step;
    a gene leaves when it stops). Rows of ``counts`` / ``mu`` are genes."""
    a = np.array(log_alpha, dtype=float)
    lp = log_posterior(a, counts, mu, x, prior)
    dlp = dlog_posterior(a, counts, mu, x, prior)
    initial_lp = lp.copy()
    kappa = np.full(a.shape, float(kappa_0))
    iterations = np.zeros(a.shape, int)
    accepted = np.zeros(a.shape, int)
    active = np.ones(a.shape, bool)
    low, high = LOG_ALPHA_LIMITS
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(maxit):
            rows = np.flatnonzero(active)
            if not len(rows):
                break
            iterations[rows] += 1
            step = kappa[rows]
            proposal = a[rows] + step * dlp[rows]
            step = np.where(proposal < low, (low - a[rows]) / dlp[rows], step)
            step = np.where(proposal > high, (high - a[rows]) / dlp[rows], step)
            proposal = a[rows] + step * dlp[rows]
            sub_prior = prior.take(rows) if prior is not None else None
            lp_new = log_posterior(proposal, counts[rows], mu[rows], x, sub_prior)
            accept = -lp_new <= -lp[rows] - step * ARMIJO_EPSILON * dlp[rows] ** 2
            kappa[rows[~accept]] = step[~accept] / 2.0
            moved = rows[accept]
            a[moved] = proposal[accept]
            accepted[moved] += 1
            change = lp_new[accept] - lp[moved]
            converged = change < tol
            lp[moved[converged]] = lp_new[accept][converged]
            # a gene whose log(alpha) heads for -infinity stops without taking the new lp
            stopped = converged | (a[moved] < min_log_alpha)
            active[moved[stopped]] = False
            going = moved[~stopped]
            lp[going] = lp_new[accept][~stopped]
            going_prior = prior.take(going) if prior is not None else None
            dlp[going] = dlog_posterior(a[going], counts[going], mu[going], x, going_prior)
            kappa[going] = np.minimum(step[accept][~stopped] * 1.1, kappa_0)
            # every fifth accepted step halves kappa, against overshooting
            kappa[going[accepted[going] % 5 == 0]] /= 2.0
    return SearchResult(a, iterations, initial_lp, lp)


def grid_search(counts: np.ndarray, mu: np.ndarray, x: np.ndarray, max_disp: float,
                prior: Prior | None = None) -> np.ndarray:
    """fitDispGrid: the best of 20 log(alpha) values from log(1e-8) to log(max_disp), then of 20
    values within one grid step either side of it. Returns alpha (not log)."""
    grid = np.linspace(np.log(GRID_MIN_DISP), np.log(max_disp), GRID_POINTS)
    delta = grid[1] - grid[0]

    def best(candidates: np.ndarray) -> np.ndarray:   # candidates: genes x GRID_POINTS
        values = np.column_stack([log_posterior(candidates[:, k], counts, mu, x, prior)
                                  for k in range(candidates.shape[1])])
        return candidates[np.arange(len(candidates)), np.argmax(values, axis=1)]

    coarse = best(np.broadcast_to(grid, (len(counts), GRID_POINTS)))
    fine = coarse[:, None] + np.linspace(-delta, delta, GRID_POINTS)[None, :]
    return np.exp(best(fine))


def _blocks(n_genes: int):
    for start in range(0, max(n_genes, 1), GENES_PER_BLOCK):   # one empty block for no genes
        yield slice(start, min(start + GENES_PER_BLOCK, n_genes))


def genewise_dispersions(counts: np.ndarray, mu: np.ndarray, x: np.ndarray, alpha_init: np.ndarray,
                         min_disp: float, max_disp: float) -> tuple[np.ndarray, np.ndarray]:
    """estimateDispersionsGeneEst after the means (niter = 1): line search from ``alpha_init``
    (the bounded rough/moments estimate), no-increase rule, grid for non-converged genes.
    ``counts`` and ``mu`` are genes x samples. Returns (dispersions, converged)."""
    counts, mu = np.asarray(counts, float), np.maximum(np.asarray(mu, float), MIN_MU)
    alpha_init = np.asarray(alpha_init, float)
    estimates, converged = np.empty(len(counts)), np.empty(len(counts), bool)
    for block in _blocks(len(counts)):
        y, m, start = counts[block], mu[block], alpha_init[block]
        search = line_search(y, m, x, np.log(start), min_log_alpha=np.log(min_disp / 10))
        alpha = np.minimum(np.exp(search.log_alpha), max_disp)
        # a move that raised the log likelihood by less than a millionth is not taken
        no_increase = search.last_lp < search.initial_lp + np.abs(search.initial_lp) / 1e6
        alpha[no_increase] = start[no_increase]
        # a search that stopped after one step has not converged either
        done = (search.iterations < MAXIT) & (search.iterations != 1)
        refit = ~done & (alpha > min_disp * 10)
        if refit.any():
            alpha[refit] = grid_search(y[refit], m[refit], x, max_disp)
        estimates[block], converged[block] = np.clip(alpha, min_disp, max_disp), done
    return estimates, converged


def map_start(genewise: np.ndarray, trend: np.ndarray) -> np.ndarray:
    """estimateDispersionsMAP's starting value: the gene-wise estimate, or the trend where the
    gene-wise estimate is more than an order of magnitude below it (or missing)."""
    genewise, trend = np.asarray(genewise, float), np.asarray(trend, float)
    start = np.where(genewise > 0.1 * trend, genewise, trend)
    return np.where(np.isnan(start), trend, start)


def map_dispersions(counts: np.ndarray, mu: np.ndarray, x: np.ndarray, start: np.ndarray,
                    trend: np.ndarray, prior_var: float, min_disp: float,
                    max_disp: float) -> tuple[np.ndarray, np.ndarray]:
    """estimateDispersionsMAP: line search on the log posterior with the prior
    log(alpha) ~ N(log(trend), prior_var), grid for non-converged genes.
    Returns (dispersions, converged); the dispersion-outlier rule is the caller's."""
    counts, mu = np.asarray(counts, float), np.maximum(np.asarray(mu, float), MIN_MU)
    log_trend = np.log(np.asarray(trend, float))
    start = np.asarray(start, float)
    estimates, converged = np.empty(len(counts)), np.empty(len(counts), bool)
    for block in _blocks(len(counts)):
        y, m, prior = counts[block], mu[block], Prior(log_trend[block], float(prior_var))
        search = line_search(y, m, x, np.log(start[block]), min_log_alpha=np.log(min_disp / 10),
                             prior=prior)
        alpha = np.exp(search.log_alpha)
        done = search.iterations < MAXIT
        if (~done).any():
            alpha[~done] = grid_search(y[~done], m[~done], x, max_disp, prior.take(np.flatnonzero(~done)))
        estimates[block], converged[block] = np.clip(alpha, min_disp, max_disp), done
    return estimates, converged


class TrendFitError(RuntimeError):
    """DESeq2's parametric dispersion trend failed (non-positive coefficients or no convergence)."""


def _gamma_identity_glm(y: np.ndarray, x: np.ndarray, start: np.ndarray,
                        epsilon: float = 1e-8, maxit: int = 25) -> tuple[np.ndarray, bool]:
    """R's glm.fit for family Gamma(link = "identity") from ``start``: IRLS with weights
    1 / mu^2 (the working response of the identity link is y itself), converged when the
    deviance changes by less than epsilon relative, step halving while a mean is not positive."""
    def deviance(mu):
        return np.sum(-2.0 * (np.log(y / mu) - (y - mu) / mu))

    beta = np.asarray(start, float)
    mu = x @ beta
    if not (np.isfinite(mu).all() and (mu > 0).all()):
        raise TrendFitError("cannot find valid starting values")
    dev_old = deviance(mu)
    for _ in range(maxit):
        w = 1.0 / mu ** 2
        beta_old, beta = beta, np.linalg.solve((x.T * w) @ x, (x.T * w) @ y)
        mu = x @ beta
        for _ in range(maxit):
            if np.isfinite(mu).all() and (mu > 0).all():
                break
            beta = (beta + beta_old) / 2.0
            mu = x @ beta
        else:
            raise TrendFitError("no valid set of coefficients")
        dev = deviance(mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
            return beta, True
        dev_old = dev
    return beta, False


def parametric_trend(means: np.ndarray, dispersions: np.ndarray, min_disp: float = 1e-8) -> np.ndarray:
    """parametricDispersionFit on the genes estimateDispersionsFit uses (gene-wise estimate
    above 100 x minDisp): coefficients (a0, a1) of a0 + a1 / mean. Raises TrendFitError."""
    means, dispersions = np.asarray(means, float), np.asarray(dispersions, float)
    use = dispersions > 100 * min_disp
    means, dispersions = means[use], dispersions[use]
    coefs = np.array([0.1, 1.0])
    for _ in range(11):
        residuals = dispersions / (coefs[0] + coefs[1] / means)
        good = (residuals > 1e-4) & (residuals < 15)
        design = np.column_stack([np.ones(good.sum()), 1.0 / means[good]])
        old, (coefs, converged) = coefs, _gamma_identity_glm(dispersions[good], design, coefs)
        if not (coefs > 0).all():
            raise TrendFitError("parametric dispersion fit failed")
        if np.sum(np.log(coefs / old) ** 2) < 1e-6 and converged:
            return coefs
    raise TrendFitError("dispersion fit did not converge")


BETA_TOL = 1e-8          # fitNbinomGLMs betaTol
BETA_MAXIT = 100        # fitNbinomGLMs maxit
LARGE_BETA = 30.0       # fitBeta stops (and optim is bounded) at |beta| = 30
RIDGE_LOG2 = 1e-6       # fitNbinomGLMs' wide prior lambda, on the log2 scale


def _nb_log_density(counts: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """log dnbinom(counts, mu = mu, size = 1 / alpha), elementwise (alpha per gene row)."""
    size = 1.0 / alpha
    return (gammaln(counts + size) - gammaln(size) - gammaln(counts + 1.0)
            + size * np.log(size / (size + mu)) + counts * np.log(mu / (size + mu)))


def _solve_weighted(x: np.ndarray, w: np.ndarray, z: np.ndarray, ridge: np.ndarray) -> np.ndarray:
    """(X' W X + ridge)^-1 X' W z for each gene row of w and z."""
    return np.linalg.solve(_design_products(x, w) + ridge, np.einsum("ni,gn->gi", x, w * z)[..., None])[..., 0]


class GLMFit(NamedTuple):
    beta: np.ndarray          # natural-log coefficients, genes x p
    mu: np.ndarray            # fitted means (not floored), genes x samples
    hat: np.ndarray           # hat-matrix diagonals, genes x samples
    converged: np.ndarray     # IRLS converged, or else optim did
    iterations: np.ndarray    # IRLS steps, maxit where it diverged (fitBeta's iter)


def fit_beta(counts: np.ndarray, size_factors: np.ndarray, x: np.ndarray, alpha: np.ndarray,
             min_mu: float = MIN_MU, tol: float = BETA_TOL, maxit: int = BETA_MAXIT) -> GLMFit:
    """fitNbinomGLMs without a beta prior: fitBeta's IRLS for all genes in lock step, then, for
    genes it did not converge for, fitNbinomGLMsOptim's L-BFGS-B on the log2 scale from the
    IRLS estimate (or from the initial estimate where IRLS diverged), as DESeq2 does.
    ``counts`` are genes x samples."""
    counts, alpha = np.asarray(counts, float), np.asarray(alpha, float)
    blocks = [_fit_beta_block(counts[b], size_factors, x, alpha[b], min_mu, tol, maxit)
              for b in _blocks(len(counts))]
    return GLMFit(*(np.concatenate(parts) for parts in zip(*blocks)))


def _fit_beta_block(counts, size_factors, x, alpha, min_mu, tol, maxit) -> GLMFit:
    n_genes, p = len(counts), x.shape[1]
    ridge = np.eye(p) * RIDGE_LOG2 / np.log(2) ** 2   # lambda on the natural-log scale
    q, r = np.linalg.qr(x)
    beta_init = np.linalg.solve(r, q.T @ np.log(counts / size_factors + 0.1).T).T
    beta = beta_init.copy()
    mu = np.maximum(size_factors * np.exp(beta @ x.T), min_mu)
    iterations = np.zeros(n_genes, int)
    dev_old = np.zeros(n_genes)
    active = np.ones(n_genes, bool)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for t in range(maxit):
            rows = np.flatnonzero(active)
            if not len(rows):
                break
            iterations[rows] += 1
            m, a = mu[rows], alpha[rows, None]
            w = m / (1.0 + a * m)
            z = np.log(m / size_factors) + (counts[rows] - m) / m
            new = _solve_weighted(x, w, z, ridge)
            beta[rows] = new
            # diverging: fitBeta stops, keeps the previous means and marks the gene for optim
            diverged = (np.abs(new) > LARGE_BETA).any(axis=1)
            iterations[rows[diverged]] = maxit
            active[rows[diverged]] = False
            rows, new = rows[~diverged], new[~diverged]
            mu[rows] = np.maximum(size_factors * np.exp(new @ x.T), min_mu)
            dev = -2.0 * _nb_log_density(counts[rows], mu[rows], alpha[rows, None]).sum(axis=1)
            conv_test = np.abs(dev - dev_old[rows]) / (np.abs(dev) + 0.1)
            iterations[rows[np.isnan(conv_test)]] = maxit
            done = np.isnan(conv_test) | ((t > 0) & (conv_test < tol))
            active[rows[done]] = False
            dev_old[rows] = dev
    # fitBeta's hat diagonals, from the means of its last step (also for genes refitted below)
    w = mu / (1.0 + alpha[:, None] * mu)
    inverse = np.linalg.inv(_design_products(x, w) + ridge)
    hat = w * np.einsum("ni,gij,nj->gn", x, inverse, x)
    stable = np.isfinite(beta).all(axis=1)
    variance = np.einsum("gij,gjk,gkl->gil", inverse, _design_products(x, w), inverse)
    positive = (np.diagonal(variance, axis1=1, axis2=2) > 0).all(axis=1)
    converged = iterations < maxit
    for g in np.flatnonzero(~converged | ~stable | ~positive):
        log2_beta = beta[g] / np.log(2)
        # DESeq2 starts from the natural-log initial estimate as it is when IRLS diverged
        start = log2_beta if stable[g] and (np.abs(log2_beta) < LARGE_BETA).all() else beta_init[g]
        beta[g], converged[g] = _optim_beta(counts[g], size_factors, x, alpha[g], start)
    return GLMFit(beta, size_factors * np.exp(beta @ x.T), hat, converged, iterations)


def _optim_beta(counts: np.ndarray, size_factors: np.ndarray, x: np.ndarray, alpha: float,
                start: np.ndarray) -> tuple[np.ndarray, bool]:
    """fitNbinomGLMsOptim for one gene: minimise -(NB log likelihood + N(0, 1/lambda) log prior)
    over log2 coefficients in [-30, 30] with L-BFGS-B (R optim's factr 1e7, m 5; the analytic
    gradient where R differentiates numerically). Returns natural-log coefficients."""
    size = 1.0 / alpha

    def objective(log2_beta):
        mu = size_factors * 2.0 ** (x @ log2_beta)
        value = -(_nb_log_density(counts, mu, alpha).sum() - 0.5 * RIDGE_LOG2 * (log2_beta ** 2).sum())
        score = x.T @ ((counts - mu) * size / (size + mu)) * np.log(2)
        gradient = -(score - RIDGE_LOG2 * log2_beta)
        return (value, gradient) if np.isfinite(value) else (1e300, np.zeros_like(log2_beta))

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = minimize(objective, np.asarray(start, float), jac=True, method="L-BFGS-B",
                          bounds=[(-LARGE_BETA, LARGE_BETA)] * x.shape[1],
                          options={"ftol": 1e7 * np.finfo(float).eps, "gtol": 0.0, "maxcor": 5, "maxiter": 100})
    return result.x * np.log(2), bool(result.success)


class DESeq2Inference(DefaultInference):
    """PyDESeq2's inference routines replaced by DESeq2's: GLM fit (``irls``, ``lin_reg_mu``),
    dispersion fits (``alpha_mle``) and the Wald test's floored means (``wald_test``).

    ``alpha_mle`` serves both dispersion steps; PyDESeq2's own MAP step (which runs for the
    genes refitted after outlier replacement) calls it without a starting value and so starts at
    the trend, :class:`DESeq2DataSet` passes DESeq2's. ``irls`` ignores PyDESeq2's ``maxiter``
    (250) and coefficient bounds in favour of DESeq2's 100 steps and |log2 coefficient| <= 30."""

    def alpha_mle(self, counts, design_matrix, mu, alpha_hat, min_disp, max_disp, prior_disp_var=None,
                  cr_reg=True, prior_reg=False, optimizer="L-BFGS-B", start=None):
        if not cr_reg:
            raise ValueError("DESeq2's dispersion fit always has the Cox-Reid term (useCR = TRUE)")
        x = np.asarray(design_matrix, float)
        counts, mu = np.asarray(counts, float).T, np.asarray(mu, float).T
        if not prior_reg:
            return genewise_dispersions(counts, mu, x, alpha_hat, min_disp, max_disp)
        start = alpha_hat if start is None else start
        return map_dispersions(counts, mu, x, start, alpha_hat, prior_disp_var, min_disp, max_disp)

    def irls(self, counts, size_factors, design_matrix, disp, min_mu, beta_tol, min_beta=-30, max_beta=30,
             optimizer="L-BFGS-B", maxiter=250):
        fit = fit_beta(np.asarray(counts, float).T, np.asarray(size_factors, float),
                       np.asarray(design_matrix, float), np.asarray(disp, float), min_mu=min_mu, tol=beta_tol)
        return fit.beta, fit.mu.T, fit.hat.T, fit.converged

    def lin_reg_mu(self, counts, size_factors, design_matrix, min_mu):
        """linearModelMuNormalized: least squares of the normalised counts on the design."""
        normed = np.asarray(counts, float) / np.asarray(size_factors, float)[:, None]
        coefficients = np.linalg.lstsq(design_matrix, normed, rcond=None)[0]
        return np.maximum(np.asarray(size_factors, float)[:, None] * (design_matrix @ coefficients), min_mu)

    def wald_test(self, design_matrix, disp, lfc, mu, ridge_factor, contrast, lfc_null,
                  alt_hypothesis=None):
        return super().wald_test(design_matrix=design_matrix, disp=disp, lfc=lfc,
                                 mu=np.maximum(mu, MIN_MU), ridge_factor=ridge_factor,
                                 contrast=contrast, lfc_null=lfc_null, alt_hypothesis=alt_hypothesis)


class DESeq2DataSet(DeseqDataSet):
    """PyDESeq2's DeseqDataSet with DESeq2's parametric trend fit and MAP starting values
    (use with :class:`DESeq2Inference`)."""

    def _fit_parametric_dispersion_trend(self, vst: bool = False):
        if vst:   # the VST's own trend is left to PyDESeq2
            return super()._fit_parametric_dispersion_trend(vst)
        genes = self.non_zero_genes
        try:
            coefs = parametric_trend(self.var.loc[genes, "_normed_means"].to_numpy(),
                                     self.var.loc[genes, "genewise_dispersions"].to_numpy(), self.min_disp)
        except TrendFitError as error:
            warnings.warn(f"DESeq2's parametric dispersion trend failed ({error}); DESeq2 would "
                          "fall back to a local fit, this uses the mean of the gene-wise estimates",
                          UserWarning, stacklevel=2)
            self._fit_mean_dispersion_trend(vst)
            return
        self.uns["trend_coeffs"] = pd.Series(coefs, index=["a0", "a1"])
        self.uns["disp_function_type"] = "parametric"
        self.var["fitted_dispersions"] = np.full(self.n_vars, np.nan)
        self.var.loc[self.var["non_zero"], "fitted_dispersions"] = self.disp_function(
            self.var.loc[self.var["non_zero"], "_normed_means"])

    def fit_MAP_dispersions(self) -> None:
        if "prior_disp_var" not in self.uns:
            self.fit_dispersion_prior()
        nonzero = self.var["non_zero"].to_numpy(bool)
        genewise = self.var.loc[nonzero, "genewise_dispersions"].to_numpy()
        trend = self.var.loc[nonzero, "fitted_dispersions"].to_numpy()
        dispersions, converged = self.inference.alpha_mle(
            counts=self.X[:, self.non_zero_idx], design_matrix=self.obsm["design_matrix"].values,
            mu=self.layers["_mu_hat"][:, self.non_zero_idx], alpha_hat=trend,
            min_disp=self.min_disp, max_disp=self.max_disp,
            prior_disp_var=self.uns["prior_disp_var"].item(), cr_reg=True, prior_reg=True,
            start=map_start(genewise, trend))
        self.var["MAP_dispersions"] = np.full(self.n_vars, np.nan)
        self.var.loc[nonzero, "MAP_dispersions"] = dispersions
        self.var["_MAP_converged"] = pd.array([pd.NA] * self.n_vars, dtype="boolean")
        self.var.loc[nonzero, "_MAP_converged"] = converged
        # dispersion outliers keep their gene-wise estimate (as PyDESeq2 and DESeq2 do)
        self.var["dispersions"] = self.var["MAP_dispersions"].copy()
        self.var["_outlier_genes"] = np.log(self.var["genewise_dispersions"]) > np.log(
            self.var["fitted_dispersions"]) + 2 * np.sqrt(self.uns["_squared_logres"])
        self.var.loc[self.var["_outlier_genes"], "dispersions"] = self.var.loc[
            self.var["_outlier_genes"], "genewise_dispersions"]
        if self.low_memory:
            del self.layers["_mu_hat"]

    def _refit_without_outliers(self) -> None:
        """PyDESeq2's refit of the genes whose Cook's outliers were replaced (refitWithoutOutliers:
        same size factors, trend and prior variance, new gene-wise and MAP dispersions and
        coefficients), with the refitted genes fitted by this class: PyDESeq2 builds a plain
        DeseqDataSet for them, whose MAP search starts at the trend (measured: up to 3.7e-4
        relative off DESeq2's dispersions, 1e-14 with DESeq2's start)."""
        if "replaced" not in self.var:
            self._replace_outliers()
        new_all_zeroes = (self.counts_to_refit.X == 0).all(axis=0)
        self.new_all_zeroes_genes = self.counts_to_refit.var_names[new_all_zeroes]
        self.var["refitted"] = self.var["replaced"].copy()
        self.var.loc[self.var["refitted"], "refitted"] = ~new_all_zeroes
        if new_all_zeroes.sum() > 0:
            self.var.loc[self.new_all_zeroes_genes, "_normed_means"] = 0
            self.varm["LFC"].loc[self.new_all_zeroes_genes, :] = 0
        if self.var["refitted"].sum() == 0:
            return
        self.counts_to_refit = self.counts_to_refit[:, ~new_all_zeroes].copy()
        sub = type(self)(
            counts=pd.DataFrame(self.counts_to_refit.X, index=self.counts_to_refit.obs_names,
                                columns=self.counts_to_refit.var_names),
            metadata=self.obs, design=self.design, min_mu=self.min_mu, min_disp=self.min_disp,
            max_disp=self.max_disp, refit_cooks=self.refit_cooks, min_replicates=self.min_replicates,
            beta_tol=self.beta_tol, inference=self.inference, quiet=self.quiet)
        sub.obs["size_factors"] = self.counts_to_refit.obs["size_factors"]
        sub.layers["normed_counts"] = sub.X / sub.obs["size_factors"].values[:, None]
        sub.fit_genewise_dispersions()
        # the trend and the prior variance are not refitted
        for key in ["disp_function_type", "trend_coeffs", "mean_disp", "_squared_logres", "prior_disp_var"]:
            if key in self.uns:
                sub.uns[key] = self.uns[key]
        sub.var["_normed_means"] = sub.layers["normed_counts"].mean(axis=0)
        sub.var["fitted_dispersions"] = sub.disp_function(sub.var["_normed_means"])
        sub.fit_MAP_dispersions()
        sub.fit_LFC()
        refitted = self.var["refitted"]
        for column in ["_normed_means", "genewise_dispersions", "fitted_dispersions", "dispersions"]:
            self.var.loc[refitted, column] = sub.var[column]
        self.varm["LFC"][refitted] = sub.varm["LFC"]
        self.layers["replace_cooks"] = self.layers["cooks"].copy()
        for column in np.flatnonzero(refitted):
            self.layers["replace_cooks"][self.obs["replaceable"], column] = 0.0
