"""limma-voom (Law et al. 2014; Smyth 2004): voom, lmFit with precision weights, eBayes.

Written here rather than taken from InMoose because InMoose's wheels pin numpy/scipy versions
other than this project's; the steps follow limma 3.54's R code line by line and are tested
against R to 1e-6 on logFC and t (tests/test_genomics_limma.py, tests/reference/limma/):

* voom: log2-CPM ``log2((count + 0.5) / (lib.size + 1) * 1e6)`` with lib.size the column sums;
  an unweighted linear fit gives sqrt(sigma) against the mean log2 count; R's ``lowess``
  (span 0.5, 3 robustness iterations, delta 1 % of the range) of that trend, read at each
  fitted log2 count, gives the weights ``1 / trend^4``.
* lmFit: weighted least squares per gene; ``stdev.unscaled`` from (X'WX)^-1.
* eBayes: ``fitFDist`` of the residual variances (prior df and scale by moments of log s^2),
  posterior variances, moderated t on ``df.residual + df.prior`` (capped at the pooled df).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import model_matrix
from scipy.special import digamma, polygamma
from scipy.stats import false_discovery_control
from scipy.stats import t as student_t
from statsmodels.nonparametric.smoothers_lowess import lowess


@dataclass
class LinearFit:
    coefficients: np.ndarray     # genes x coefficients
    stdev_unscaled: np.ndarray   # genes x coefficients
    sigma: np.ndarray            # genes
    df_residual: int


def lm_fit(expression: np.ndarray, design: np.ndarray, weights: np.ndarray | None = None) -> LinearFit:
    """Per-gene (weighted) least squares of a genes x samples matrix on a samples x p design."""
    n_samples, n_coef = design.shape
    w = np.ones_like(expression) if weights is None else weights
    xtwx = np.einsum("si,gs,sj->gij", design, w, design)
    xtwy = np.einsum("si,gs,gs->gi", design, w, expression)
    coefficients = np.linalg.solve(xtwx, xtwy[..., None])[..., 0]
    covariance = np.linalg.inv(xtwx)
    residuals = expression - coefficients @ design.T
    df_residual = n_samples - n_coef
    sigma = np.sqrt((w * residuals**2).sum(axis=1) / df_residual)
    stdev_unscaled = np.sqrt(np.diagonal(covariance, axis1=1, axis2=2))
    return LinearFit(coefficients, stdev_unscaled, sigma, df_residual)


def voom(counts: np.ndarray, design: np.ndarray, span: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """log2-CPM matrix and its precision weights (limma ``voom``, library sizes = column sums)."""
    counts = np.asarray(counts, float)
    lib_size = counts.sum(axis=0)
    log_cpm = np.log2((counts + 0.5) / (lib_size + 1.0) * 1e6)
    fit = lm_fit(log_cpm, design)
    sx = log_cpm.mean(axis=1) + np.mean(np.log2(lib_size + 1.0)) - np.log2(1e6)
    sy = np.sqrt(fit.sigma)
    expressed = counts.sum(axis=1) > 0
    sx, sy = sx[expressed], sy[expressed]
    trend = lowess(sy, sx, frac=span, it=3, delta=0.01 * (sx.max() - sx.min()), return_sorted=True)
    # approxfun(ties = mean, rule = 2): average tied x, constant beyond the ends
    x_knots, tie_index = np.unique(trend[:, 0], return_inverse=True)
    y_knots = np.bincount(tie_index, weights=trend[:, 1]) / np.bincount(tie_index)
    fitted_log_count = np.log2(1e-6 * 2.0 ** (fit.coefficients @ design.T) * (lib_size + 1.0))
    weights = 1.0 / np.interp(fitted_log_count, x_knots, y_knots) ** 4
    return log_cpm, weights


def trigamma_inverse(x: float) -> float:
    """y with trigamma(y) = x by limma's Newton iteration."""
    if x > 1e7:
        return 1.0 / np.sqrt(x)
    if x < 1e-6:
        return 1.0 / x
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = polygamma(1, y)
        step = tri * (1.0 - tri / x) / polygamma(2, y)
        y += step
        if -step / y < 1e-8:
            break
    return float(y)


def fit_f_distribution(variances: np.ndarray, df: float) -> tuple[float, float]:
    """limma ``fitFDist`` without covariate: (prior scale s0^2, prior df)."""
    x = variances[np.isfinite(variances) & (variances > -1e-15)]
    x = np.maximum(x, 0.0)
    median = np.median(x)
    x = np.maximum(x, 1e-5 * (median if median > 0 else 1.0))
    e = np.log(x) - digamma(df / 2) + np.log(df / 2)
    e_mean = e.mean()
    e_var = ((e - e_mean) ** 2).sum() / (len(e) - 1) - polygamma(1, df / 2)
    if e_var > 0:
        df_prior = 2.0 * trigamma_inverse(e_var)
        return float(np.exp(e_mean + digamma(df_prior / 2) - np.log(df_prior / 2))), df_prior
    return float(x.mean()), np.inf


def ebayes_t(fit: LinearFit, coefficient: int) -> pd.DataFrame:
    """Moderated t, its p-value and the moderated SE of one coefficient (limma ``eBayes``)."""
    variances = fit.sigma**2
    df = fit.df_residual
    s2_prior, df_prior = fit_f_distribution(variances, df)
    if np.isfinite(df_prior):
        s2_post = (df * variances + df_prior * s2_prior) / (df + df_prior)
    else:
        s2_post = np.full_like(variances, s2_prior)
    df_total = min(df + df_prior, df * len(variances))
    se = fit.stdev_unscaled[:, coefficient] * np.sqrt(s2_post)
    t = fit.coefficients[:, coefficient] / se
    return pd.DataFrame({"logFC": fit.coefficients[:, coefficient], "se": se, "t": t,
                         "pvalue": 2.0 * student_t.sf(np.abs(t), df_total)})


def voom_table(counts: pd.DataFrame, design_data: pd.DataFrame, formula: str, factor: str,
               test: str) -> pd.DataFrame:
    """voom + lmFit + eBayes of ``factor``'s ``test`` coefficient as a DESeq2-style results table
    (index gene; baseMean = mean median-of-ratios normalised count, lfcSE = moderated SE)."""
    from radiogenomics.genomics.inputs import size_factors

    design = model_matrix(formula, design_data.loc[counts.columns])
    columns = list(design.columns)
    coefficient = next(i for i, c in enumerate(columns) if c.startswith(f"{factor}[") and test in c)
    values = counts.to_numpy(float)
    log_cpm, weights = voom(values, design.to_numpy(float))
    moderated = ebayes_t(lm_fit(log_cpm, design.to_numpy(float), weights), coefficient)
    table = pd.DataFrame({
        "baseMean": (counts / size_factors(counts)).mean(axis=1).to_numpy(),
        "log2FoldChange": moderated["logFC"].to_numpy(), "lfcSE": moderated["se"].to_numpy(),
        "stat": moderated["t"].to_numpy(), "pvalue": moderated["pvalue"].to_numpy(),
        "padj": false_discovery_control(moderated["pvalue"].to_numpy(), method="bh"),
    }, index=pd.Index(counts.index, name="gene"))
    return table
