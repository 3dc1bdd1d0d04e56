"""The execution profiles parse and group short per-patient jobs for clusters."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_slurm_profile_batches_per_patient_jobs():
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["group-components"]["per_patient"] >= 100
    for rule, resources in profile["set-resources"].items():
        assert {"mem_mb", "runtime", "cpus_per_task"} <= set(resources), rule


def test_every_per_patient_rule_is_grouped():
    rules = "\n".join(p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))
    for rule in ["synthetic_phantom", "inspect_case", "preprocess", "habitat_voxels", "regions", "radiomics"]:
        block = rules.split(f"rule {rule}:")[1].split("\nrule ")[0]
        assert re.search(r'group:\s*"per_patient"', block), rule
