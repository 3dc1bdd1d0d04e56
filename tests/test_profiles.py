"""The SLURM profile as the pinned snakemake-executor-plugin-slurm sees it.

Every submission of a study's dry run (group jobs formed as on a cluster) goes through the
plugin's own validation and sbatch-command building (radiogenomics.core.slurm_plan), so a resource
the plugin refuses, a group spanning the population-level habitat fit, or a group asking for
more than one node fails here, for every rule the workflow has now or gets later.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from fake_cohort import write_checkpointed_cohort  # noqa: E402

PROFILE = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
GROUPS = dict(entry.split("=") for entry in PROFILE["groups"])
GROUP_COMPONENTS = {name: int(n) for name, n in (entry.split("=") for entry in PROFILE["group-components"])}
NODE_CPUS, NODE_MEM_MB = 16, 64000  # the node size the profile documents and bounds groups to
N_INTERNAL, N_EXTERNAL = 60, 15


def slurm_plan(workdir, *args):
    """(plan, completed process) of a dry run with the SLURM profile in workdir."""
    plan = Path(workdir) / "plan.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "radiogenomics.core.slurm_plan", str(plan),
            "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--profile", str(REPO / "profiles/slurm"), "--rerun-triggers", "mtime", *args,
        ],
        capture_output=True, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "workflow/scripts")},
    )
    return (json.loads(plan.read_text()) if plan.exists() else None), done


@pytest.fixture(scope="module")
def study_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "study.yaml"
    path.write_text(yaml.safe_dump({"synthetic": {"n_internal": N_INTERNAL, "n_external": N_EXTERNAL}}))
    return path


@pytest.fixture(scope="module")
def after_checkpoint(tmp_path_factory, study_config):
    """The plan of everything after the cohort checkpoint of a 75-patient study."""
    workdir = tmp_path_factory.mktemp("checkpointed")
    write_checkpointed_cohort(workdir, N_INTERNAL, N_EXTERNAL)
    plan, done = slurm_plan(workdir, "--configfile", str(study_config))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return plan


@pytest.fixture(scope="module")
def before_checkpoint(tmp_path_factory, study_config):
    plan, done = slurm_plan(tmp_path_factory.mktemp("fresh"), "--configfile", str(study_config))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return plan


def test_the_workflow_profile_does_not_override_the_cluster_profile():
    # profiles/default is read on every run, after --profile: a key in both would win over SLURM's
    workstation = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    assert {key: PROFILE[key] for key in workstation if key in PROFILE} == {
        key: value for key, value in workstation.items() if key in PROFILE
    }
    assert "software-deployment-method" not in PROFILE  # the shared venv; --sdm conda documented


def test_every_per_patient_rule_is_in_a_bounded_group(after_checkpoint):
    # every rule of the workflow, as Snakemake loaded it; groups come from the profile only
    per_patient = {name: rule for name, rule in after_checkpoint["rules"].items() if "patient" in rule["wildcards"]}
    assert {"preprocess", "habitat_voxels", "regions", "radiomics"} <= set(per_patient)
    for name, rule in per_patient.items():
        assert GROUPS.get(name) in GROUP_COMPONENTS, f"rule {name}: add `{name}=per_patient...` to the profile's groups"
        assert rule["group"] == GROUPS[name]
    assert set(GROUPS) <= set(after_checkpoint["rules"])


def test_rules_declare_no_group():
    # a group declared in a rule costs every DAG build, local ones too (see profiles/slurm)
    for path in (REPO / "workflow/rules").glob("*.smk"):
        assert "group:" not in path.read_text(), path


@pytest.mark.parametrize("stage", ["before_checkpoint", "after_checkpoint"])
def test_the_plugin_accepts_every_submission_and_each_fits_one_node(stage, request):
    plan = request.getfixturevalue(stage)
    submissions = plan["submissions"]
    assert submissions
    for entry in submissions:
        assert "error" not in entry, entry
        assert entry["resources"]["cpus_per_task"] <= NODE_CPUS, entry
        assert entry["resources"]["mem_mb"] <= NODE_MEM_MB, entry
        assert f"--cpus-per-task={entry['resources']['cpus_per_task']}" in entry["sbatch"]
    single_per_patient = [
        entry["name"] for entry in submissions
        if not entry["group"] and "patient" in plan["rules"][entry["rules"][0]]["wildcards"]
    ]
    assert single_per_patient == []


def test_patients_are_batched_into_few_submissions(before_checkpoint, after_checkpoint):
    n_patients = N_INTERNAL + N_EXTERNAL
    for plan in (before_checkpoint, after_checkpoint):
        groups = [entry for entry in plan["submissions"] if entry["group"]]
        assert groups and all(entry["jobs"] > 1 for entry in groups)
        assert len(plan["submissions"]) * 5 <= sum(entry["jobs"] for entry in plan["submissions"])
    before_groups = {tuple(entry["rules"]) for entry in before_checkpoint["submissions"] if entry["group"]}
    assert ("inspect_case", "register_phases", "synthetic_phantom") in before_groups
    assert before_groups <= {("inspect_case", "register_phases", "synthetic_phantom"), ("synthetic_slide",)}
    # the faked state ends at the cohort checkpoint; the plan stops at the next one (segmentation QC)
    preprocess_jobs = sum(entry["jobs"] for entry in after_checkpoint["submissions"] if "preprocess" in entry["rules"])
    assert preprocess_jobs >= n_patients


def test_gpu_rules_ask_for_a_gpu_through_gres(after_checkpoint):
    gpu = {entry["name"]: entry["sbatch"] for entry in after_checkpoint["submissions"] if "gres" in entry["resources"]}
    assert set(gpu) == {"deep_features", "deep_robustness", "multiphase_model"}
    assert all("--gres=gpu:1" in sbatch for sbatch in gpu.values())


def test_a_resource_the_plugin_refuses_fails_the_plan(tmp_path, study_config):
    # the profile's former GPU request: --gres inside slurm_extra, which the plugin refuses
    write_checkpointed_cohort(tmp_path, N_INTERNAL, N_EXTERNAL)
    plan, done = slurm_plan(
        tmp_path, "--configfile", str(study_config),
        "--set-resources", "deep_features:slurm_extra='--gres=gpu:1'",
    )
    assert done.returncode == 1
    refused = [entry for entry in plan["submissions"] if "error" in entry]
    assert [entry["name"] for entry in refused] == ["deep_features"]
    assert "gres" in refused[0]["error"].lower()
