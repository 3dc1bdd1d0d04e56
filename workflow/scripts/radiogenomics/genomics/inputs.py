"""Expression inputs: counts + sample map -> patient-level matrix joined to the imaging score.

Counts are genes x samples (first column ``gene``); ``samples.tsv`` maps ``sample_id`` to
``patient_id``. Normalisation is DESeq2 median-of-ratios; the choice is returned as a record so
that it can be written next to the results.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from radiogenomics.core.cases import BadCase
from radiogenomics.core.io import read_tsv


def load_sample_counts(counts_path: str | Path, samples_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw counts (genes x samples, integers) and the sample table indexed by ``sample_id``.

    The sample table keeps every column of samples.tsv (``patient_id`` and e.g. ``site``,
    ``batch``, ``sample_type``) for the samples present in the counts, in sorted ``sample_id`` order.
    """
    counts = read_tsv(counts_path)
    if "gene" not in counts.columns:
        raise BadCase("-", str(counts_path), "counts table has no 'gene' column",
                      "write genes x samples counts with the first column named 'gene'", stage="genomics")
    counts = counts.set_index("gene")
    if counts.index.duplicated().any():
        dup = counts.index[counts.index.duplicated()][0]
        raise BadCase("-", str(counts_path), f"gene {dup!r} appears twice",
                      "sum or drop duplicated gene rows before the study", stage="genomics")
    values = counts.to_numpy(dtype=float)
    if np.isnan(values).any() or (values < 0).any() or not np.allclose(values, np.round(values)):
        raise BadCase("-", str(counts_path), "counts contain missing, negative or non-integer values",
                      "provide raw (unnormalised) integer read counts", stage="genomics")
    samples = read_tsv(samples_path, dtype=str)
    missing = {"sample_id", "patient_id"} - set(samples.columns)
    if missing:
        raise BadCase("-", str(samples_path), f"sample map lacks columns {sorted(missing)}",
                      "write samples.tsv with columns sample_id, patient_id", stage="genomics")
    samples = samples[samples["sample_id"].isin(counts.columns)].sort_values("sample_id").set_index("sample_id")
    return counts[samples.index.tolist()].round().astype(np.int64), samples


def require_sample_columns(samples: pd.DataFrame, columns, samples_path: str | Path = "samples.tsv") -> None:
    """BadCase naming the samples.tsv columns a configured design needs but the file lacks."""
    missing = [c for c in columns if c not in samples.columns]
    if missing:
        raise BadCase("-", str(samples_path), f"samples.tsv lacks the design columns {missing}",
                      "add them to samples.tsv or remove them from genomics.deg", stage="genomics")


def one_sample_per_patient(counts: pd.DataFrame, samples: pd.DataFrame, column: str | None = None,
                           value: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Genes x patients counts and the patients' sample rows (index patient_id).

    A patient with several samples keeps the first in sorted ``sample_id`` order, so the choice is
    deterministic; with ``column`` only samples whose ``column`` equals ``value`` (e.g. tumour) count.
    """
    chosen = samples if column is None else samples[samples[column] == value]
    chosen = chosen[~chosen["patient_id"].duplicated(keep="first")]
    by_patient = counts[chosen.index.tolist()]
    by_patient.columns = chosen["patient_id"].tolist()
    return by_patient, chosen.reset_index().set_index("patient_id")


def paired_samples(counts: pd.DataFrame, samples: pd.DataFrame, column: str, test: str, reference: str,
                   patients) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts and sample rows of every ``test`` / ``reference`` sample of the patients in
    ``patients`` that have both kinds (a paired ``~ patient + column`` design)."""
    kept = samples[samples["patient_id"].isin(list(patients)) & samples[column].isin([test, reference])]
    kinds = kept.groupby("patient_id")[column].nunique()
    kept = kept[kept["patient_id"].isin(kinds.index[kinds == 2])]
    if kept["patient_id"].nunique() < 2:
        raise BadCase("-", "samples.tsv", f"fewer than 2 patients have both a {test!r} and a {reference!r} sample",
                      f"check the {column!r} column of samples.tsv or set genomics.deg.paired to null",
                      stage="genomics")
    return counts[kept.index.tolist()], kept


def join_scores(counts: pd.DataFrame, scores: pd.DataFrame, high: str = "high", low: str = "low",
                cohorts: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep patients that have both expression and a score; return (counts, metadata).

    ``scores`` is a models table (patient_id, cohort, score, group). ``metadata`` is indexed by
    patient with columns ``score`` and ``group`` (an ordered categorical low < high).
    """
    table = scores.copy()
    table["patient_id"] = table["patient_id"].astype(str)
    if cohorts is not None and "cohort" in table.columns:
        table = table[table["cohort"].isin(cohorts)]
    table = table.drop_duplicates("patient_id").set_index("patient_id")
    unknown = set(table["group"].astype(str)) - {high, low}
    if unknown:
        raise BadCase("-", "scores.tsv", f"group labels {sorted(unknown)} are neither {high!r} nor {low!r}",
                      "set genomics.group_high / group_low to the labels used by the models stage",
                      stage="genomics")
    patients = [p for p in counts.columns if p in table.index]
    if len(patients) < 4:
        raise BadCase("-", "scores.tsv", f"only {len(patients)} patients have both expression and a score",
                      "check that samples.tsv patient ids match the clinical patient ids", stage="genomics")
    metadata = table.loc[patients, ["score", "group"]].copy()
    metadata["score"] = metadata["score"].astype(float)
    metadata["group"] = pd.Categorical(metadata["group"].astype(str), categories=[low, high], ordered=True)
    for label in (low, high):
        if (metadata["group"] == label).sum() < 2:
            raise BadCase("-", "scores.tsv", f"fewer than 2 patients in group {label!r}",
                          "use a cohort with both risk groups represented", stage="genomics")
    return counts[patients], metadata


def filter_expressed(counts: pd.DataFrame, min_count: int = 10, min_fraction: float = 0.2) -> pd.DataFrame:
    """Keep genes with at least ``min_count`` reads in at least ``min_fraction`` of samples."""
    enough = (counts >= min_count).mean(axis=1) >= min_fraction
    return counts.loc[enough]


def size_factors(counts: pd.DataFrame) -> pd.Series:
    """DESeq2 median-of-ratios size factors (Anders & Huber 2010).

    Written out here (rather than taken from PyDESeq2) so that normalisation for WGCNA, PCA and
    deconvolution does not need a fitted DESeq2 model; tested against PyDESeq2.
    """
    values = counts.to_numpy(dtype=float)
    expressed_everywhere = (values > 0).all(axis=1)
    if not expressed_everywhere.any():
        raise BadCase("-", "counts.tsv", "no gene has a non-zero count in every sample",
                      "filter out empty samples before normalisation", stage="genomics")
    logs = np.log(values[expressed_everywhere])
    log_geomeans = logs.mean(axis=1, keepdims=True)
    factors = np.exp(np.median(logs - log_geomeans, axis=0))
    return pd.Series(factors, index=counts.columns, name="size_factor")


def normalise(counts: pd.DataFrame, log2: bool = True) -> tuple[pd.DataFrame, dict]:
    """Median-of-ratios normalised counts, optionally log2(x + 1); returns (matrix, record)."""
    factors = size_factors(counts)
    normalised = counts / factors
    if log2:
        normalised = np.log2(normalised + 1.0)
    record = {
        "method": "DESeq2 median-of-ratios size factors" + (", log2(normalised + 1)" if log2 else ""),
        "n_genes": int(counts.shape[0]),
        "n_samples": int(counts.shape[1]),
        "size_factors": {str(k): float(v) for k, v in factors.items()},
    }
    return normalised, record
