"""Gene-set enrichment on local GMT libraries: over-representation (gseapy.enrich) of the up,
down and all DEGs against the tested genes, and preranked GSEA (gseapy.prerank) on the DESeq2
Wald statistic. Nothing here touches the network except :func:`download_gene_sets`."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Callable

import gseapy
import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from radiogenomics.core.io import atomic_path

ENRICHMENT_COLUMNS = ["library", "method", "direction", "term", "overlap", "set_size", "es", "nes",
                      "pvalue", "padj", "genes"]

# Enrichr names of the default libraries; users may pin other releases in config.
DEFAULT_ENRICHR_LIBRARIES = {
    "go_bp": "GO_Biological_Process_2023",
    "go_cc": "GO_Cellular_Component_2023",
    "go_mf": "GO_Molecular_Function_2023",
    "kegg": "KEGG_2021_Human",
    "hallmark": "MSigDB_Hallmark_2020",
}


def read_gmt(path: str | Path) -> dict[str, list[str]]:
    """GMT: one set per line, ``name<TAB>description<TAB>gene...``."""
    sets = {}
    for line in Path(path).read_text().splitlines():
        fields = line.rstrip("\n").split("\t")
        if len(fields) >= 3:
            sets[fields[0]] = [g for g in fields[2:] if g]
    return sets


def write_gmt(gene_sets: dict[str, list[str]], path: str | Path, description: str = "") -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text("".join(f"{name}\t{description}\t" + "\t".join(genes) + "\n"
                                     for name, genes in sorted(gene_sets.items())))


def over_representation(genes: list[str], gene_sets: dict[str, list[str]], background: list[str],
                        library: str, direction: str, min_size: int = 5, max_size: int = 500) -> pd.DataFrame:
    """Hypergeometric test of ``genes`` in each set, universe = ``background``; BH within library."""
    universe = set(background)
    query = sorted(set(genes) & universe)
    sets = {name: sorted(set(members) & universe) for name, members in gene_sets.items()}
    sets = {name: members for name, members in sets.items() if min_size <= len(members) <= max_size}
    if not query or not sets:
        return pd.DataFrame(columns=ENRICHMENT_COLUMNS)
    with contextlib.redirect_stdout(io.StringIO()):
        result = gseapy.enrich(query, sets, background=sorted(universe), no_plot=True, outdir=None,
                               cutoff=1.0, verbose=False).res2d
    if result is None or result.empty:
        return pd.DataFrame(columns=ENRICHMENT_COLUMNS)
    table = pd.DataFrame({
        "library": library,
        "method": "ora",
        "direction": direction,
        "term": result["Term"].to_numpy(),
        "overlap": result["Overlap"].to_numpy(),
        "set_size": [len(sets[t]) for t in result["Term"]],
        "es": np.nan,
        "nes": np.nan,
        "pvalue": result["P-value"].astype(float).to_numpy(),
        "genes": [";".join(sorted(str(g).split(";"))) for g in result["Genes"]],
    })
    # BH over every tested set of the library (gseapy only reports sets with an overlap)
    n_tested = len(sets)
    padded = np.r_[table["pvalue"].to_numpy(), np.ones(n_tested - len(table))]
    table["padj"] = multipletests(padded, method="fdr_bh")[1][: len(table)]
    return table[ENRICHMENT_COLUMNS]


def prerank_gsea(ranking: pd.Series, gene_sets: dict[str, list[str]], library: str,
                 permutations: int = 1000, seed: int = 0, min_size: int = 5, max_size: int = 500,
                 weight: float = 1.0) -> pd.DataFrame:
    """Weighted (p = 1) preranked GSEA with gene-set permutations; single-threaded, seeded."""
    ranking = ranking.dropna().sort_values(ascending=False, kind="mergesort")
    with contextlib.redirect_stdout(io.StringIO()):
        logging.getLogger("gseapy").setLevel(logging.WARNING)
        result = gseapy.prerank(rnk=ranking, gene_sets=gene_sets, permutation_num=permutations,
                                seed=seed, threads=1, min_size=min_size, max_size=max_size,
                                weight=weight, outdir=None, no_plot=True, verbose=False).res2d
    if result is None or result.empty:
        return pd.DataFrame(columns=ENRICHMENT_COLUMNS)
    nes = result["NES"].astype(float).to_numpy()
    table = pd.DataFrame({
        "library": library,
        "method": "gsea",
        "direction": np.where(nes >= 0, "up", "down"),
        "term": result["Term"].to_numpy(),
        "overlap": result["Tag %"].to_numpy(),
        "set_size": [len(set(gene_sets[t]) & set(ranking.index)) for t in result["Term"]],
        "es": result["ES"].astype(float).to_numpy(),
        "nes": nes,
        "pvalue": result["NOM p-val"].astype(float).to_numpy(),
        "padj": result["FDR q-val"].astype(float).to_numpy(),
        "genes": [";".join(sorted(str(g).split(";"))) for g in result["Lead_genes"]],
    })
    return table[ENRICHMENT_COLUMNS]


def run_enrichment(deg_table: pd.DataFrame, libraries: dict[str, str | Path], permutations: int = 1000,
                   seed: int = 0, min_size: int = 5, max_size: int = 500, gsea: bool = True) -> pd.DataFrame:
    """ORA (up, down, all DEGs) and GSEA on the Wald statistic for each GMT library.

    ``deg_table`` is deg.tsv; the background is every tested gene (non-missing p-value).
    Rows are sorted by library, method, direction, padj, pvalue, term.
    """
    tested = deg_table.dropna(subset=["pvalue"])
    background = tested["gene"].astype(str).tolist()
    queries = {
        "up": tested.loc[tested["direction"] == "up", "gene"].astype(str).tolist(),
        "down": tested.loc[tested["direction"] == "down", "gene"].astype(str).tolist(),
        "all": tested.loc[tested["direction"] != "ns", "gene"].astype(str).tolist(),
    }
    ranking = pd.Series(tested["stat"].to_numpy(float), index=background)
    parts = []
    for library, path in libraries.items():
        sets = read_gmt(path)
        for direction, genes in queries.items():
            parts.append(over_representation(genes, sets, background, library, direction, min_size, max_size))
        if gsea:
            parts.append(prerank_gsea(ranking, sets, library, permutations, seed, min_size, max_size))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=ENRICHMENT_COLUMNS)
    table = pd.concat(parts, ignore_index=True)
    return table.sort_values(["library", "method", "direction", "padj", "pvalue", "term"],
                             kind="mergesort").reset_index(drop=True)


def download_gene_sets(out_dir: str | Path, libraries: dict[str, str] | None = None,
                       organism: str = "Human",
                       fetcher: Callable[[str, str], dict[str, list[str]]] | None = None) -> dict[str, Path]:
    """Fetch Enrichr/MSigDB libraries (via gseapy) into ``out_dir/{key}.gmt``; needs the network.

    ``libraries`` maps our keys (go_bp, kegg, ...) to Enrichr library names. Raises RuntimeError
    naming the library and the offline alternative when the download fails.
    """
    libraries = libraries or DEFAULT_ENRICHR_LIBRARIES
    fetcher = fetcher or (lambda name, org: gseapy.get_library(name=name, organism=org))
    written = {}
    for key, name in libraries.items():
        try:
            sets = fetcher(name, organism)
        except Exception as error:  # network errors come in many types (requests, urllib, ssl)
            raise RuntimeError(
                f"could not download gene-set library {name!r} for {key!r} ({type(error).__name__}: {error}). "
                f"This step needs internet access to Enrichr (maayanlab.cloud). Offline, place a GMT file at "
                f"{Path(out_dir) / (key + '.gmt')} yourself (e.g. from MSigDB) and point config "
                f"genomics.gene_sets.{key} to it."
            ) from error
        if not sets:
            raise RuntimeError(f"gene-set library {name!r} downloaded empty; check the library name")
        path = Path(out_dir) / f"{key}.gmt"
        write_gmt(sets, path, description=name)
        written[key] = path
    return written
