"""A study of your own scans (cohort.source: manifest) end to end: NIfTI files written by the
synthetic generator, on a different grid per patient (three scanners' spacings, a flipped and an
axis-swapped orientation), two damaged inputs, no RNA-seq. It runs to `all`; the damaged inputs
are exclusions; the genomics stage is skipped with a note in the report."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from conftest import REPO, run_snakemake

from radiogenomics.imaging import grid
from radiogenomics.cohort.synthetic import generator as synthetic

pytestmark = pytest.mark.workflow

PHASES = ("arterial", "venous")
FLIPPED, SWAPPED = "SYN0002", "SYN0005"  # re-oriented, same physical scene
NO_FILE, NO_INTERCEPT = "SYN0004", "SYN0007"


def reorient(image, patient_id):
    if patient_id == FLIPPED:
        return sitk.Flip(image, [True, False, False], False)  # x axis reversed, origin moved
    if patient_id == SWAPPED:
        return sitk.PermuteAxes(image, [1, 0, 2])  # columns along y, rows along x
    return image


def write_scans(root: Path, n_internal=14, n_external=4):
    """Scans, manifest and clinical table of a small study; returns the manifest."""
    cohort = synthetic.simulate_cohort(
        {"n_internal": n_internal, "n_external": n_external, "n_genes": 50, "seed": 3, "bad_cases": {}}
    )
    cohort["phantoms"]["format"] = "nifti"
    rows = []
    for _, phantom in cohort["phantoms"].iterrows():
        patient_id = phantom["patient_id"]
        folder = root / "scans" / patient_id
        written = synthetic.write_phantom(phantom, folder, root / "unused_truth" / patient_id)
        row = {"patient_id": patient_id, "site": phantom["site"]}
        for key in (*PHASES, "mask"):
            image = reorient(sitk.ReadImage(written[key]), patient_id)
            if key == "venous" and patient_id == NO_INTERCEPT:
                image = image + 1024  # stored values, rescale intercept never applied
            sitk.WriteImage(image, written[key], useCompression=True)
            row[key] = str(Path(written[key]).relative_to(root))
        rows.append(row)
    manifest = pd.DataFrame(rows)
    manifest.loc[manifest.patient_id == NO_FILE, "arterial"] = "scans/elsewhere/arterial.nii.gz"
    manifest.to_csv(root / "manifest.tsv", sep="\t", index=False)
    cohort["clinical"].to_csv(root / "clinical.tsv", sep="\t", index=False)
    return manifest


@pytest.fixture(scope="module")
def manifest_study(tmp_path_factory):
    """A finished run; MANIFEST_STUDY_DIR reuses one (made by this fixture's steps)."""
    if os.environ.get("MANIFEST_STUDY_DIR"):
        root = Path(os.environ["MANIFEST_STUDY_DIR"])
        return root, pd.read_csv(root / "manifest.tsv", sep="\t")
    root = tmp_path_factory.mktemp("manifest_study")
    manifest = write_scans(root)
    config = yaml.safe_load((REPO / "config/tiny.yaml").read_text())
    config["study"]["name"] = "manifest-small"
    config["cohort"] = {
        "source": "manifest",
        "manifest": str(root / "manifest.tsv"),
        "clinical": str(root / "clinical.tsv"),
    }
    config.pop("synthetic")
    config["features"]["robustness"]["n_patients"] = 4
    (root / "study.yaml").write_text(yaml.safe_dump(config))
    done = run_snakemake(root, "all", configfile=root / "study.yaml")
    assert done.returncode == 0, done.stderr[-4000:]
    return root, manifest


def test_scans_lie_on_different_grids(manifest_study):
    root, manifest = manifest_study
    grids = {
        (tuple(np.round(image.GetSpacing(), 3)), tuple(image.GetDirection()))
        for image in (sitk.ReadImage(str(root / path)) for path in manifest.venous)
    }
    assert len(grids) >= 5  # three scanners' spacings x identity, flipped and swapped axes


def test_damaged_inputs_are_exclusions_and_the_rest_included(manifest_study):
    root, manifest = manifest_study
    exclusions = pd.read_csv(root / "results/cohort/exclusions.tsv", sep="\t")
    reasons = exclusions.set_index("patient_id")
    assert reasons.loc[NO_FILE, "reason"] == "arterial phase file does not exist"
    assert reasons.loc[NO_FILE, "file"] == "scans/elsewhere/arterial.nii.gz"
    assert "rescale intercept" in reasons.loc[NO_INTERCEPT, "reason"]
    assert reasons.loc[NO_INTERCEPT, "file"].endswith(f"{NO_INTERCEPT}/venous.nii.gz")
    clinical = pd.read_csv(root / "results/cohort/clinical.tsv", sep="\t")
    assert sorted(clinical.patient_id) == sorted(set(manifest.patient_id) - {NO_FILE, NO_INTERCEPT})
    model = json.loads((root / "results/regions/habitat_model.json").read_text())
    assert model["screened_out"] == []  # the inspection caught the bad scan before the fit


def test_reoriented_scans_keep_the_tumour_where_it_was_drawn(manifest_study):
    root, manifest = manifest_study
    for patient_id in (FLIPPED, SWAPPED):
        native = sitk.ReadImage(str(root / manifest.set_index("patient_id").loc[patient_id, "mask"]))
        tumour = sitk.ReadImage(str(root / f"results/segment/{patient_id}/tumor.nii.gz"))
        ct = sitk.ReadImage(str(root / f"results/imaging/{patient_id}/ct.nii.gz"))
        assert tumour.GetDirection() == native.GetDirection() == ct.GetDirection()
        centroids = [
            grid.physical_coordinates(image)[sitk.GetArrayViewFromImage(image) > 0].mean(axis=0)
            for image in (native, tumour)
        ]
        assert np.linalg.norm(centroids[0] - centroids[1]) < 0.25, patient_id


def test_study_without_rna_seq_skips_genomics_with_a_note(manifest_study):
    root, _ = manifest_study
    assert not (root / "results/genomics").exists()
    assert (root / "results/models/os/metrics.tsv").is_file()
    page = (root / "results/report/index.html").read_text()
    assert "Not run: no expression data: a manifest study" in page
