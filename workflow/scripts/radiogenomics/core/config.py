"""Config validation with messages a user can act on, and the cohort's patient list."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from .cases import BadCase, check_patient_id


class ConfigError(ValueError):
    pass


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        return f"config key '{key}': {error.instance!r} is not allowed; allowed values: {allowed}"
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(schema.get("properties", {})))
        return f"config key '{key}': {error.message}; allowed keys: {allowed}"
    if error.validator == "required":
        return f"config key '{key}': {error.message}"
    return f"config key '{key}': {error.message}"


def _fill_defaults(config: dict, schema: dict) -> None:
    for name, sub in schema.get("properties", {}).items():
        if "default" in sub and name not in config:
            config[name] = json.loads(json.dumps(sub["default"]))
        if sub.get("type") == "object":
            config.setdefault(name, {})
            if isinstance(config[name], dict):
                _fill_defaults(config[name], sub)


def validate_config(config: dict, schema_path: str | Path) -> dict:
    """Fill defaults from the schema, then validate; raise ConfigError listing every problem."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    _fill_defaults(config, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = "\n  ".join(_describe(e) for e in errors)
        raise ConfigError(f"invalid configuration ({schema_path}):\n  {lines}")
    return config


def genomics_skip_reason(config: dict) -> str | None:
    """Why this study's radiogenomics stage does not run, or None when it runs.

    It needs expression data (the synthetic generator's, or GDC's for source public with
    ``cohort.gdc.expression``; a manifest study brings images and clinical data only) and a
    modelling task whose radscore groups it compares (``genomics.task``).
    """
    source = config.get("cohort", {}).get("source", "synthetic")
    if source == "manifest":
        return (
            "no expression data: a manifest study (cohort.source: manifest) brings images and "
            "clinical data only, so the radiogenomics stage was skipped"
        )
    if source == "public" and not config["cohort"].get("gdc", {}).get("expression", True):
        return "no expression data (cohort.gdc.expression: false), so the radiogenomics stage was skipped"
    task = config.get("genomics", {}).get("task")
    tasks = config.get("models", {}).get("tasks")
    if task is not None and tasks is not None and task not in tasks:
        return (
            f"genomics.task {task!r} is not a modelling task ({', '.join(sorted(tasks))}), so the "
            "radiogenomics stage was skipped"
        )
    return None


def synthetic_patient_ids(n_internal: int, n_external: int) -> list[str]:
    """Deterministic ids, internal sites first (matches radiogenomics.cohort.synthetic.generator)."""
    return [f"SYN{i:04d}" for i in range(1, n_internal + n_external + 1)]


def read_table(path: str | Path, text_only: bool = False) -> pd.DataFrame:
    """A tab-separated table, read once per version of the file (its mtime and size).

    DAG input functions ask for the cohort table or the manifest once per patient and rule; a
    study of thousands of patients would otherwise re-read them tens of thousands of times. A
    rewritten file (the cohort checkpoint re-run) is read again. text_only: every column as
    text, empty cells as ''. The table is shared between callers: do not modify it.
    """
    stat = os.stat(path)
    return _read_table(str(path), stat.st_mtime_ns, stat.st_size, text_only)


@functools.lru_cache(maxsize=16)
def _read_table(path: str, mtime_ns: int, size: int, text_only: bool) -> pd.DataFrame:
    if text_only:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return pd.read_csv(path, sep="\t", dtype={"patient_id": str})


def manifest_rows(path: str | Path) -> dict[str, dict[str, str]]:
    """Each patient's manifest row (column -> text), read once per version of the manifest."""
    stat = os.stat(path)
    return _manifest_rows(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _manifest_rows(path: str, mtime_ns: int, size: int) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    for row in _read_table(path, mtime_ns, size, True).to_dict("records"):
        rows.setdefault(row["patient_id"], row)  # ids are unique once manifest_patients has run
    return rows


def manifest_patients(manifest_path: str | Path, on_bad_case: str):
    """Patient ids of a user manifest, checked cheaply (no image is opened).

    Returns (valid ids, list of exclusion records). Ids with path characters and duplicated ids
    are refused: raised as BadCase when on_bad_case == 'fail'.
    """
    table = pd.read_csv(manifest_path, sep="\t", dtype=str, keep_default_na=False)
    if "patient_id" not in table.columns:
        raise ConfigError(f"{manifest_path}: the manifest needs a 'patient_id' column")
    problems, valid = [], []
    counts = table["patient_id"].value_counts()
    for patient_id in table["patient_id"]:
        try:
            check_patient_id(patient_id, str(manifest_path))
            if counts[patient_id] > 1:
                raise BadCase(
                    patient_id,
                    str(manifest_path),
                    f"patient id appears {counts[patient_id]} times in the manifest",
                    "give every patient one row (one id per patient)",
                    stage="manifest",
                )
        except BadCase as bad:
            if on_bad_case == "fail":
                raise
            if bad.as_record() not in problems:
                problems.append(bad.as_record())
            continue
        valid.append(patient_id)
    return valid, problems


def seeded_subset(patients: list[str], n_patients: int, seed: int) -> list[str]:
    """A seeded random subset of the training patients (those re-read for the ICC filter: S1
    50, S2 30; those nnU-Net trains on), sorted; all of them when there are fewer. Depends only
    on the sorted ids, so every DAG build picks the same patients."""
    import numpy as np

    patients = sorted(patients)
    if n_patients >= len(patients):
        return patients
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(patients, size=n_patients, replace=False).tolist())


def drawn_phase_sidecar(mask_path: str | Path) -> Path:
    """``{patient_id}.json`` beside a reader's mask ``{patient_id}.nii.gz``: the optional file
    naming the phase the mask was drawn on (radiogenomics.imaging.drawn_masks). Here, not there, because
    the DAG build asks for it and must not import SimpleITK."""
    path = Path(mask_path)
    name = path.name.removesuffix(".nii.gz") if path.name.endswith(".nii.gz") else path.stem
    return path.with_name(f"{name}.json")
