# Config validation and input functions. Everything here runs at every DAG build (and in every
# cluster job), so it only reads small tables: the config, a manifest, the cohort checkpoint.
import sys
from snakemake.exceptions import WorkflowError
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))
from radiogenomics.config import (  # noqa: E402
    ConfigError,
    manifest_patients,
    synthetic_patient_ids,
    validate_config,
)

try:
    validate_config(
        config, Path(workflow.basedir) / "config/schemas/config.schema.yaml"
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None

ENVS = "../envs"
SEED = config["study"]["seed"]
SYNTHETIC = config["cohort"]["source"] == "synthetic"
PHASES = config["imaging"]["phases"]
ON_BAD_CASE = config["cohort"]["on_bad_case"]


def _candidate_patients():
    if SYNTHETIC:
        return (
            synthetic_patient_ids(
                config["synthetic"]["n_internal"], config["synthetic"]["n_external"]
            ),
            [],
        )
    if not config["cohort"]["manifest"]:
        raise WorkflowError(
            "cohort.source is 'manifest' but cohort.manifest is not set"
        )
    return manifest_patients(config["cohort"]["manifest"], ON_BAD_CASE)


CANDIDATES, MANIFEST_PROBLEMS = _candidate_patients()


wildcard_constraints:
    patient="[A-Za-z0-9][A-Za-z0-9._-]*",


def project_file(path):
    """A config path relative to the working directory, else to the workflow's own folder."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return str(path)
    return str(Path(workflow.basedir) / path)


def raw_case_input(wildcards):
    """The files one patient's inspection reads."""
    if SYNTHETIC:
        return {"raw": f"results/raw/{wildcards.patient}"}
    row = _manifest_row(wildcards.patient)
    return {key: row[key] for key in [*PHASES, "mask"] if row.get(key)}


def _manifest_row(patient):
    table = pd.read_csv(
        config["cohort"]["manifest"], sep="\t", dtype=str, keep_default_na=False
    )
    return table.loc[table["patient_id"] == patient].iloc[0].to_dict()


def cohort_table():
    """clinical.tsv after the cohort checkpoint: included patients with their split."""
    path = checkpoints.cohort.get().output.clinical
    return pd.read_csv(path, sep="\t", dtype={"patient_id": str})


def included_patients():
    return sorted(cohort_table()["patient_id"])


def training_patients():
    table = cohort_table()
    return sorted(table.loc[table["cohort"] == "train", "patient_id"])


def feature_targets():
    return ["results/features/radiomics.parquet", "results/figures/habitat_bic.png"]


def all_targets():
    # model_targets() lives in models.smk, included after this file
    return feature_targets() + model_targets()
