import json

import pandas as pd
import pytest

from radiogenomics.core.cases import BadCase
from radiogenomics.cohort.assembly import assemble_cohort, split_cohort

SPLIT = {"test_fraction": 0.3, "external_sites": ["C"], "stratify": "t_group"}


def clinical_table(n_internal=40, n_external=10):
    rows = []
    for i in range(n_internal + n_external):
        rows.append(
            {
                "patient_id": f"P{i:03d}",
                "site": "C" if i >= n_internal else "AB"[i % 2],
                "os_months": 10.0 + i,
                "os_event": i % 2,
                "t_stage": "T3a" if i % 4 == 0 else "T1a",
                "t_group": "high" if i % 4 == 0 else "low",
                "size_cm": 4.0,
            }
        )
    return pd.DataFrame(rows)


def test_split_is_seeded_stratified_and_keeps_external():
    clinical = clinical_table()
    first = split_cohort(clinical, 0.3, ["C"], "t_group", seed=1)
    assert first.equals(split_cohort(clinical.sample(frac=1, random_state=3), 0.3, ["C"], "t_group", seed=1))
    assert (first[clinical.loc[clinical.site == "C", "patient_id"]] == "external").all()
    internal = clinical.loc[clinical.site != "C"].set_index("patient_id")
    assert (first[internal.index] != "external").all()
    assert (first == "test").sum() == 12
    high = internal.index[internal.t_group == "high"]
    assert (first[high] == "test").sum() == 3  # 30 % of the 10 high-stage internal patients
    assert not first.equals(split_cohort(clinical, 0.3, ["C"], "t_group", seed=2))


def write_qc(tmp_path, patient_id, ok, reason=""):
    path = tmp_path / f"{patient_id}.json"
    record = {"ok": ok, "patient_id": patient_id, "stage": "inspect", "reason": reason, "file": "x", "fix": "y"}
    path.write_text(json.dumps(record))
    return path


def test_assemble_records_every_dropped_patient(tmp_path):
    clinical = clinical_table()
    clinical.loc[clinical.patient_id == "P005", "os_months"] = None
    clinical_path = tmp_path / "clinical.tsv"
    clinical.to_csv(clinical_path, sep="\t", index=False)
    qc = [write_qc(tmp_path, pid, pid != "P002", "tumour mask is empty") for pid in clinical.patient_id]
    problems = [{"patient_id": "../x", "stage": "manifest", "reason": "path", "file": "m", "fix": "f"}]
    included, exclusions = assemble_cohort(qc, clinical_path, problems, ["os_months", "t_stage"], SPLIT, 0, "exclude")
    assert set(exclusions.patient_id) == {"../x", "P002", "P005"}
    assert exclusions.set_index("patient_id").loc["P005", "stage"] == "clinical"
    assert len(included) + 2 == len(clinical)
    assert set(included.cohort) == {"train", "test", "external"}
    assert list(included.columns[:2]) == ["patient_id", "cohort"]


def test_assemble_fail_mode_raises_on_missing_clinical(tmp_path):
    clinical = clinical_table()
    clinical.loc[clinical.patient_id == "P005", "t_stage"] = None
    clinical_path = tmp_path / "clinical.tsv"
    clinical.to_csv(clinical_path, sep="\t", index=False)
    qc = [write_qc(tmp_path, pid, True) for pid in clinical.patient_id]
    with pytest.raises(BadCase, match="P005.*t_stage"):
        assemble_cohort(qc, clinical_path, [], ["os_months", "t_stage"], SPLIT, 0, "fail")


def test_assemble_lists_acquisition_exclusions(tmp_path):
    clinical = clinical_table()
    clinical_path = tmp_path / "clinical.tsv"
    clinical.to_csv(clinical_path, sep="\t", index=False)
    qc = [write_qc(tmp_path, pid, True) for pid in clinical.patient_id]
    acquisition = pd.DataFrame(
        [{"patient_id": "TCGA-XX-0001", "stage": "acquire", "reason": "no CT series for phase(s) ['venous']", "file": "TCIA TCGA-KIRC", "fix": "add an override"}]
    )
    acquisition_path = tmp_path / "acquisition_exclusions.tsv"
    acquisition.to_csv(acquisition_path, sep="\t", index=False)
    included, exclusions = assemble_cohort(
        qc, clinical_path, [], ["os_months"], SPLIT, 0, "exclude", extra_exclusions=acquisition_path
    )
    assert exclusions.to_dict("records") == acquisition.to_dict("records")
    assert len(included) == len(clinical)


def test_missing_segmentation_is_a_bad_case_naming_the_file(tmp_path):
    import SimpleITK as sitk
    import numpy as np

    from radiogenomics.cohort.assembly import inspect_case

    image = sitk.GetImageFromArray(np.zeros((8, 8, 8), dtype=np.int16))
    sitk.WriteImage(image, str(tmp_path / "venous.nii.gz"))
    expected = tmp_path / "masks" / "TCGA-B0-0001.nii.gz"
    verdict = inspect_case("TCGA-B0-0001", {"venous": str(tmp_path / "venous.nii.gz")}, ["venous"], "venous", "exclude", expected_mask=str(expected))
    assert not verdict["ok"] and verdict["file"] == str(expected)
    assert verdict["fix"].startswith("provide results of a segmentation") and str(expected) in verdict["fix"]
    with pytest.raises(BadCase, match="TCGA-B0-0001"):
        inspect_case("TCGA-B0-0001", {"venous": str(tmp_path / "venous.nii.gz")}, ["venous"], "venous", "fail", expected_mask=str(expected))
    mask = np.zeros((8, 8, 8), dtype=np.uint8)
    mask[3:5, 3:5, 3:5] = 1
    expected.parent.mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(mask), str(expected))
    assert inspect_case("TCGA-B0-0001", {"venous": str(tmp_path / "venous.nii.gz")}, ["venous"], "venous", "exclude", expected_mask=str(expected))["ok"]


def test_duplicated_clinical_row_is_named_with_file_lines_and_fix(tmp_path):
    clinical = clinical_table()
    clinical = pd.concat([clinical, clinical.loc[clinical.patient_id == "P007"]], ignore_index=True)
    clinical_path = tmp_path / "clinical.tsv"
    clinical.to_csv(clinical_path, sep="\t", index=False)
    qc = [write_qc(tmp_path, pid, True) for pid in clinical.patient_id.unique()]
    included, exclusions = assemble_cohort(qc, clinical_path, [], ["os_months"], SPLIT, 0, "exclude")
    row = exclusions.set_index("patient_id").loc["P007"]
    assert row.stage == "clinical" and row.file == str(clinical_path)
    assert row.reason == "patient has 2 rows in the clinical table (lines 9, 52)"
    assert "one row per patient" in row.fix
    assert "P007" not in set(included.patient_id) and len(included) == 49
    with pytest.raises(BadCase, match="patient P007: patient has 2 rows"):
        assemble_cohort(qc, clinical_path, [], ["os_months"], SPLIT, 0, "fail")


def test_manifest_path_that_does_not_exist_is_an_exclusion(tmp_path):
    from radiogenomics.cohort.assembly import inspect_case

    paths = {"venous": str(tmp_path / "nowhere" / "venous.nii.gz"), "mask": str(tmp_path / "mask.nii.gz")}
    verdict = inspect_case("P1", paths, ["venous"], "venous", "exclude")
    assert not verdict["ok"] and verdict["file"] == paths["venous"]
    assert verdict["reason"] == "venous phase file does not exist"
