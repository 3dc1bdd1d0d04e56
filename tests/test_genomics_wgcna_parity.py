"""WGCNA against the R package on stored outputs (tests/reference/wgcna/make.R): simulateDatExpr
data, pickSoftThreshold, TOM, average linkage, cutreeDynamic (hybrid, deepSplit 2, PAM stage,
minClusterSize 30) and mergeCloseModules (cutHeight 0.25), unsigned and signed networks."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from radiogenomics.genomics import wgcna

REFERENCE = Path(__file__).parent / "reference" / "wgcna"


@pytest.fixture(scope="module")
def expression():
    return pd.read_csv(REFERENCE / "expression.csv", index_col=0)


@pytest.mark.parametrize("network_type", ["unsigned", "signed"])
def test_power_modules_and_sizes_match_wgcna(expression, network_type):
    soft_power = pd.read_csv(REFERENCE / f"{network_type}_soft_power.csv")
    modules = pd.read_csv(REFERENCE / f"{network_type}_modules.csv", index_col=0)
    result = wgcna.run_wgcna(expression, powers=range(1, 21), network_type=network_type, r2_threshold=0.8,
                             min_module_size=30, deep_split=2, pam_stage=True, min_kme=None,
                             merge_cut_height=0.25, top_variable_genes=None)
    assert result.power == soft_power["powerEstimate"].iloc[0]
    # R's SFT.R.sq column is the unsigned R^2; ours carries -sign(slope) as WGCNA's plots do
    np.testing.assert_allclose(result.soft_power_table["sft_r2"].abs(), soft_power["SFT.R.sq"], atol=1e-6)
    np.testing.assert_allclose(result.soft_power_table["slope"], soft_power["slope"], rtol=1e-6)
    ours = result.modules.set_index("gene").loc[modules.index, "module"]
    assert adjusted_rand_score(modules["merged"], ours) >= 0.99
    assert sorted(ours.value_counts().tolist()) == sorted(modules["merged"].value_counts().tolist())
    assert (ours == wgcna.GREY).sum() == (modules["merged"] == "grey").sum()


def test_dynamic_cut_alone_equals_cutree_dynamic(expression):
    modules = pd.read_csv(REFERENCE / "unsigned_modules.csv", index_col=0)
    values = expression.to_numpy(float)
    tom = wgcna.topological_overlap(wgcna.adjacency(wgcna.correlation(values), 2, "unsigned"))
    dissimilarity = np.clip(1.0 - tom, 0.0, None)
    np.fill_diagonal(dissimilarity, 0.0)
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    labels = wgcna.dynamic_tree_cut(linkage(squareform(dissimilarity, checks=False), "average"), dissimilarity,
                                    min_module_size=30, deep_split=2, pam_stage=True)
    np.testing.assert_array_equal(labels, modules["dynamic"].to_numpy())
