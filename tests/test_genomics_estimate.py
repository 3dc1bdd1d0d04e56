"""ssGSEA / ESTIMATE against a direct implementation of the definition and gseapy."""

import gseapy
import numpy as np
import pandas as pd

from radiogenomics.genomics import estimate


def direct_ssgsea(values, genes, gene_set, alpha=0.25):
    """Loop over the ESTIMATE R code: rank-normalise, order, walk, sum of running differences."""
    n = len(values)
    ranks = pd.Series(values).rank(method="average").to_numpy()
    normalised = 10000 * ranks / n
    order = sorted(range(n), key=lambda i: (-normalised[i], i))
    members = [genes[i] in gene_set for i in order]
    n_in = sum(members)
    total_weight = sum(normalised[i] ** alpha for i, m in zip(order, members) if m)
    hit = miss = 0.0
    score = 0.0
    for i, member in zip(order, members):
        if member:
            hit += normalised[i] ** alpha / total_weight
        else:
            miss += 1 / (n - n_in)
        score += hit - miss
    return score


def example(seed=0, n_genes=60, n_samples=5):
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    expression = pd.DataFrame(rng.lognormal(3, 1, size=(n_genes, n_samples)), index=genes,
                              columns=[f"S{j}" for j in range(n_samples)])
    sets = {"STROMAL_SIGNATURE": genes[:20], "IMMUNE_SIGNATURE": genes[10:35]}
    expression.iloc[:20, 0] *= 10  # sample 0 is stroma-rich
    return expression, sets


def test_ssgsea_matches_direct_definition():
    expression, sets = example()
    ours = estimate.ssgsea(expression, sets)
    for sample in expression.columns:
        for name, genes in sets.items():
            expected = direct_ssgsea(expression[sample].to_numpy(), list(expression.index), set(genes))
            np.testing.assert_allclose(ours.loc[sample, name], expected, rtol=1e-10)
    assert ours["STROMAL_SIGNATURE"].idxmax() == "S0"


def test_ssgsea_matches_gseapy_unnormalised_es():
    expression, sets = example(seed=1)
    ours = estimate.ssgsea(expression, sets)
    res = gseapy.ssgsea(expression, sets, sample_norm_method="rank", correl_norm_type="rank",
                        weight=0.25, min_size=1, max_size=1000, threads=1, outdir=None, seed=0)
    table = res.res2d.pivot(index="Name", columns="Term", values="ES").astype(float)
    np.testing.assert_allclose(table.loc[ours.index, ours.columns], ours, rtol=1e-6)


def test_estimate_score_and_purity_formula():
    expression, sets = example()
    scores = estimate.estimate_scores(expression, sets).set_index("sample")
    np.testing.assert_allclose(scores["estimate_score"], scores["stromal_score"] + scores["immune_score"])
    # Yoshihara 2013: purity = cos(0.6049872018 + 0.0001467884 * ESTIMATE); at score 0, cos(0.605)
    np.testing.assert_allclose(np.cos(0.6049872018), 0.8225, atol=1e-4)
    np.testing.assert_allclose(scores["tumor_purity"],
                               np.cos(0.6049872018 + 0.0001467884 * scores["estimate_score"]))


def test_ssgsea_matches_gsva_with_and_without_ssgsea_norm():
    """GSVA 1.46 gsva(method = "ssgsea", tau = 0.25) on stored R outputs (tests/reference/gsva/)."""
    from pathlib import Path

    reference = Path(__file__).parent / "reference" / "gsva"
    expression = pd.read_csv(reference / "expression.csv", index_col=0)
    pairs = pd.read_csv(reference / "gene_sets.csv")
    sets = {name: group["gene"].tolist() for name, group in pairs.groupby("set", sort=False)}
    for normalise, name in [(False, "ssgsea_raw.csv"), (True, "ssgsea_norm.csv")]:
        r = pd.read_csv(reference / name, index_col=0)
        ours = estimate.ssgsea(expression, sets, normalise=normalise).T.loc[r.index, r.columns]
        np.testing.assert_allclose(ours.to_numpy(), r.to_numpy(), rtol=1e-10)
    raw = estimate.ssgsea(expression, sets)
    assert not np.allclose(raw.to_numpy(), estimate.ssgsea(expression, sets, normalise=True).to_numpy())
