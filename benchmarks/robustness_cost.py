"""Cost of the radiomics ICC raters against one plain extraction, on patients of a finished study.

For each patient: CPU seconds of features.extract_patient_files (the stage's own extraction) and of
radiomics_robustness.rater_features with N perturbations (each rater's mask re-derives habitats and
shell, then extracts), measured in the same run; prints the ratio.

usage: python benchmarks/robustness_cost.py WORKDIR [N_PATIENTS] [N_PERTURBATIONS]
       (WORKDIR: a study run up to `features`, e.g. the default study)
"""

import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from radiogenomics.features.radiomics import extract_patient_files  # noqa: E402
from radiogenomics.features.raters import rater_features  # noqa: E402


def main() -> None:
    workdir = Path(sys.argv[1])
    n_patients = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    n_perturbations = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    params = REPO / config["features"]["radiomics"]["params"]
    clinical = pd.read_csv(workdir / "results/cohort/clinical.tsv", sep="\t")
    patients = sorted(clinical.loc[clinical.cohort == "train", "patient_id"])[:n_patients]
    plain_total = raters_total = 0.0
    for patient in patients:
        folder = {k: workdir / f"results/{k}/{patient}" for k in ("imaging", "segment", "regions")}
        venous = str(folder["imaging"] / "venous.nii.gz")
        started = time.process_time()
        extract_patient_files(
            patient, {"venous": venous}, folder["segment"] / "tumor.nii.gz",
            folder["regions"] / "habitats.nii.gz", folder["regions"] / "peri.nii.gz",
            workdir / "results/regions/habitat_model.json", params,
        )
        plain = time.process_time() - started
        started = time.process_time()
        rater_features(
            patient, {"venous": venous},
            {p: str(folder["imaging"] / f"{p}.nii.gz") for p in ("arterial", "venous")},
            folder["segment"] / "tumor.nii.gz", workdir / "results/regions/habitat_model.json",
            params, n_perturbations=n_perturbations, seed=1,
        )
        raters = time.process_time() - started
        plain_total, raters_total = plain_total + plain, raters_total + raters
        print(f"{patient}: plain {plain:.1f} CPU-s, {n_perturbations} raters {raters:.1f} CPU-s", flush=True)
    print(f"ratio raters / plain over {len(patients)} patients: {raters_total / plain_total:.2f}")


if __name__ == "__main__":
    main()
