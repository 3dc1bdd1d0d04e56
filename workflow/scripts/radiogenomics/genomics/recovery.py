"""How well the genomics stage recovers the synthetic cohort's planted truth (results/truth/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import pearsonr

from radiogenomics.core.io import read_tsv


def deg_recovery(deg_table: pd.DataFrame, planted: pd.DataFrame) -> dict:
    """Precision and recall of called DEGs (direction must match) against planted (gene, direction).

    Precision counts every z-associated gene in ``planted`` as true (planted DE genes and, when a
    ``kind`` column is present, z-module genes, which are DE too); recall is over the planted DE
    genes (``kind == planted_de``), whose effects are sized to pass the fold-change threshold;
    ``deg_recall_all`` is over every row.
    """
    called = deg_table.loc[deg_table["direction"] != "ns", ["gene", "direction"]]
    truth = set(map(tuple, planted[["gene", "direction"]].drop_duplicates().to_numpy()))
    core = planted[planted["kind"] == "planted_de"] if "kind" in planted.columns else planted
    core_truth = set(map(tuple, core[["gene", "direction"]].drop_duplicates().to_numpy()))
    called_pairs = set(map(tuple, called.to_numpy()))
    return {"deg_called": len(called), "deg_planted": len(core_truth),
            "deg_precision": len(called_pairs & truth) / len(called_pairs) if called_pairs else np.nan,
            "deg_recall": len(called_pairs & core_truth) / len(core_truth) if core_truth else np.nan,
            "deg_recall_all": len(called_pairs & truth) / len(truth) if truth else np.nan}


def deconvolution_recovery(estimated: pd.DataFrame, planted: pd.DataFrame, min_sd: float = 1e-3) -> dict:
    """Pearson r per cell type whose planted fraction varies (SD > ``min_sd``)."""
    merged = planted.merge(estimated, on="patient_id", suffixes=("_true", "_est"))
    result = {}
    for cell in [c for c in planted.columns if c != "patient_id" and f"{c}_est" in merged.columns]:
        if merged[f"{cell}_true"].std() > min_sd:
            result[f"deconvolution_r_{cell}"] = float(pearsonr(merged[f"{cell}_true"], merged[f"{cell}_est"])[0])
    return result


def module_recovery(modules: pd.DataFrame, planted: pd.DataFrame, module_trait: pd.DataFrame,
                    trait: str = "score") -> dict:
    """Best Jaccard of a found module with the planted z-module and whether that module is the
    one most correlated (|r|) with ``trait``."""
    z_genes = set(planted.loc[planted["z_module"] == 1, "gene"])
    found = modules[modules["module"] != "grey"].groupby("module")["gene"].apply(set)
    if found.empty:
        return {"wgcna_jaccard": 0.0, "wgcna_z_module_most_correlated": False}
    jaccard = found.map(lambda genes: len(genes & z_genes) / len(genes | z_genes))
    best = jaccard.idxmax()
    rows = module_trait[module_trait["trait"] == trait]
    top = rows.loc[rows["r"].abs().idxmax(), "module"] if len(rows) else None
    return {"wgcna_jaccard": float(jaccard.max()), "wgcna_best_module": best,
            "wgcna_z_module_most_correlated": bool(top == best)}


def enrichment_recovery(enrichment: pd.DataFrame, planted_sets: pd.DataFrame) -> dict:
    """Rank (1 = best p-value) of each planted set within its library's ORA and GSEA results."""
    result = {}
    for method, direction in (("ora", "up"), ("ora", "down"), ("ora", "all"), ("gsea", None)):
        subset = enrichment[enrichment["method"] == method]
        if direction:
            subset = subset[subset["direction"] == direction]
        for library, sets in planted_sets.groupby("library"):
            ranked = subset[subset["library"] == library].sort_values(["pvalue", "padj"], kind="mergesort")
            for name in sets["gene_set"]:
                position = np.flatnonzero(ranked["term"].to_numpy() == name)
                key = f"rank_{method}{'_' + direction if direction else ''}_{name}"
                result[key] = int(position[0]) + 1 if len(position) else None
    return result


def evaluate(genomics_dir: str | Path, truth_dir: str | Path) -> dict:
    genomics_dir, truth_dir = Path(genomics_dir), Path(truth_dir)
    metrics = deg_recovery(read_tsv(genomics_dir / "deg.tsv"), read_tsv(truth_dir / "de_genes.tsv"))
    metrics.update(deconvolution_recovery(read_tsv(genomics_dir / "deconvolution.tsv"),
                                          read_tsv(truth_dir / "cell_fractions.tsv")))
    metrics.update(module_recovery(read_tsv(genomics_dir / "wgcna_modules.tsv"), read_tsv(truth_dir / "modules.tsv"),
                                   read_tsv(genomics_dir / "wgcna_module_trait.tsv")))
    if (truth_dir / "planted_gene_sets.tsv").exists():
        metrics.update(enrichment_recovery(read_tsv(genomics_dir / "enrichment.tsv"),
                                           read_tsv(truth_dir / "planted_gene_sets.tsv")))
    return metrics
