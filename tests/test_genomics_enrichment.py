"""ORA against scipy's hypergeometric distribution; GSEA ranks the planted set first;
the downloader fails with a clear message offline (fetcher monkeypatched, no network)."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import hypergeom, norm

from radiogenomics.genomics import enrichment


def planted_deg_table(seed=0, n_genes=300):
    rng = np.random.default_rng(seed)
    genes = [f"G{i:03d}" for i in range(n_genes)]
    stat = rng.normal(size=n_genes)
    stat[:20] += 6  # planted up pathway genes G000..G019
    stat[20:35] -= 6  # planted down genes G020..G034
    pvalue = 2 * norm.sf(np.abs(stat))
    direction = np.where(stat > 3, "up", np.where(stat < -3, "down", "ns"))
    return pd.DataFrame({"gene": genes, "baseMean": 100.0, "log2FoldChange": stat / 3, "lfcSE": 0.3,
                         "stat": stat, "pvalue": pvalue, "padj": pvalue, "direction": direction})


def gene_sets(seed=1):
    rng = np.random.default_rng(seed)
    sets = {"PLANTED_UP": [f"G{i:03d}" for i in range(20)] + ["NOT_TESTED1"],
            "PLANTED_DOWN": [f"G{i:03d}" for i in range(20, 35)]}
    for k in range(12):
        sets[f"RANDOM_{k:02d}"] = [f"G{i:03d}" for i in rng.choice(300, size=25, replace=False)]
    return sets


def test_ora_pvalues_match_scipy_hypergeom():
    table = planted_deg_table()
    sets = gene_sets()
    background = table["gene"].tolist()
    query = table.loc[table["direction"] != "ns", "gene"].tolist()
    result = enrichment.over_representation(query, sets, background, "toy", "all").set_index("term")
    assert len(result) > 3
    query_set = set(query)
    for term, row in result.iterrows():
        members = set(sets[term]) & set(background)
        k = len(members & query_set)
        expected = hypergeom.sf(k - 1, len(background), len(members), len(query_set))
        np.testing.assert_allclose(row["pvalue"], expected, rtol=1e-8)
        assert row["set_size"] == len(members)
    # BH over all tested sets (sets without overlap count with p = 1)
    pvals = np.r_[result["pvalue"].to_numpy(), np.ones(len(sets) - len(result))]
    order = np.argsort(pvals)
    ranked = pvals[order] * len(pvals) / np.arange(1, len(pvals) + 1)
    bh = np.minimum.accumulate(ranked[::-1])[::-1]
    expected_padj = np.empty_like(bh)
    expected_padj[order] = np.minimum(bh, 1)
    np.testing.assert_allclose(result["padj"], expected_padj[: len(result)], rtol=1e-10)


def test_planted_pathways_rank_first(tmp_path):
    gmt = tmp_path / "toy.gmt"
    enrichment.write_gmt(gene_sets(), gmt)
    assert enrichment.read_gmt(gmt)["PLANTED_DOWN"] == gene_sets()["PLANTED_DOWN"]
    table = enrichment.run_enrichment(planted_deg_table(), {"toy": gmt}, permutations=100, seed=3)
    first = table.groupby(["method", "direction"], sort=True).first()["term"]
    assert first[("ora", "up")] == "PLANTED_UP"
    assert first[("ora", "down")] == "PLANTED_DOWN"
    gsea = table[table["method"] == "gsea"].sort_values("nes")
    assert gsea["term"].iloc[-1] == "PLANTED_UP" and gsea["term"].iloc[0] == "PLANTED_DOWN"
    again = enrichment.run_enrichment(planted_deg_table(), {"toy": gmt}, permutations=100, seed=3)
    pd.testing.assert_frame_equal(table, again)


def test_download_writes_gmt_and_fails_clearly_offline(tmp_path):
    fake = {"SET_A": ["A", "B"], "SET_B": ["C"]}
    written = enrichment.download_gene_sets(tmp_path, {"kegg": "KEGG_2021_Human"},
                                            fetcher=lambda name, organism: fake)
    assert enrichment.read_gmt(written["kegg"]) == fake

    def offline(name, organism):
        raise ConnectionError("Name or service not known")

    with pytest.raises(RuntimeError, match="needs internet access.*genomics.gene_sets.go_bp"):
        enrichment.download_gene_sets(tmp_path, {"go_bp": "GO_Biological_Process_2023"}, fetcher=offline)
