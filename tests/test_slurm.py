"""The tiny study submitted with profiles/slurm to a real one-node SLURM cluster on localhost.

The run is interrupted once the cohort checkpoint is done (Snakemake cancels its SLURM jobs),
rerun to the end, and its results are compared with the local run's (the tiny_study fixture).
Needs Debian's slurmctld, slurmd and munge (.ci/run installs them) and root for their daemons.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, SNAKEMAKE
from slurm_cluster import DEFAULT_CONF, LocalSlurm, missing_daemons

pytestmark = pytest.mark.workflow

# Tables compared with the local run; models and deep features ran with other thread counts
# (the profile gives them 8 CPUs, the local run 2), so numbers may differ in the last digits.
SAME_TABLES = [
    "results/cohort/clinical.tsv",
    "results/cohort/exclusions.tsv",
    "results/features/radiomics.parquet",
    "results/features/radiomics_diagnostics.tsv",
    "results/regions/habitat_bic.tsv",
    "results/features/deep.parquet",
    "results/features/robustness.tsv",
    "results/models/os/metrics.tsv",
    "results/models/dfs/metrics.tsv",
    "results/models/tstage/metrics.tsv",
    "results/models/multiphase/metrics.tsv",
    "results/genomics/deg.tsv",
]
RTOL = 1e-6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = missing_daemons()
    if missing:
        pytest.skip(f"SLURM is not installed (no {', '.join(missing)}): apt-get install slurmctld slurmd munge slurm-client, as .ci/run does")
    if os.geteuid() != 0:
        pytest.skip("the one-node test cluster runs slurmd and munged as root; run the tests as root (CI does)")
    if DEFAULT_CONF.exists():
        pytest.skip(f"{DEFAULT_CONF} exists: this machine has a SLURM configuration the test will not replace")
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"), socket.gethostname().split(".")[0])
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def slurm_snakemake(cluster, workdir, *args):
    return [
        str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(REPO / "config/tiny.yaml"), "--profile", str(REPO / "profiles/slurm"),
        # no accounting database on the test cluster: job states from squeue, no account
        "--slurm-status-command", "squeue", "--slurm-no-account",
        "--seconds-between-status-checks", "5", *args,
    ]


def run_on_cluster(cluster, workdir, *args):
    done = subprocess.run(
        slurm_snakemake(cluster, workdir, *args), capture_output=True, text=True,
        env={**cluster.env, "PYTHONHASHSEED": "0"},
    )
    (Path(workdir) / f"run{len(list(Path(workdir).glob('run*.log')))}.log").write_text(done.stdout + done.stderr)
    return done


def submissions(log: str) -> list[str]:
    """SLURM job ids the plugin reports as submitted."""
    return re.findall(r"has been submitted with SLURM jobid (\d+)", log)


def wait_until_idle(cluster, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while cluster.queued_jobs() and time.monotonic() < deadline:
        time.sleep(2)
    assert not cluster.queued_jobs(), cluster.logs()


@pytest.fixture(scope="module")
def slurm_study(cluster, tmp_path_factory):
    """(workdir, interrupted run's log, completed run's log) of the tiny study on the cluster."""
    workdir = tmp_path_factory.mktemp("tiny-slurm")
    first = subprocess.Popen(
        slurm_snakemake(cluster, workdir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**cluster.env, "PYTHONHASHSEED": "0"},
    )
    # interrupt (as Ctrl-C does) once the checkpoint is done and a per-patient group is queued
    checkpoint = workdir / "results/cohort/clinical.tsv"
    deadline = time.monotonic() + 1800
    while first.poll() is None and not (checkpoint.exists() and cluster.queued_jobs()):
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(1)
    first.send_signal(signal.SIGINT)
    interrupted = first.communicate(timeout=300)[0]
    (workdir / "interrupted.log").write_text(interrupted)
    wait_until_idle(cluster)
    done = run_on_cluster(cluster, workdir)
    assert done.returncode == 0, done.stderr[-6000:] + cluster.logs()
    return workdir, interrupted, done.stdout + done.stderr


def test_study_on_slurm_equals_the_local_run(slurm_study, tiny_study):
    workdir, _, _ = slurm_study
    for table in SAME_TABLES:
        read = pd.read_parquet if table.endswith(".parquet") else lambda p: pd.read_csv(p, sep="\t")
        on_cluster, local = read(workdir / table), read(tiny_study / table)
        pd.testing.assert_frame_equal(on_cluster, local, check_exact=False, rtol=RTOL, obj=table)
    cluster_model = json.loads((workdir / "results/regions/habitat_model.json").read_text())
    local_model = json.loads((tiny_study / "results/regions/habitat_model.json").read_text())
    assert cluster_model["k"] == local_model["k"]
    assert (workdir / "results/report/index.html").exists()


def test_per_patient_jobs_are_batched_and_every_submission_ran(slurm_study, cluster):
    workdir, interrupted, completed = slurm_study
    submitted = submissions(interrupted) + submissions(completed)
    finished = {job["JobId"]: job for job in cluster.finished_jobs()}
    assert set(submitted) == set(finished)  # every submission reached an end on the cluster
    # the rerun's submissions all completed; 26 patients x 6 per-patient rules are a handful of groups
    assert all(finished[job]["JobState"] == "COMPLETED" for job in submissions(completed))
    assert len(submitted) <= 30, len(submitted)
    print(f"SLURM submissions: {len(submissions(interrupted))} before the interruption, {len(submissions(completed))} after")


def test_rerun_after_an_interrupted_submission_resumes(slurm_study):
    workdir, interrupted, completed = slurm_study
    assert submissions(interrupted) and submissions(completed)
    # the cohort stage finished before the interruption: the rerun does not redo it
    assert not re.search(r"(rule|checkpoint) (synthetic_cohort|cohort|inspect_case):", completed)
    assert re.search(r"(rule|checkpoint) (synthetic_cohort|cohort):", interrupted)


def test_a_failed_job_is_reported_with_its_log_paths(slurm_study, cluster):
    workdir, _, _ = slurm_study
    scores = workdir / "results/models/os/scores.tsv"
    stat = scores.stat()
    scores.write_text("not a table\n")
    os.utime(scores, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # only the job sees the damage
    done = run_on_cluster(
        cluster, workdir, "--forcerun", "radscore_truth", "--retries", "0",
        "results/models/os/truth_comparison.tsv",
    )
    log = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Error in rule radscore_truth" in log
    assert "logs/evaluate/os_truth.log" in log
    slurm_logs = re.findall(r"\S*slurm_logs/rule_radscore_truth/\S+\.log", log)
    assert slurm_logs, log[-4000:]
    assert Path(workdir / slurm_logs[0].split(str(workdir) + "/")[-1]).exists() or Path(slurm_logs[0]).exists()
