"""Tumour mutation burden from a MAF and its relation to the top DEGs.

TMB = non-synonymous somatic variants per megabase of the captured exome (38 Mb by default, the
value used for TCGA whole exomes, e.g. Chalmers et al. 2017 use ~38 Mb).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from statsmodels.stats.multitest import multipletests

from radiogenomics.core.cases import BadCase

NON_SYNONYMOUS = (
    "Missense_Mutation", "Nonsense_Mutation", "Frame_Shift_Del", "Frame_Shift_Ins",
    "In_Frame_Del", "In_Frame_Ins", "Splice_Site", "Translation_Start_Site", "Nonstop_Mutation",
)
MAF_COLUMNS = ("Hugo_Symbol", "Tumor_Sample_Barcode", "Variant_Classification")


def read_maf(path: str | Path) -> pd.DataFrame:
    """Read a MAF (tab-separated, '#' comment lines allowed) and check the needed columns."""
    maf = pd.read_csv(path, sep="\t", comment="#", dtype=str, low_memory=False)
    missing = set(MAF_COLUMNS) - set(maf.columns)
    if missing:
        raise BadCase("-", str(path), f"MAF lacks columns {sorted(missing)}",
                      "provide a standard MAF (e.g. GDC masked somatic mutations)", stage="genomics")
    return maf


def barcode_to_patient(barcode: str, patients: set[str], sample_map: dict[str, str] | None = None) -> str:
    """A barcode that is a known patient id maps to itself, a sample id in ``sample_map``
    (samples.tsv) to its patient, and a TCGA sample barcode (TCGA-XX-XXXX-01A-...) to its
    first 12 characters."""
    if barcode in patients:
        return barcode
    if sample_map and barcode in sample_map:
        return sample_map[barcode]
    return barcode[:12] if barcode.startswith("TCGA-") else barcode


def tumour_mutation_burden(maf: pd.DataFrame, patients: list[str], exome_mb: float = 38.0,
                           sample_map: dict[str, str] | None = None) -> pd.DataFrame:
    """Per patient: non-synonymous count and TMB (per Mb). Patients without a MAF row get 0,
    so ``patients`` must list only sequenced patients."""
    known = set(map(str, patients))
    coding = maf[maf["Variant_Classification"].isin(NON_SYNONYMOUS)]
    owners = coding["Tumor_Sample_Barcode"].astype(str).map(lambda b: barcode_to_patient(b, known, sample_map))
    counts = owners[owners.isin(known)].value_counts().reindex(list(map(str, patients)), fill_value=0)
    return pd.DataFrame({"patient_id": counts.index, "nonsynonymous": counts.to_numpy(),
                         "tmb": counts.to_numpy() / exome_mb})


def mutation_status(maf: pd.DataFrame, patients: list[str], genes: list[str] | None = None,
                    sample_map: dict[str, str] | None = None) -> pd.DataFrame:
    """Patients x genes 0/1 table: any non-synonymous variant in the gene (columns sorted by
    mutation frequency, then name)."""
    known = set(map(str, patients))
    coding = maf[maf["Variant_Classification"].isin(NON_SYNONYMOUS)].copy()
    coding["patient_id"] = coding["Tumor_Sample_Barcode"].astype(str).map(
        lambda b: barcode_to_patient(b, known, sample_map))
    coding = coding[coding["patient_id"].isin(known)]
    status = pd.crosstab(coding["patient_id"], coding["Hugo_Symbol"]).clip(upper=1)
    status = status.reindex(index=list(map(str, patients)), fill_value=0)
    if genes is not None:
        status = status.reindex(columns=list(genes), fill_value=0)
    frequency = status.sum(axis=0)
    order = sorted(status.columns, key=lambda g: (-frequency[g], g))
    status = status[order].astype(int)
    status.index.name = "patient_id"
    return status


def deg_tmb_correlation(expression: pd.DataFrame, tmb: pd.DataFrame, genes: list[str]) -> pd.DataFrame:
    """Spearman rho and BH-adjusted p between each gene's expression (genes x patients) and TMB."""
    burden = tmb.set_index("patient_id")["tmb"]
    patients = [p for p in expression.columns if p in burden.index]
    rows = []
    for gene in genes:
        rho, p = spearmanr(expression.loc[gene, patients].to_numpy(float), burden.loc[patients].to_numpy(float))
        rows.append({"gene": gene, "rho": float(rho), "pvalue": float(p)})
    table = pd.DataFrame(rows)
    valid = table["pvalue"].notna()
    table["padj"] = np.nan
    if valid.any():
        table.loc[valid, "padj"] = multipletests(table.loc[valid, "pvalue"], method="fdr_bh")[1]
    return table
