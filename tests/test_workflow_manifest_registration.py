"""A manifest study (your own images) whose phases lie on different grids and whose masks are
drawn on one phase only (named per patient) runs through inspection, registration and
resampling; the carried masks land on the planted tumours."""

import os
import subprocess

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from conftest import REPO, SNAKEMAKE

from radiogenomics.cohort.synthetic import generator as synthetic

pytestmark = pytest.mark.workflow

SMALL = {"seed": 11, "n_internal": 6, "n_external": 0, "n_genes": 300}


def _write_study(root):
    rows, clinical = [], []
    for mask_phase, numbers in (("venous", [0, 1, 2]), ("arterial", [3, 4])):
        cohort = synthetic.simulate_cohort(SMALL, "venous", mask_phase)
        for number in numbers:
            row = cohort["phantoms"].iloc[number].copy()
            row.update(pd.Series({"fov_x": 120.0, "fov_y": 110.0, "centre_x": 0.0, "centre_y": 0.0,
                                  "kidney_x": 30.0, "kidney_y": 0.0, "format": "nifti"}))  # fmt: skip
            folder = root / "images" / row.patient_id
            manifest = synthetic.write_phantom(row, folder, root / "truth" / row.patient_id)
            rows.append({key: os.path.relpath(value, root) if key in ("arterial", "venous", "mask") else value
                         for key, value in manifest.items()})  # fmt: skip
            clinical.append(cohort["clinical"].iloc[number])
    pd.DataFrame(rows).to_csv(root / "manifest.tsv", sep="\t", index=False)
    pd.DataFrame(clinical).to_csv(root / "clinical.tsv", sep="\t", index=False)
    config = {
        "cohort": {
            "source": "manifest", "manifest": "manifest.tsv", "clinical": "clinical.tsv",
            "split": {"test_fraction": 0.4, "external_sites": [], "stratify": None},
        },
        "imaging": {"registration": {"qc_patients": 2}},
    }  # fmt: skip
    (root / "study.yaml").write_text(yaml.safe_dump(config))
    return pd.DataFrame(rows)


def test_manifest_study_with_masks_on_one_phase_registers_and_resamples(tmp_path):
    manifest = _write_study(tmp_path)
    assert set(manifest["mask_phase"]) == {"venous", "arterial"}
    command = [
        str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
        "--configfile", str(tmp_path / "study.yaml"), "--cores", "2",
        "results/imaging/registration.tsv", "results/figures/registration_qc.png",
        *[f"results/segment/{patient}/tumor.nii.gz" for patient in manifest["patient_id"]],
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    exclusions = pd.read_csv(tmp_path / "results/cohort/exclusions.tsv", sep="\t")
    assert exclusions.empty, exclusions
    table = pd.read_csv(tmp_path / "results/imaging/registration.tsv", sep="\t")
    assert sorted(table["patient_id"]) == sorted(manifest["patient_id"])
    assert set(table["phase"]) == {"arterial"} and table["tre_mm"].isna().all()  # no truth here
    assert (table["metric"] < table["initial_metric"]).all()
    for patient in manifest["patient_id"]:
        tumor = sitk.ReadImage(str(tmp_path / f"results/segment/{patient}/tumor.nii.gz"))
        planted = sitk.ReadImage(str(tmp_path / f"truth/{patient}/habitats.nii.gz"))
        assert tumor.GetSize() == planted.GetSize()  # the reference (venous) phase's grid
        found = sitk.GetArrayFromImage(tumor) > 0
        truth = sitk.GetArrayFromImage(planted) > 0
        dice = 2 * np.sum(found & truth) / (found.sum() + truth.sum())
        assert dice > 0.9, (patient, dice)
    assert (tmp_path / "results/figures/registration_qc.prov.json").exists()
