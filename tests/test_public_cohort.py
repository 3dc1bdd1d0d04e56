import hashlib

import numpy as np
import pandas as pd
import SimpleITK as sitk
from fake_servers import fake_cohort, source_volume  # noqa: F401

from radiogenomics.core.io import read_tsv
from radiogenomics.cohort.public.acquire import fetch_public_cohort
from radiogenomics.imaging.dicom import read_dicom_series
from radiogenomics.cohort.public.manifest import MANIFEST_COLUMNS

PATIENTS = ["TCGA-B0-5094", "TCGA-B0-5095", "TCGA-CJ-4642"]


def cohort_config(server, attempts=4, **gdc_extra):
    return {
        "source": "public",
        "min_os_days": 30,
        "download": {
            "attempts": attempts,
            "backoff_s": 0.001,
            "max_backoff_s": 0.01,
            "read_timeout_s": 0.5,
            "chunk_bytes": 64,
        },
        "tcia": {
            "base_url": f"{server.url}/tcia",
            "collection": "TCGA-KIRC",
            "phases": ["arterial", "venous"],
            "required_phases": ["venous"],
            "series_rules": {"min_images": 2},
        },
        "gdc": {
            "base_url": f"{server.url}/gdc",
            "project": "TCGA-KIRC",
            "page_size": 2,
            "batch_size": 2,
            **gdc_extra,
        },
    }


def test_cohort_downloads_end_to_end_under_faults_and_continues_to_features(fake_cohort, tmp_path):
    server, state = fake_cohort
    for route, faults in {
        "tcia_series": ["500"],
        "tcia_image": ["truncate", "bad_md5", "500", "timeout"],
        "gdc_files": ["timeout"],
        "gdc_cases": ["500"],
        "gdc_bundle": ["bad_md5", "truncate"],
        "gdc_data": ["truncate", "500"],
    }.items():
        state.inject(route, *faults)
    raw = tmp_path / "results" / "raw"
    summary = fetch_public_cohort(cohort_config(server), raw, workdir=tmp_path)
    assert summary["patients"] == PATIENTS and summary["exclusions"].empty
    assert all(not state.faults[r] for r in state.faults)  # every fault was hit

    manifest = read_tsv(raw / "manifest.tsv", dtype=str, keep_default_na=False)
    assert manifest.columns.tolist() == [
        "patient_id",
        "site",
        "format",
        "arterial",
        "venous",
        "mask",
    ]
    assert manifest["venous"].tolist() == [f"results/raw/dicom/{p}/venous" for p in PATIENTS]
    series = read_tsv(raw / "tcia" / "series.tsv", dtype=str, keep_default_na=False)
    assert set(series.loc[series["SeriesDescription"] == "SCOUT", "chosen_for"]) == {""}

    downloads = read_tsv(raw / "downloads.tsv", dtype=str)
    assert downloads.columns.tolist() == MANIFEST_COLUMNS
    assert downloads["kind"].value_counts().to_dict() == {
        "dicom_series": 6,
        "star_counts": 3,
        "masked_maf": 3,
    }
    for row in downloads[downloads["kind"] != "dicom_series"].itertuples():
        blob = (tmp_path / row.local_path).read_bytes()
        assert hashlib.md5(blob).hexdigest() == row.md5
        assert hashlib.sha256(blob).hexdigest() == row.sha256 and int(row.size_bytes) == len(blob)

    # Nothing lost: every source file is at its final path, byte for byte.
    for s in state.series:
        if s.description == "SCOUT":
            continue
        phase = "venous" if "VENOUS" in s.description else "arterial"
        folder = raw / "dicom" / s.patient_id / phase
        assert {n: (folder / n).read_bytes() for n in s.files} == s.files
    counts = read_tsv(raw / "expression" / "counts.tsv")
    assert counts.columns.tolist() == ["gene", *[f"{p}-01A" for p in PATIENTS]]
    assert counts.set_index("gene").loc["VHL"].tolist() == [300, 280, 260]
    clinical = read_tsv(raw / "clinical.tsv")
    assert clinical["patient_id"].tolist() == PATIENTS
    assert len(read_tsv(raw / "mutations.maf")) == 5
    assert not [p for p in raw.rglob(".*") if p.is_file()]  # no temporaries left behind

    # ... and continues to features: DICOM -> image -> PyRadiomics first-order statistics.
    from radiomics import featureextractor

    image = read_dicom_series(tmp_path / manifest.loc[0, "venous"], PATIENTS[0])
    mask_array = np.zeros(sitk.GetArrayFromImage(image).shape, np.uint8)
    mask_array[1:4, 3:9, 2:8] = 1
    mask = sitk.GetImageFromArray(mask_array)
    mask.CopyInformation(image)
    extractor = featureextractor.RadiomicsFeatureExtractor(binWidth=25)
    extractor.disableAllFeatures()
    extractor.enableFeaturesByName(firstorder=["Mean", "Maximum"])
    features = extractor.execute(image, mask)
    volume = source_volume(0)[0]
    assert float(features["original_firstorder_Mean"]) == np.mean(volume[1:4, 3:9, 2:8])
    assert float(features["original_firstorder_Maximum"]) == volume[1:4, 3:9, 2:8].max()


def test_rerun_after_interrupted_acquisition_completes_it(fake_cohort, tmp_path):
    server, state = fake_cohort
    raw = tmp_path / "raw"
    # First run: one attempt only, and the second series' ZIP is cut off -> that patient fails.
    state.inject("tcia_image", None, "truncate")
    first = fetch_public_cohort(
        cohort_config(server, attempts=1, expression=False, mutations=False), raw, workdir=tmp_path
    )
    assert first["exclusions"]["stage"].tolist() == ["acquire"]
    failed = first["exclusions"]["patient_id"].iloc[0]
    assert "CT download failed" in first["exclusions"]["reason"].iloc[0]
    # Venous arrived and was verified; the cut-off arterial ZIP (NBIA sends no Content-Length,
    # so only the broken archive shows it) was discarded and sits nowhere.
    assert (raw / "dicom" / failed / "venous").is_dir()
    assert not (raw / "dicom" / failed / "arterial").exists()
    assert [p.name for p in (raw / "dicom" / failed).iterdir()] == ["venous"]
    assert failed not in read_tsv(raw / "manifest.tsv")["patient_id"].tolist()
    images_before = state.count("tcia_image")

    second = fetch_public_cohort(cohort_config(server, attempts=1), raw, workdir=tmp_path)
    assert second["patients"] == PATIENTS and second["exclusions"].empty
    # Only the missing series was fetched again; verified folders were kept.
    assert state.count("tcia_image") - images_before == 1
    assert len(read_tsv(raw / "downloads.tsv")) == 6 + 3 + 3


def test_missing_phase_short_survival_and_zip_slip_are_recorded_not_lost(fake_cohort, tmp_path):
    server, state = fake_cohort
    state.series = [
        s for s in state.series if not (s.patient_id == PATIENTS[2] and "VENOUS" in s.description)
    ]
    state.cases[1]["diagnoses"][0]["days_to_last_follow_up"] = 20
    state.cases[1]["follow_ups"] = []  # its disease-status visits would be later contacts
    state.inject("tcia_image", "zipslip")
    summary = fetch_public_cohort(
        cohort_config(server, expression=False, mutations=False), tmp_path / "raw", workdir=tmp_path
    )
    reasons = summary["exclusions"].set_index("patient_id")["reason"]
    assert "zip-slip" in reasons[PATIENTS[0]]
    assert "survival shorter than 30 days" in reasons[PATIENTS[1]]
    assert "no CT series for phase(s) ['venous']" in reasons[PATIENTS[2]]
    assert summary["patients"] == []
    table = pd.read_csv(tmp_path / "raw" / "acquisition_exclusions.tsv", sep="\t")
    assert sorted(table["patient_id"]) == PATIENTS
    assert not list((tmp_path / "raw").rglob("escaped.dcm"))
    # Disabled or empty parts still leave their (empty) tables for the workflow rule.
    for name in (
        "manifest.tsv",
        "clinical.tsv",
        "expression/counts.tsv",
        "expression/samples.tsv",
        "mutations.maf",
        "downloads.tsv",
    ):
        assert (tmp_path / "raw" / name).is_file(), name
    assert read_tsv(tmp_path / "raw" / "mutations.maf").columns[0] == "Hugo_Symbol"
