"""WGCNA core: TOM by hand, scale-free fit against scipy, eigengenes against sklearn PCA,
planted co-expression modules recovered."""

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import linkage as scipy_linkage
from scipy.spatial.distance import pdist, squareform
from scipy.stats import linregress, pearsonr
from sklearn.decomposition import PCA

from radiogenomics.genomics import wgcna


def simulate_modules(n_samples=80, module_size=60, n_modules=3, n_noise=150, seed=0):
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_samples, n_modules))
    blocks, truth = [], []
    for m in range(n_modules):
        loadings = rng.uniform(0.6, 0.9, size=module_size) * rng.choice([1, 1, 1, -1], size=module_size)
        blocks.append(factors[:, [m]] * loadings + rng.normal(scale=0.5, size=(n_samples, module_size)))
        truth += [f"M{m}"] * module_size
    blocks.append(rng.normal(size=(n_samples, n_noise)))
    truth += ["noise"] * n_noise
    expression = np.hstack(blocks) + 8.0
    genes = [f"G{i:03d}" for i in range(expression.shape[1])]
    order = rng.permutation(len(genes))  # modules are not contiguous in the input
    frame = pd.DataFrame(expression[:, order], columns=[genes[i] for i in order],
                         index=[f"P{j:02d}" for j in range(n_samples)])
    return frame, pd.Series(truth, index=genes).loc[frame.columns], pd.Series(factors[:, 0], index=frame.index)


def test_tom_matches_hand_computation():
    adj = np.array([[1, .8, .6, .1], [.8, 1, .5, .2], [.6, .5, 1, .3], [.1, .2, .3, 1]])
    tom = wgcna.topological_overlap(adj)
    # TOM_01 = (a02 a21 + a03 a31 + a01) / (min(k0, k1) + 1 - a01) = (.30 + .02 + .8) / (1.5 + 1 - .8)
    assert tom[0, 1] == pytest.approx(1.12 / 1.7)
    assert tom[0, 3] == pytest.approx((0.16 + 0.18 + 0.1) / (0.6 + 1 - 0.1))
    assert tom[2, 3] == pytest.approx((0.06 + 0.10 + 0.3) / (0.6 + 1 - 0.3))
    np.testing.assert_allclose(tom, tom.T)
    np.testing.assert_allclose(np.diag(tom), 1.0)


def test_adjacency_and_scale_free_fit_match_independent_computations():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 40))
    corr = wgcna.correlation(x)
    np.testing.assert_allclose(corr, np.corrcoef(x.T), atol=1e-12)
    np.testing.assert_allclose(wgcna.adjacency(corr, 3, "unsigned"), np.abs(np.corrcoef(x.T)) ** 3, atol=1e-12)
    np.testing.assert_allclose(wgcna.adjacency(corr, 2, "signed"), ((1 + np.corrcoef(x.T)) / 2) ** 2, atol=1e-12)
    k = rng.pareto(2.0, size=500) + 1
    counts, edges = np.histogram(k, bins=10)
    sums, _ = np.histogram(k, bins=edges, weights=k)
    mids = (edges[:-1] + edges[1:]) / 2
    mean_k = np.where(counts > 0, sums / np.maximum(counts, 1), mids)
    fit = linregress(np.log10(mean_k), np.log10(counts / 500 + 1e-9))
    r2, slope = wgcna.scale_free_fit(k)
    assert r2 == pytest.approx(fit.rvalue ** 2)
    assert slope == pytest.approx(fit.slope)


def test_eigengene_is_first_principal_component_aligned_with_mean():
    expression, truth, _ = simulate_modules(n_noise=10)
    values = expression.to_numpy()
    labels = (truth == "M1").astype(int).to_numpy()
    me = wgcna.eigengenes(values, labels)[1].to_numpy()
    block = values[:, labels == 1]
    pc = PCA(n_components=1).fit_transform((block - block.mean(0)) / block.std(0))[:, 0]
    assert abs(np.corrcoef(me, pc)[0, 1]) == pytest.approx(1.0)
    standardised = (block - block.mean(0)) / block.std(0)
    assert np.corrcoef(me, standardised.mean(axis=1))[0, 1] > 0


def test_planted_modules_are_recovered_and_trait_module_is_found():
    expression, truth, trait = simulate_modules()
    result = wgcna.run_wgcna(expression, min_module_size=20, network_type="signed")
    modules = result.modules.set_index("gene")["module"]
    for planted in ["M0", "M1", "M2"]:
        members = set(truth.index[truth == planted])
        jaccard = max(len(members & set(modules.index[modules == m])) / len(members | set(modules.index[modules == m]))
                      for m in set(modules) - {wgcna.GREY})
        assert jaccard >= 0.7, (planted, jaccard)
    traits = pd.DataFrame({"score": trait + np.random.default_rng(2).normal(scale=0.5, size=len(trait))})
    table = wgcna.module_trait_correlation(result.eigengenes, traits)
    best = table.loc[table["r"].abs().idxmax(), "module"]
    best_members = set(modules.index[modules == best])
    assert len(best_members & set(truth.index[truth == "M0"])) / len(best_members) > 0.9
    row = table.loc[table["r"].abs().idxmax()]
    r, p = pearsonr(result.eigengenes[best], traits["score"])
    assert row["r"] == pytest.approx(r) and row["pvalue"] == pytest.approx(p)
    assert 1 <= result.power <= 20 and len(result.soft_power_table) == 20


def test_dynamic_tree_cut_separates_two_tight_groups_and_leaves_the_outliers_grey():
    rng = np.random.default_rng(0)
    points = np.r_[rng.normal(0, 0.1, (40, 2)), rng.normal(5, 0.1, (30, 2)), [[40.0, 40.0], [-30.0, 20.0]]]
    distances = squareform(pdist(points))
    labels = wgcna.dynamic_tree_cut(scipy_linkage(pdist(points), "average"), distances, min_module_size=10,
                                    pam_stage=False, cut_height=3.0)
    assert labels.tolist() == [1] * 40 + [2] * 30 + [0, 0]
