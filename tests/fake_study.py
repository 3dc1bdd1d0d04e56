"""A small fake results tree for the models/evaluate stage: clinical.tsv, radiomics.parquet, an
ICC table and truth, with a latent z that drives some features of every region, survival and T
stage.

Run as a script to write one: ``python tests/fake_study.py DIR [N_PATIENTS]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

REGIONS = ("whole", "sub1", "sub2", "peri")
FAKE_ICC_TABLE = "results/features/icc_from_readers.tsv"  # set as models.robustness_table


def fake_study(n_patients: int = 120, features_per_region: int = 30, seed: int = 7):
    """(clinical, radiomics, truth) tables; a third of the features per region follow z."""
    rng = np.random.default_rng(seed)
    ids = [f"FAKE{i:04d}" for i in range(n_patients)]
    z = rng.normal(size=n_patients)
    t_high = rng.uniform(size=n_patients) < 1 / (1 + np.exp(-(1.6 * z - 0.4)))
    risk = 0.9 * z + 0.5 * t_high
    death = 40.0 * (-np.log(rng.uniform(size=n_patients)) / np.exp(risk)) ** (1 / 1.3)
    recurrence = 30.0 * (-np.log(rng.uniform(size=n_patients)) / np.exp(risk)) ** (1 / 1.3)
    censor = rng.uniform(30, 90, size=n_patients)
    cohort = np.where(np.arange(n_patients) < 0.6 * n_patients, "train", "test").astype(object)
    cohort[int(0.8 * n_patients) :] = "external"
    size = np.round(np.clip(6 + 2.5 * z + rng.normal(size=n_patients), 1.5, 15), 2)
    t_stage = np.where(
        t_high,
        np.where(rng.uniform(size=n_patients) < 0.1, "T4", "T3a"),
        np.where(size <= 4, "T1a", np.where(size <= 7, "T1b", "T2a")),
    )
    clinical = pd.DataFrame(
        {
            "patient_id": ids,
            "cohort": cohort,
            "site": np.where(cohort == "external", "C", "A"),
            "os_months": np.round(np.minimum(death, censor), 2),
            "os_event": (death <= censor).astype(int),
            "dfs_months": np.round(np.minimum(np.minimum(death, recurrence), censor), 2),
            "dfs_event": (np.minimum(death, recurrence) <= censor).astype(int),
            "t_stage": t_stage,
            "t_group": np.where(t_high, "high", "low"),
            "grade": np.digitize(z + 0.6 * rng.normal(size=n_patients), [-1, 0, 1]) + 1,
            "necrosis": (z + rng.normal(size=n_patients) > 0.3).astype(int),
            "size_cm": size,
            "age": np.round(rng.normal(61, 10, size=n_patients)).astype(int),
            "sex": np.where(rng.uniform(size=n_patients) < 0.65, "M", "F"),
            "ecog": np.digitize(0.5 * z + rng.normal(size=n_patients), [0.8, 1.8]),
            "bmi": np.round(rng.normal(27, 4, size=n_patients), 1),
            "mvi": (rng.uniform(size=n_patients) < 1 / (1 + np.exp(1.5 - z))).astype(int),
            "m_stage": (rng.uniform(size=n_patients) < 0.08).astype(int),
            "n_stage": (rng.uniform(size=n_patients) < 0.06).astype(int),
        }
    )
    columns = {"patient_id": ids}
    driven = features_per_region // 3
    for region in REGIONS:
        weight = 1.0 if region in ("sub1", "peri") else 0.6
        for j in range(features_per_region):
            name = f"{region}__venous_original_feature{j:03d}"
            noise = rng.normal(size=n_patients)
            signal = weight * z if j < driven else 0.0
            columns[name] = 50 + 10 * (signal + noise) * (1 + j % 3)
    radiomics = pd.DataFrame(columns)
    truth = pd.DataFrame({"patient_id": ids, "z": z, "risk": risk})
    return clinical, radiomics, truth


def write_fake_results(root: Path, n_patients: int = 120, features_per_region: int = 30):
    root = Path(root)
    clinical, radiomics, truth = fake_study(n_patients, features_per_region)
    for folder in ("cohort", "features", "truth"):
        (root / "results" / folder).mkdir(parents=True, exist_ok=True)
    clinical.to_csv(root / "results/cohort/clinical.tsv", sep="\t", index=False)
    radiomics.to_parquet(root / "results/features/radiomics.parquet", index=False)
    truth.to_csv(root / "results/truth/patients.tsv", sep="\t", index=False)
    # An ICC table brought by the user (models.robustness_table), as from two readers' masks.
    features = [c for c in radiomics.columns if c != "patient_id"]
    icc = np.random.default_rng(0).uniform(0.5, 1.0, len(features))
    pd.DataFrame({"feature": features, "icc": icc}).to_csv(
        root / FAKE_ICC_TABLE, sep="\t", index=False
    )
    return clinical, radiomics, truth


if __name__ == "__main__":
    write_fake_results(Path(sys.argv[1]), *(int(a) for a in sys.argv[2:3]))
