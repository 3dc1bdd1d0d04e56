import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from radiogenomics.core.config import validate_config
from radiogenomics.cohort.public import gdc, tcia
from radiogenomics.cohort.public.http import RetryPolicy

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schemas" / "config.schema.yaml"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
PRESETS = sorted((REPO / "config" / "studies").glob("s[12]_*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_presets_configure_the_public_clients(preset):
    cohort = yaml.safe_load(preset.read_text())["cohort"]
    assert cohort["source"] == "public"
    policy = RetryPolicy.from_config(cohort["download"])
    assert policy.attempts >= 3 and policy.delay(2) == 2 * policy.delay(1)
    rules = tcia.SeriesRules.from_config(cohort["tcia"]["series_rules"])
    assert rules.modality == "CT"
    assert cohort["tcia"]["base_url"] == tcia.DEFAULT_BASE_URL
    assert cohort["gdc"]["base_url"] == gdc.DEFAULT_BASE_URL
    assert set(cohort["tcia"]["required_phases"]) <= set(cohort["tcia"]["phases"])


def test_two_presets_exist():
    assert [p.stem for p in PRESETS] == ["s1_tcga_kirc_os", "s2_tcga_kirc_tstage"]


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_presets_validate_against_the_schema(preset):
    config = validate_config(yaml.safe_load(preset.read_text()), SCHEMA)
    cohort = config["cohort"]
    assert cohort["masks"] and cohort["tcia"]["phases"] == config["imaging"]["phases"]
    assert (REPO / config["features"]["radiomics"]["params"]).is_file()
    # the defaults the schema fills in must leave the library's phase patterns intact
    rules = tcia.SeriesRules.from_config(cohort["tcia"]["series_rules"])
    assert tcia.classify_phase("ARTERIAL PHASE 2.5MM", rules) == "arterial"
    assert tcia.classify_phase("ABD PEL W/CONTRAST PORTAL VENOUS", rules) == "venous"


def test_s2_discretises_into_25_bins():
    config = yaml.safe_load(PRESETS[1].read_text())
    params = yaml.safe_load((REPO / config["features"]["radiomics"]["params"]).read_text())
    assert params["setting"]["binCount"] == 25 and "binWidth" not in params["setting"]


def test_public_source_needs_a_mask_folder(tmp_path):
    config = yaml.safe_load(PRESETS[0].read_text())
    config["cohort"]["masks"] = None
    configfile = tmp_path / "no_masks.yaml"
    configfile.write_text(yaml.safe_dump(config))
    done = dry_run(configfile, tmp_path)
    assert done.returncode != 0 and "cohort.masks is not set" in done.stdout + done.stderr


def dry_run(configfile, workdir):
    # A dead proxy: any request made while the DAG is built would fail the dry run.
    offline = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    command = [
        str(SNAKEMAKE), "-n", "--snakefile", str(REPO / "Snakefile"),
        "--configfile", str(configfile), "--directory", str(workdir),
    ]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **offline})


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_presets_dry_run_offline(preset, tmp_path):
    # The genomics reference files are the user's to provide (config/studies/README.md);
    # empty stand-ins satisfy the plan.
    genomics = yaml.safe_load(preset.read_text())["genomics"]
    for path in [*genomics["gene_sets"].values(), genomics["estimate_gmt"], genomics["signature"]]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    done = dry_run(preset, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "checkpoint fetch_public" in done.stdout
    assert "synthetic_cohort" not in done.stdout
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_fetch_public_runs_through_snakemake_against_the_fake_servers(tmp_path):
    """S2 preset, base URLs pointed at the fakes: acquisition, inspection and the cohort table."""
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk
    from fake_servers import FakeServer, make_cohort, source_volume

    patients = ["TCGA-B0-5094", "TCGA-B0-5095", "TCGA-CJ-4642", "TCGA-CJ-4643"]
    with_mask, without_mask, without_venous = patients[:2], patients[2], patients[3]
    state = make_cohort(tmp_path / "fake", patients=tuple(patients))
    state.series = [
        s for s in state.series if not (s.patient_id == without_venous and "VENOUS" in s.description)
    ]
    volume, spacing, origin, direction = source_volume(0)
    tumour = np.zeros(volume.shape, np.uint8)
    tumour[1:4, 3:9, 3:7] = 1
    mask = sitk.GetImageFromArray(tumour)
    mask.SetSpacing(spacing), mask.SetOrigin(origin), mask.SetDirection(direction.ravel().tolist())
    (tmp_path / "masks").mkdir()
    for pid in with_mask:
        sitk.WriteImage(mask, str(tmp_path / "masks" / f"{pid}.nii.gz"))
    with FakeServer(state) as server:
        # The fake series hold random values and a 72-voxel tumour: this test is about
        # acquisition, so the HU and tumour-size inspection (tests/test_imaging.py) is off.
        overrides = {
            "imaging": {"hu_sanity": {"enabled": False}},
            "cohort": {
                "min_tumor_volume_mm3": 0,
                "masks": str(tmp_path / "masks"),
                "split": {"test_fraction": 0.5, "stratify": None},
                "required_clinical": ["os_months", "os_event"],
                "download": {"attempts": 2, "backoff_s": 0.001, "read_timeout_s": 5.0},
                "tcia": {"base_url": f"{server.url}/tcia", "series_rules": {"min_images": 2}},
                "gdc": {"base_url": f"{server.url}/gdc", "page_size": 2, "batch_size": 2},
            }
        }
        configfile = tmp_path / "fake_urls.yaml"
        configfile.write_text(yaml.safe_dump(overrides))
        command = [
            str(SNAKEMAKE), "--cores", "1", "--snakefile", str(REPO / "Snakefile"),
            "--directory", str(tmp_path), "--configfile", str(PRESETS[1]), str(configfile),
            "--", "results/cohort/exclusions.tsv",
        ]
        done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    raw = tmp_path / "results" / "raw"
    manifest = pd.read_csv(raw / "manifest.tsv", sep="\t")
    assert list(manifest["patient_id"]) == patients[:3]
    assert manifest["venous"].str.startswith("results/raw/dicom/").all()
    downloads = pd.read_csv(raw / "downloads.tsv", sep="\t")
    assert len(downloads) > 0 and downloads["sha256"].str.len().eq(64).all()
    assert (raw / "expression" / "counts.tsv").is_file() and (raw / "mutations.maf").is_file()
    clinical = pd.read_csv(tmp_path / "results" / "cohort" / "clinical.tsv", sep="\t")
    assert sorted(clinical["patient_id"]) == with_mask
    assert sorted(clinical["cohort"]) == ["test", "train"]
    exclusions = pd.read_csv(tmp_path / "results" / "cohort" / "exclusions.tsv", sep="\t").set_index("patient_id")
    assert sorted(exclusions.index) == [without_mask, without_venous]
    expected = str(tmp_path / "masks" / f"{without_mask}.nii.gz")
    assert exclusions.loc[without_mask, "file"] == expected
    assert exclusions.loc[without_mask, "fix"] == (
        f"provide results of a segmentation (tumour mask on the venous-phase grid) at {expected}"
    )
    assert exclusions.loc[without_venous, "stage"] == "acquire"
