import re
from pathlib import Path

import pytest
import yaml

from radiogenomics.core.cases import BadCase
from radiogenomics.core.config import ConfigError, manifest_patients, synthetic_patient_ids, validate_config

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config/schemas/config.schema.yaml"


def default_config():
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_default_and_tiny_configs_validate():
    config = validate_config(default_config(), SCHEMA)
    assert config["regions"]["peri"]["margin_mm"] == 3.0
    tiny = yaml.safe_load((REPO / "config/tiny.yaml").read_text())
    merged = default_config()
    for key, value in tiny.items():
        merged[key] = {**merged[key], **value}
    validate_config(merged, SCHEMA)


@pytest.mark.parametrize("overlay", ["tiny_nnunet.yaml", "default_nnunet.yaml"])
def test_nnunet_overlays_validate_and_switch_segmentation(overlay):
    merged = default_config()
    for key, value in yaml.safe_load((REPO / "config" / overlay).read_text()).items():
        merged[key] = {**merged[key], **value}
    config = validate_config(merged, SCHEMA)
    assert config["segmentation"]["method"] == "nnunet"


def test_bad_enum_names_key_and_allowed_values():
    config = default_config()
    config["cohort"]["on_bad_case"] = "skip"
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    message = str(error.value)
    assert "cohort.on_bad_case" in message
    assert "'fail'" in message and "'exclude'" in message


def test_unknown_key_is_named_with_allowed_keys():
    config = default_config()
    config["regions"]["peri"]["margin"] = 2
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    assert "regions.peri" in str(error.value) and "margin_mm" in str(error.value)


def test_defaults_are_filled():
    config = validate_config({"study": {}, "cohort": {}, "imaging": {}, "regions": {}, "features": {}}, SCHEMA)
    assert config["imaging"]["spacing_mm"] == [1.0, 1.0, 1.0]
    assert config["regions"]["habitats"]["k_range"] == [2, 3, 4]


def test_synthetic_ids_are_deterministic():
    assert synthetic_patient_ids(2, 1) == ["SYN0001", "SYN0002", "SYN0003"]


def test_manifest_refuses_path_ids_and_duplicates(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("patient_id\tvenous\tmask\nP1\ta\tb\n../etc\ta\tb\nP2\ta\tb\nP2\tc\td\n")
    valid, problems = manifest_patients(manifest, "exclude")
    assert valid == ["P1"]
    assert {p["patient_id"] for p in problems} == {"../etc", "P2"}
    assert all(p["file"] == str(manifest) for p in problems)
    with pytest.raises(BadCase, match=r"\.\./etc"):
        manifest_patients(manifest, "fail")


def test_tables_are_read_once_per_version_of_the_file(tmp_path, monkeypatch):
    import os

    import pandas as pd

    from radiogenomics.core import config as config_module

    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("patient_id\tvenous\tmask\nP1\ta.nii.gz\t\nP2\tb.nii.gz\tm.nii.gz\n")
    reads = []
    read_csv = pd.read_csv
    monkeypatch.setattr(config_module.pd, "read_csv", lambda *a, **k: reads.append(a) or read_csv(*a, **k))
    for _ in range(3):
        rows = config_module.manifest_rows(manifest)
        table = config_module.read_table(manifest)
    assert rows["P2"] == {"patient_id": "P2", "venous": "b.nii.gz", "mask": "m.nii.gz"}
    assert rows["P1"]["mask"] == ""
    assert list(table["patient_id"]) == ["P1", "P2"]
    assert len(reads) == 2  # one text-only read (the rows), one typed read (the table)
    manifest.write_text("patient_id\tvenous\tmask\nP3\tc.nii.gz\t\n")
    os.utime(manifest, ns=(1, 1))  # a rewrite is seen even where the mtime goes backwards
    assert list(config_module.manifest_rows(manifest)) == ["P3"]
    assert len(reads) == 3


def test_genomics_skip_reason_names_what_is_missing():
    from radiogenomics.core.config import genomics_skip_reason

    tasks = {"models": {"tasks": {"os": {}, "tstage": {}}}}
    synthetic = {"cohort": {"source": "synthetic"}, "genomics": {"task": "os"}, **tasks}
    assert genomics_skip_reason(synthetic) is None
    manifest = {**synthetic, "cohort": {"source": "manifest"}}
    assert "no expression data" in genomics_skip_reason(manifest)
    public = {**synthetic, "cohort": {"source": "public", "gdc": {"expression": False}}}
    assert "cohort.gdc.expression: false" in genomics_skip_reason(public)
    assert genomics_skip_reason({**public, "cohort": {"source": "public", "gdc": {"expression": True}}}) is None
    other = {**synthetic, "genomics": {"task": "none"}}
    assert "genomics.task 'none' is not a modelling task (os, tstage)" in genomics_skip_reason(other)


def test_seeded_subset_is_sorted_seeded_and_whole_when_small():
    from radiogenomics.core.config import seeded_subset

    patients = [f"P{i:03d}" for i in range(40, 0, -1)]
    sample = seeded_subset(patients, 5, seed=7)
    assert sample == sorted(sample) and len(set(sample)) == 5 and set(sample) <= set(patients)
    assert seeded_subset(list(reversed(patients)), 5, seed=7) == sample
    assert seeded_subset(patients[:3], 5, seed=7) == sorted(patients[:3])


@pytest.mark.parametrize("snakefile", ["Snakefile", "workflow/Snakefile"])
def test_either_entry_point_runs_rule_all_without_a_target(snakefile, tmp_path):
    """The root Snakefile only includes workflow/Snakefile; Snakemake drops an included file's
    default target, so the root names it again (docs/upstream.md). A dry run with no target must
    plan `all` from both."""
    import subprocess
    import sys

    command = [
        str(Path(sys.executable).parent / "snakemake"), "--snakefile", str(REPO / snakefile),
        "--directory", str(tmp_path), "--configfile", str(REPO / "config/tiny.yaml"),
        "--cores", "1", "--dry-run",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"^all\s+1$", done.stdout, re.MULTILINE), done.stdout[-2000:]
