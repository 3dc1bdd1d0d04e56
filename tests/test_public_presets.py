import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from radiogenomics.config import validate_config
from radiogenomics.public import gdc, tcia
from radiogenomics.public.http import RetryPolicy

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
