"""Recovery metrics on hand-made tables with hand-computed values."""

import pandas as pd
import pytest

from radiogenomics.genomics import recovery


def test_deg_precision_recall_by_hand():
    degs = pd.DataFrame({"gene": list("ABCDE"), "direction": ["up", "down", "up", "ns", "up"]})
    planted = pd.DataFrame({"gene": list("ABCD"), "direction": ["up", "down", "down", "up"]})
    m = recovery.deg_recovery(degs, planted)
    # called A(up ok) B(down ok) C(up, planted down: wrong) E(not planted) -> 2 / 4; recall 2 / 4
    assert m["deg_precision"] == pytest.approx(0.5) and m["deg_recall"] == pytest.approx(0.5)
    planted["kind"] = ["planted_de", "z_module", "planted_de", "planted_de"]
    m = recovery.deg_recovery(degs, planted)
    # recall over planted_de A, C, D: only A found -> 1 / 3; precision unchanged
    assert m["deg_recall"] == pytest.approx(1 / 3) and m["deg_precision"] == pytest.approx(0.5)
    assert m["deg_recall_all"] == pytest.approx(0.5)


def test_module_and_enrichment_recovery_by_hand():
    modules = pd.DataFrame({"gene": list("ABCDEFG"), "module": ["blue"] * 3 + ["turquoise"] * 2 + ["grey"] * 2})
    planted = pd.DataFrame({"gene": list("ABCD"), "module": "M1", "z_module": [1, 1, 1, 1]})
    trait = pd.DataFrame({"module": ["blue", "turquoise"], "trait": "score", "r": [-0.6, 0.2], "pvalue": 0.01})
    m = recovery.module_recovery(modules, planted, trait)
    assert m["wgcna_jaccard"] == pytest.approx(3 / 4) and m["wgcna_best_module"] == "blue"
    assert m["wgcna_z_module_most_correlated"]
    enriched = pd.DataFrame({"library": "kegg", "method": "ora", "direction": "up", "term": ["X", "P", "Y"],
                             "pvalue": [0.2, 0.001, 0.5], "padj": [0.3, 0.003, 0.5]})
    ranks = recovery.enrichment_recovery(enriched, pd.DataFrame({"library": ["kegg"], "gene_set": ["P"]}))
    assert ranks["rank_ora_up_P"] == 1 and ranks["rank_ora_down_P"] is None
