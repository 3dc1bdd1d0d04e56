"""CIBERSORT-style immune deconvolution by linear nu-support-vector regression.

Follows Newman et al. 2015 (CIBERSORT R code, CoreAlg): the signature matrix is standardised
with its global mean and SD, each mixture with its own; nu-SVR (linear kernel, cost 1) is fitted
for nu in {0.25, 0.5, 0.75} and the fit with the lowest RMSE is kept; negative weights are set
to zero and the rest normalised to sum 1. Permutation p-values compare the fit correlation with
that of random mixtures drawn from the pooled mixture values. Written here because CIBERSORT is
not an installable Python library; sklearn's NuSVR does the optimisation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.svm import NuSVR

from radiogenomics.core.cases import BadCase

NUS = (0.25, 0.5, 0.75)


def _standardise_signature(signature: np.ndarray) -> np.ndarray:
    return (signature - signature.mean()) / signature.std(ddof=1)


def _core_fit(signature_std: np.ndarray, mixture: np.ndarray, nus=NUS,
              svr_tolerance: float = 1e-3) -> tuple[np.ndarray, float, float]:
    """One standardised mixture -> (fractions, RMSE, Pearson r) for the best nu."""
    y = (mixture - mixture.mean()) / mixture.std(ddof=1)
    best = None
    for nu in nus:
        model = NuSVR(kernel="linear", nu=nu, C=1.0, tol=svr_tolerance).fit(signature_std, y)
        weights = np.clip(model.coef_.ravel(), 0.0, None)
        if weights.sum() > 0:
            weights = weights / weights.sum()
        fitted = signature_std @ weights
        rmse = float(np.sqrt(np.mean((fitted - y) ** 2)))
        r = float(np.corrcoef(fitted, y)[0, 1]) if fitted.std() > 0 else 0.0
        if best is None or rmse < best[1]:
            best = (weights, rmse, r)
    return best


def deconvolve(mixtures: pd.DataFrame, signature: pd.DataFrame, permutations: int = 100,
               seed: int = 0, nus=NUS, svr_tolerance: float = 1e-3) -> pd.DataFrame:
    """Estimate cell fractions per sample.

    ``svr_tolerance`` is the SVR solver's stopping tolerance (1e-3 is e1071's ``tolerance``
    default, which CIBERSORT uses, and scikit-learn's); smaller values converge further.

    ``mixtures`` is genes x samples in linear (not log) units, ``signature`` genes x cell types
    in the same units. Returns one row per sample: fractions per cell type, ``pvalue``
    (permutations; NaN when ``permutations`` is 0), ``correlation`` and ``rmse``.
    """
    genes = signature.index.intersection(mixtures.index)
    if len(genes) < signature.shape[1] + 2:
        raise BadCase("-", "signature matrix", f"only {len(genes)} signature genes are in the expression data",
                      "use a signature matrix with the same gene identifiers as the counts", stage="genomics")
    signature_std = _standardise_signature(signature.loc[genes].to_numpy(float))
    mix = mixtures.loc[genes].to_numpy(float)
    rng = np.random.default_rng(seed)
    null_r = np.array([
        _core_fit(signature_std, rng.choice(mix.ravel(), size=len(genes), replace=False), nus,
                  svr_tolerance)[2]
        for _ in range(permutations)
    ])
    rows = []
    for j, sample in enumerate(mixtures.columns):
        weights, rmse, r = _core_fit(signature_std, mix[:, j], nus, svr_tolerance)
        pvalue = float(np.mean(null_r >= r)) if permutations else np.nan
        rows.append([sample, *weights, pvalue, r, rmse])
    columns = ["sample", *signature.columns, "pvalue", "correlation", "rmse"]
    return pd.DataFrame(rows, columns=columns)
