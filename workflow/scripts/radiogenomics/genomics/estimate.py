"""ESTIMATE stromal / immune scores by single-sample GSEA and tumour purity (Yoshihara 2013).

ssGSEA as in the ESTIMATE R package (after Barbie et al. 2009): per sample, expression is
rank-normalised to 10000 * rank / n_genes, genes are ordered by decreasing value, and the score
is the sum over positions of the running difference between the weighted in-set walk
(weights |value|^0.25) and the uniform out-of-set walk. Vectorised here over samples so that
20,000 genes x 500 samples stays fast; tested against a loop over the definition and gseapy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

PURITY_INTERCEPT = 0.6049872018
PURITY_SLOPE = 0.0001467884


def ssgsea(expression: pd.DataFrame, gene_sets: dict[str, list[str]], alpha: float = 0.25,
           normalise: bool = False) -> pd.DataFrame:
    """Enrichment score per sample (rows) and gene set (columns); genes x samples input.

    ``normalise`` is GSVA's ``ssgsea.norm = TRUE``: every score divided by the range (max - min)
    of all scores of the call (the ESTIMATE package does not normalise).
    """
    ranks = rankdata(expression.to_numpy(float), axis=0, method="average")
    values = 10000.0 * ranks / expression.shape[0]
    order = np.argsort(-values, axis=0, kind="stable")
    sorted_values = np.take_along_axis(values, order, axis=0)
    n_genes = expression.shape[0]
    scores = {}
    for name, genes in gene_sets.items():
        in_set = expression.index.isin(list(genes))
        n_in = int(in_set.sum())
        if n_in == 0 or n_in == n_genes:
            scores[name] = np.full(expression.shape[1], np.nan)
            continue
        tagged = in_set[order]
        weights = np.where(tagged, np.abs(sorted_values) ** alpha, 0.0)
        hit = np.cumsum(weights, axis=0) / weights.sum(axis=0)
        miss = np.cumsum(~tagged, axis=0) / (n_genes - n_in)
        scores[name] = (hit - miss).sum(axis=0)
    table = pd.DataFrame(scores, index=expression.columns)
    if normalise:
        table = table / (np.nanmax(table.to_numpy()) - np.nanmin(table.to_numpy()))
    return table


def estimate_scores(expression: pd.DataFrame, gene_sets: dict[str, list[str]],
                    stromal: str = "STROMAL_SIGNATURE", immune: str = "IMMUNE_SIGNATURE") -> pd.DataFrame:
    """Stromal, immune and ESTIMATE scores plus tumour purity per sample.

    Purity = cos(0.6049872018 + 0.0001467884 * ESTIMATE score). The formula was calibrated on
    Affymetrix arrays against ABSOLUTE purity; on RNA-seq it is a relative index, not a calibrated
    fraction (Yoshihara et al. 2013, Nat Commun 4:2612).
    """
    scores = ssgsea(expression, {"stromal_score": gene_sets[stromal], "immune_score": gene_sets[immune]})
    scores["estimate_score"] = scores["stromal_score"] + scores["immune_score"]
    scores["tumor_purity"] = np.cos(PURITY_INTERCEPT + PURITY_SLOPE * scores["estimate_score"])
    scores.index.name = "sample"
    return scores.reset_index()
