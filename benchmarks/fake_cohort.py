"""A synthetic study's working directory as it stands after the cohort checkpoint, without images.

Every file the cohort stage writes exists (empty, except the tables the DAG reads), with
timestamps in dependency order, so that `snakemake --dry-run` plans everything after the
checkpoint: the DAG of a study of any size, built in seconds instead of hours of imaging.
"""

import os
import time
from pathlib import Path

import pandas as pd

GENE_SET_LIBRARIES = ["go_bp", "go_cc", "go_mf", "kegg", "hallmark", "estimate"]
COHORT_OUTPUTS = [
    "results/raw/phantoms.tsv",
    "results/raw/expression/counts.tsv",
    "results/raw/expression/samples.tsv",
    *[f"results/raw/genesets/{name}.gmt" for name in GENE_SET_LIBRARIES],
    "results/raw/signatures/immune_signature.tsv",
    "results/raw/mutations.maf",
    "results/truth/patients.tsv",
    "results/truth/de_genes.tsv",
    "results/truth/cell_fractions.tsv",
    "results/truth/modules.tsv",
]


def synthetic_patients(n_internal: int, n_external: int) -> list[str]:
    return [f"SYN{number:04d}" for number in range(1, n_internal + n_external + 1)]


def write_checkpointed_cohort(workdir: Path, n_internal: int, n_external: int) -> list[str]:
    """Write the post-checkpoint state of an n_internal + n_external patient synthetic study.

    Internal patients are split 70/30 into train/test, the rest are external. Returns the
    patient ids. The study's config must use the same n_internal and n_external.
    """
    workdir = Path(workdir)
    patients = synthetic_patients(n_internal, n_external)
    cohorts = [
        "external" if index >= n_internal else ("test" if index % 10 >= 7 else "train")
        for index in range(len(patients))
    ]
    started = time.time() - 3600
    generated = [workdir / path for path in COHORT_OUTPUTS]
    per_patient = [
        path
        for patient in patients
        for path in (workdir / f"results/raw/{patient}", workdir / f"results/truth/{patient}/habitats.nii.gz")
    ]
    qc = [workdir / f"results/cohort/qc/{patient}.json" for patient in patients]
    clinical = pd.DataFrame({"patient_id": patients, "cohort": cohorts, "site": "synthetic"})
    raw_clinical = workdir / "results/raw/clinical.tsv"
    cohort_clinical = workdir / "results/cohort/clinical.tsv"
    exclusions = workdir / "results/cohort/exclusions.tsv"
    for path in [raw_clinical, cohort_clinical, exclusions, *generated, *per_patient, *qc]:
        path.parent.mkdir(parents=True, exist_ok=True)
    clinical.to_csv(raw_clinical, sep="\t", index=False)
    clinical.to_csv(cohort_clinical, sep="\t", index=False)
    exclusions.write_text("patient_id\tpath\treason\tfix\n")
    for path in [*generated, *per_patient, *qc]:
        if path.suffix:
            path.touch()
        else:
            path.mkdir(exist_ok=True)
    # generator outputs < per-patient phantoms < inspection verdicts < the checkpoint's tables
    for stage, paths in enumerate([[raw_clinical, *generated], per_patient, qc, [cohort_clinical, exclusions]]):
        for path in paths:
            os.utime(path, (started + 60 * stage, started + 60 * stage))
    return patients
