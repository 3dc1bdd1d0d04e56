"""Cohort assembly: per-patient inspection results, clinical checks, exclusions and the split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.cases import BadCase
from ..imaging.ct import load_case

EXCLUSION_COLUMNS = ["patient_id", "stage", "reason", "file", "fix"]


def inspect_case(
    patient_id: str,
    paths: dict[str, str],
    phases: list[str],
    mask_phase: str,
    on_bad_case: str,
    expected_mask: str | None = None,
    checks: dict | None = None,
) -> dict:
    """Open and check one patient's images; a bad case is returned as a record or raised.

    ``expected_mask``: where the user's segmentation must be when no manifest names the mask
    (source public); its absence is a bad case telling where to put it. ``checks``: keyword
    arguments of :func:`radiogenomics.imaging.ct.load_case` (mask label, minimum tumour volume,
    HU sanity settings).
    """
    try:
        if expected_mask is not None:
            paths = {**paths, "mask": require_segmentation(patient_id, expected_mask, mask_phase)}
        load_case(patient_id, paths, phases, mask_phase, **(checks or {}))
    except BadCase as bad:
        if on_bad_case == "fail":
            raise
        return {"ok": False, **bad.as_record()}
    return {"ok": True, "patient_id": patient_id, "stage": "inspect", "reason": "", "file": "", "fix": ""}


def require_segmentation(patient_id: str, mask_path: str | Path, mask_phase: str = "venous") -> str:
    """The tumour mask path if the file exists, else a BadCase saying where to provide it."""
    if not Path(mask_path).is_file():
        raise BadCase(
            patient_id,
            str(mask_path),
            "no tumour mask for this patient (the public data has no reference segmentation)",
            f"provide results of a segmentation (tumour mask on the {mask_phase}-phase grid) at {mask_path}",
        )
    return str(mask_path)


def synthetic_case_paths(raw_dir: str | Path) -> dict[str, str]:
    """Paths of one synthetic patient, from the manifest row its generator wrote."""
    row = json.loads((Path(raw_dir) / "manifest.json").read_text())
    # The generator writes into a temporary folder that is renamed afterwards, so only the
    # names inside the patient folder are meaningful.
    return {
        key: str(Path(raw_dir) / Path(value).name) if value else ""
        for key, value in row.items()
        if key not in ("patient_id", "site", "format", "mask_phase")
    }


def _missing_clinical(clinical: pd.DataFrame, required: list[str], source: str) -> list[dict]:
    records = []
    for column in required:
        if column not in clinical.columns:
            raise BadCase("<all>", source, f"clinical column '{column}' is missing", "add the column or remove it from cohort.required_clinical")
    for _, row in clinical.iterrows():
        missing = [c for c in required if pd.isna(row[c]) or str(row[c]).strip() == ""]
        if missing:
            records.append(
                BadCase(
                    row["patient_id"], source, f"missing clinical value(s): {', '.join(missing)}",
                    "fill the value in the clinical table or exclude the patient", stage="clinical",
                ).as_record()
            )
    return records


def duplicated_clinical_rows(clinical: pd.DataFrame, source: str) -> list[BadCase]:
    """One BadCase per patient id with more than one clinical row (which row is right is unknown)."""
    if "patient_id" not in clinical.columns:
        raise BadCase("<all>", source, "the clinical table has no 'patient_id' column", "add the column")
    ids = clinical["patient_id"]
    problems = []
    for patient_id, count in ids[ids.duplicated(keep=False)].value_counts(sort=False).items():
        lines = ", ".join(str(i + 2) for i in clinical.index[ids == patient_id])  # header is line 1
        problems.append(
            BadCase(
                patient_id,
                source,
                f"patient has {count} rows in the clinical table (lines {lines})",
                "keep one row per patient in the clinical table",
                stage="clinical",
            )
        )
    return problems


def split_cohort(clinical: pd.DataFrame, test_fraction: float, external_sites: list[str], stratify: str | None, seed: int) -> pd.Series:
    """train / test (random, stratified, internal sites) / external (listed sites)."""
    clinical = clinical.sort_values("patient_id").reset_index(drop=True)
    cohort = pd.Series("external", index=clinical["patient_id"].values, name="cohort")
    internal = clinical.loc[~clinical["site"].isin(external_sites)]
    if len(internal) < 2:
        raise ValueError("fewer than two internal patients: cannot split train/test")
    # scikit-learn is imported here, not at module level: every per-patient inspection job
    # imports this module and would pay for it.
    from sklearn.model_selection import train_test_split

    labels = None
    if stratify and stratify in internal.columns:
        counts = internal[stratify].value_counts()
        if counts.min() >= 2:
            labels = internal[stratify].values
    train_ids, test_ids = train_test_split(
        internal["patient_id"].values, test_size=test_fraction, random_state=seed, stratify=labels
    )
    cohort[list(train_ids)] = "train"
    cohort[list(test_ids)] = "test"
    return cohort


def assemble_cohort(
    qc_paths, clinical_path, manifest_problems, required, split, seed, on_bad_case, extra_exclusions=None
):
    """Combine inspection and registration verdicts with the clinical table: (clinical with split, exclusions).

    ``extra_exclusions``: TSV of patients dropped before inspection (columns EXCLUSION_COLUMNS,
    e.g. results/raw/acquisition_exclusions.tsv); they are listed with the others.
    """
    # A verdict marked skipped repeats an earlier stage's exclusion (registration after a failed
    # inspection); every other failed verdict is one exclusion row.
    qc = [json.loads(Path(p).read_text()) for p in qc_paths]
    qc = [r for r in qc if not r.get("skipped")]
    exclusions = [dict(r) for r in manifest_problems]
    if extra_exclusions is not None:
        earlier = pd.read_csv(extra_exclusions, sep="\t", dtype=str, keep_default_na=False)
        exclusions += earlier[EXCLUSION_COLUMNS].to_dict("records")
    exclusions += [{k: r[k] for k in EXCLUSION_COLUMNS} for r in qc if not r["ok"]]
    passed = {r["patient_id"] for r in qc if r["ok"]} - {r["patient_id"] for r in qc if not r["ok"]}
    clinical = pd.read_csv(clinical_path, sep="\t", dtype={"patient_id": str})
    for bad in duplicated_clinical_rows(clinical, str(clinical_path)):
        if on_bad_case == "fail":
            raise bad
        exclusions.append(bad.as_record())
        passed.discard(bad.patient_id)
    clinical = clinical.drop_duplicates("patient_id", keep=False)
    no_clinical = passed - set(clinical["patient_id"])
    for patient_id in sorted(no_clinical):
        bad = BadCase(patient_id, str(clinical_path), "patient has images but no clinical row", "add the patient to the clinical table", stage="clinical")
        if on_bad_case == "fail":
            raise bad
        exclusions.append(bad.as_record())
    clinical = clinical.loc[clinical["patient_id"].isin(passed)]
    clinical_problems = _missing_clinical(clinical, required, str(clinical_path))
    if clinical_problems and on_bad_case == "fail":
        first = clinical_problems[0]
        raise BadCase(first["patient_id"], first["file"], first["reason"], first["fix"], stage="clinical")
    exclusions += clinical_problems
    dropped = {r["patient_id"] for r in clinical_problems}
    clinical = clinical.loc[~clinical["patient_id"].isin(dropped)].copy()
    cohort = split_cohort(clinical, split["test_fraction"], split["external_sites"], split["stratify"], seed)
    clinical.insert(1, "cohort", clinical["patient_id"].map(cohort))
    clinical = clinical.sort_values("patient_id").reset_index(drop=True)
    exclusion_table = pd.DataFrame(exclusions, columns=EXCLUSION_COLUMNS).sort_values("patient_id", kind="stable")
    return clinical, exclusion_table.reset_index(drop=True)
