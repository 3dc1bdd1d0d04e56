"""CIBERSORT-style nu-SVR deconvolution on mixtures of a known signature matrix."""

import numpy as np
import pandas as pd
from scipy.stats import pearsonr

from radiogenomics.genomics import deconvolution


def signature_matrix(n_genes=120, n_cells=5, seed=1):
    rng = np.random.default_rng(seed)
    # marker-like signature: each cell type has its own highly expressed genes
    sig = rng.lognormal(2.0, 0.5, size=(n_genes, n_cells))
    for c in range(n_cells):
        sig[c * 15 : (c + 1) * 15, c] *= 20
    return pd.DataFrame(sig, index=[f"G{i}" for i in range(n_genes)],
                        columns=[f"cell{c}" for c in range(n_cells)])


def fractions(n_samples, n_cells, seed):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(n_cells), size=n_samples)


def test_noiseless_mixtures_give_exact_fractions():
    sig = signature_matrix()
    truth = fractions(6, sig.shape[1], seed=2)
    mixtures = pd.DataFrame(sig.to_numpy() @ truth.T, index=sig.index,
                            columns=[f"S{j}" for j in range(6)])
    result = deconvolution.deconvolve(mixtures, sig, permutations=0)
    np.testing.assert_allclose(result[sig.columns].to_numpy(), truth, atol=1e-3)
    np.testing.assert_allclose(result[sig.columns].sum(axis=1), 1.0)
    assert (result["correlation"] > 0.999).all()


def test_noisy_mixtures_correlate_per_cell_type_and_pvalues_are_small():
    sig = signature_matrix()
    truth = fractions(30, sig.shape[1], seed=3)
    rng = np.random.default_rng(4)
    clean = sig.to_numpy() @ truth.T
    noisy = clean * rng.lognormal(0.0, 0.2, size=clean.shape)
    # extra genes outside the signature must be ignored
    extra = pd.DataFrame(rng.lognormal(3, 1, size=(50, 30)), index=[f"X{i}" for i in range(50)])
    mixtures = pd.concat([pd.DataFrame(noisy, index=sig.index), extra])
    mixtures.columns = [f"S{j}" for j in range(30)]
    result = deconvolution.deconvolve(mixtures, sig, permutations=30, seed=5)
    for c, cell in enumerate(sig.columns):
        assert pearsonr(result[cell], truth[:, c])[0] >= 0.9
    assert (result["pvalue"] < 0.05).all()
    again = deconvolution.deconvolve(mixtures, sig, permutations=30, seed=5)
    pd.testing.assert_frame_equal(result, again)


def test_random_mixtures_are_not_significant():
    sig = signature_matrix()
    rng = np.random.default_rng(6)
    mixtures = pd.DataFrame(rng.permutation(sig.to_numpy().ravel())[: sig.shape[0] * 4].reshape(-1, 4),
                            index=sig.index)
    result = deconvolution.deconvolve(mixtures, sig, permutations=40, seed=7)
    assert (result["pvalue"] > 0.05).mean() >= 0.5


def test_svr_tolerance_is_passed_to_the_solver_and_tight_tolerances_converge():
    sig = signature_matrix()
    truth = fractions(4, sig.shape[1], seed=7)
    rng = np.random.default_rng(8)
    mixtures = pd.DataFrame(sig.to_numpy() @ truth.T * rng.lognormal(0, 0.3, size=(len(sig), 4)),
                            index=sig.index, columns=[f"S{j}" for j in range(4)])
    loose, tight, tighter = (deconvolution.deconvolve(mixtures, sig, permutations=0, svr_tolerance=tol)[sig.columns]
                             .to_numpy() for tol in (1e-1, 1e-8, 1e-10))
    np.testing.assert_allclose(tight, tighter, atol=1e-6)
    assert np.abs(loose - tight).max() > 1e-4
