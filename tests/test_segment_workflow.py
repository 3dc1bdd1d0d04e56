"""The segmentation stage in the workflow: presets, the model-folder check at DAG build."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from radiogenomics.core.config import validate_config

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
S5 = REPO / "config/studies/s5_tcga_kirc_multiphase.yaml"


def dry_run(configfile, workdir, *args):
    # A dead proxy: any request made while the DAG is built would fail the dry run.
    offline = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    command = [str(SNAKEMAKE), "-n", "--snakefile", str(REPO / "Snakefile"), "--configfile",
               str(configfile), "--directory", str(workdir), *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **offline})


def genomics_stand_ins(preset, workdir):
    genomics = yaml.safe_load(preset.read_text())["genomics"]
    for path in [*genomics["gene_sets"].values(), genomics["estimate_gmt"], genomics["signature"]]:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).touch()


def test_s5_preset_segments_with_nnunet_without_masks():
    config = validate_config(yaml.safe_load(S5.read_text()), REPO / "config/schemas/config.schema.yaml")
    assert config["segmentation"]["method"] == "nnunet" and config["cohort"]["masks"] is None
    assert config["segmentation"]["channels"] == ["arterial"] == [config["imaging"]["analysis_phase"]]
    assert config["cohort"]["tcia"]["phases"] == config["imaging"]["phases"] == ["arterial", "venous"]


def test_s5_preset_registers_to_arterial_and_crops_the_fixed_voi():
    config = validate_config(yaml.safe_load(S5.read_text()), REPO / "config/schemas/config.schema.yaml")
    assert config["imaging"]["registration"]["reference"] == "arterial" == config["imaging"]["analysis_phase"]
    assert config["imaging"]["registration"]["method"] == "rigid"
    multiphase = config["models"]["multiphase"]
    assert multiphase["voi_mm"] == [140, 140, 160] and multiphase["slice_spacing_mm"] == 0.625
    # the default study keeps today's crop
    default = validate_config(yaml.safe_load((REPO / "config/config.yaml").read_text()), REPO / "config/schemas/config.schema.yaml")
    assert default["models"]["multiphase"]["voi_mm"] is None and default["models"]["multiphase"]["slice_spacing_mm"] is None


def test_missing_model_folder_stops_before_any_job(tmp_path):
    genomics_stand_ins(S5, tmp_path)
    done = dry_run(S5, tmp_path)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "segmentation.model_dir models/kits_nnunet/nnUNetTrainer__nnUNetPlans__3d_fullres does not exist" in message
    assert "Fix:" in message and "fetch_public" not in done.stdout
    assert not (tmp_path / "results").exists()


def test_incompatible_model_folder_names_the_file(tmp_path):
    genomics_stand_ins(S5, tmp_path)
    model = tmp_path / "models/kits_nnunet/nnUNetTrainer__nnUNetPlans__3d_fullres"
    model.mkdir(parents=True)
    dataset = {"channel_names": {"0": "CT", "1": "CT2"}, "labels": {"background": 0, "kidney": 1, "tumor": 2, "cyst": 3}}
    (model / "dataset.json").write_text(json.dumps(dataset))
    (model / "plans.json").write_text(json.dumps({"configurations": {"3d_fullres": {}}}))
    for fold in range(5):
        (model / f"fold_{fold}").mkdir()
        (model / f"fold_{fold}" / "checkpoint_final.pth").write_bytes(b"weights")
    done = dry_run(S5, tmp_path)
    message = done.stdout + done.stderr
    assert done.returncode != 0 and "2 input channel(s)" in message and "dataset.json" in message
    dataset["channel_names"] = {"0": "CT"}
    (model / "dataset.json").write_text(json.dumps(dataset))
    done = dry_run(S5, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "checkpoint fetch_public" in done.stdout
