"""Pathomics on public data: GDC diagnostic slides (checksummed, one per patient) and the S3
preset (schema, offline dry run)."""

import hashlib
from pathlib import Path

import pandas as pd
import yaml
from fake_servers import FakeGdcFile, fake_cohort, fast_policy  # noqa: F401
from test_public_presets import SCHEMA, dry_run

from radiogenomics.core.config import validate_config
from radiogenomics.cohort.public import acquire as cohort
from radiogenomics.cohort.public.gdc import GdcClient

PRESET = Path(__file__).resolve().parents[1] / "config/studies/s3_tcga_kirc_recurrence.yaml"
SLIDE_FIELDS = {
    "data_type": "Slide Image",
    "experimental_strategy": "Diagnostic Slide",
    "data_format": "SVS",
}


def test_diagnostic_slides_one_per_patient_checksummed_in_the_manifest(fake_cohort, tmp_path):
    server, state = fake_cohort
    for index, (pid, name) in enumerate(
        [
            ("TCGA-B0-5094", "TCGA-B0-5094-01Z-00-DX2.svs"),
            ("TCGA-B0-5094", "TCGA-B0-5094-01Z-00-DX1.svs"),
            ("TCGA-B0-5095", "TCGA-B0-5095-01Z-00-DX1.svs"),
        ]
    ):
        state.gdc_files.append(
            FakeGdcFile(
                f"dddd{index:04d}-0000-4000-8000-00000000000{index}",
                name,
                f"slide bytes {index}".encode() * 50,
                SLIDE_FIELDS,
                pid,
                f"{pid}-01Z",
            )
        )
    raw = tmp_path / "raw"
    raw.mkdir()
    kept = ["TCGA-B0-5094", "TCGA-B0-5095", "TCGA-CJ-4642"]
    pd.DataFrame({"patient_id": kept, "venous": ["a", "b", "c"]}).to_csv(
        raw / "manifest.tsv", sep="\t", index=False
    )
    client = GdcClient(f"{server.url}/gdc", policy=fast_policy())
    state.inject("gdc_bundle", "bad_md5")  # a corrupt bundle falls back to single files
    records = []
    cohort._acquire_slides(
        client,
        {"project": "TCGA-KIRC", "batch_size": 5},
        kept,
        raw,
        tmp_path,
        lambda result, **fields: records.append(fields),
    )
    manifest = pd.read_csv(raw / "manifest.tsv", sep="\t", keep_default_na=False)
    slides = dict(zip(manifest["patient_id"], manifest["slide"]))
    assert slides["TCGA-B0-5094"].endswith("TCGA-B0-5094-01Z-00-DX1.svs")  # DX1 before DX2
    assert slides["TCGA-B0-5095"].endswith("DX1.svs")
    assert slides["TCGA-CJ-4642"] == ""  # no slide: left out of pathomics, not of the cohort
    for patient in ("TCGA-B0-5094", "TCGA-B0-5095"):
        path = tmp_path / slides[patient]
        served = next(f for f in state.gdc_files if f.file_name == path.name)
        assert hashlib.md5(path.read_bytes()).hexdigest() == hashlib.md5(served.content).hexdigest()
    assert [r["kind"] for r in records] == ["diagnostic_slide"] * 2
    assert manifest["venous"].tolist() == ["a", "b", "c"]


def test_s3_preset_validates_and_plans_pathomics_offline(tmp_path):
    config = validate_config(yaml.safe_load(PRESET.read_text()), SCHEMA)
    assert config["cohort"]["gdc"]["slides"] is True
    assert config["pathomics"]["tiles"]["magnification"] == 20
    assert config["pathomics"]["tiles"]["tile_px"] == 224
    assert config["pathomics"]["tiles"]["min_entropy"] == 5.0
    mil = config["pathomics"]["mil"]
    assert (mil["lr"], mil["weight_decay"], mil["batch_size"], mil["iterations"]) == (
        1e-4,
        1e-5,
        64,
        300,
    )
    done = dry_run(PRESET, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "checkpoint fetch_public" in done.stdout
    assert not (tmp_path / "results").exists()
