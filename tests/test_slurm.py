"""The tiny study submitted with profiles/slurm to a real one-node SLURM cluster on localhost.

One run on the cluster serves every test: it is interrupted (Ctrl-C, as on a login node) while a
per-patient group job runs, rerun to the end, and its results are compared with the local run's
(the session's tiny_study fixture). The profile is used as written, with its resource requests
capped at the size of this machine's node (node_overrides). Needs Debian's slurmctld, slurmd,
slurm-client and munge (.ci/run installs them) and root for their daemons.
"""

import base64
import json
import math
import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, SNAKEMAKE, exclusive
from slurm_cluster import LocalSlurm, default_conf_in_use, machine_node, missing_commands

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]

PROFILE = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
GROUPS = dict(entry.split("=") for entry in PROFILE["groups"])
GROUP_SIZE = {name: int(n) for name, n in (entry.split("=") for entry in PROFILE["group-components"])}
N_PATIENTS = 26  # config/tiny.yaml: 20 internal + 6 external (two are excluded on inspection)
# Group submissions the profile's grouping makes for the tiny study (26 patients: one submission
# per stage at up to 100 patients per group job). A group job holds the group's jobs that are in
# the DAG together, so checkpoints split a group into stages (cohort: which patients are
# included; segmentation_qc: whose mask is usable), and the habitat fit separates per_patient
# from per_patient_regions.
GROUP_STAGES = [
    ("per_patient", ("inspect_case", "register_phases", "synthetic_phantom")),
    ("per_patient", ("preprocess", "segment_patient")),
    ("per_patient", ("habitat_voxels",)),
    ("per_patient_regions", ("radiomics", "radiomics_robustness", "regions")),
]
# synthetic_slide waits for no checkpoint: it is a stage of its own when it is submitted before
# the cohort checkpoint ends, and joins the tiles and features when the node is busy until then
# (on a 2-CPU node the phantom group job takes both CPUs).
SLIDE_STAGES = [
    [("pathomics_features", "pathomics_tiles", "synthetic_slide")],
    [("synthetic_slide",), ("pathomics_features", "pathomics_tiles")],
]
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: \S*?slurm_logs/([^/]+)/")
# Tables of the output contract compared with the local run.
CONTRACT_TABLES = [
    "results/cohort/clinical.tsv",
    "results/cohort/exclusions.tsv",
    "results/imaging/registration.tsv",
    "results/segment/qc.tsv",
    "results/regions/habitat_bic.tsv",
    "results/features/radiomics.parquet",
    "results/features/deep.parquet",
    "results/features/robustness.tsv",
    *(
        f"results/models/{task}/{name}.tsv"
        for task in ("os", "dfs", "tstage")
        for name in ("selected_features", "scores", "predictions", "metrics")
    ),
    "results/models/multiphase/metrics.tsv",
    *(f"results/genomics/{name}.tsv" for name in ("deg", "enrichment", "wgcna_modules", "deconvolution", "estimate")),
]
# columns that measure time, not results
TIMING_COLUMNS = {"results/imaging/registration.tsv": ["seconds"]}


def node_overrides(cpus: int, mem_mb: int) -> list[str]:
    """The profile's resources with every request capped at the test node's CPUs and memory.

    Command-line --set-resources / --set-threads replace the profile's lists as a whole, so the
    whole list is passed again (GPU requests included), only the sizes are capped; --cores and
    --resources bound a group job to one node of this size, as the profile does for 16 CPUs.
    """
    caps = {"cpus_per_task": cpus, "mem_mb": mem_mb}
    set_resources = [
        f"{rule}:{name}={min(value, caps[name]) if name in caps else repr(value)}"
        for rule, resources in PROFILE["set-resources"].items()
        for name, value in resources.items()
    ]
    set_threads = [f"{rule}={min(threads, cpus)}" for rule, threads in PROFILE["set-threads"].items()]
    return [
        "--cores", str(cpus), "--resources", f"cpus_per_task={cpus}", f"mem_mb={mem_mb}",
        "--set-resources", *set_resources, "--set-threads", *set_threads,
    ]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = missing_commands()
    if missing:
        pytest.skip(
            f"SLURM is not installed (no {', '.join(missing)}): `apt-get install slurmctld slurmd "
            "slurm-client munge`, as .ci/run does"
        )
    if os.geteuid() != 0:
        pytest.skip("the one-node test cluster runs slurmd and munged as root; run the tests as root (CI does)")
    if default_conf_in_use():
        pytest.skip("/etc/slurm/slurm.conf belongs to another cluster or a running test cluster: it is not replaced")
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"), socket.gethostname().split(".")[0])
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def slurm_snakemake(cluster, workdir, *args):
    node = machine_node()
    return [
        str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(REPO / "config/tiny.yaml"), "--profile", str(REPO / "profiles/slurm"),
        *node_overrides(int(node["CPUs"]), int(node["RealMemory"])),
        # no accounting database: job states from squeue, no account to charge
        "--slurm-groups-status-command", "squeue", "--slurm-groups-no-account",
        "--slurm-groups-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "3",
        *args,
    ]


def run_on_cluster(cluster, workdir, name, *args):
    done = subprocess.run(
        slurm_snakemake(cluster, workdir, *args), capture_output=True, text=True,
        env={**cluster.env, "PYTHONHASHSEED": "0"},
    )
    log = done.stdout + done.stderr
    (Path(workdir) / f"{name}.log").write_text(log)
    return done.returncode, log


def metadata(workdir) -> dict[str, dict]:
    """Snakemake's record of every output it made (rule, job hash, SLURM job id, times)."""
    root = Path(workdir) / ".snakemake/metadata"
    # one file per output, named by the output path in URL-safe base64 (split into folders when long)
    return {
        base64.urlsafe_b64decode("".join(path.relative_to(root).parts)).decode(): json.loads(path.read_text())
        for path in root.rglob("*")
        if path.is_file()
    }


def files_and_mtimes(workdir) -> dict[str, int]:
    results = Path(workdir) / "results"
    return {str(path.relative_to(workdir)): path.stat().st_mtime_ns for path in results.rglob("*") if path.is_file()}


def wait_for(condition, process, log, timeout_s, cluster):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, f"the run ended before the interruption:\n{log.read_text()[-6000:]}"
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(1)


@pytest.fixture(scope="module")
def slurm_study(cluster, tmp_path_factory):
    """The tiny study on the cluster: (workdir, interrupted run's log, its result files with their
    mtimes once the interruption settled, completed rerun's log)."""
    workdir = tmp_path_factory.mktemp("tiny-slurm")
    started = time.monotonic()
    log = workdir / "interrupted.log"
    with log.open("w") as output:
        first = subprocess.Popen(
            slurm_snakemake(cluster, workdir), stdout=output, stderr=subprocess.STDOUT,
            env={**cluster.env, "PYTHONHASHSEED": "0"},
            # a shell's background job inherits SIGINT ignored; Ctrl-C must reach Snakemake
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def segmentation_group_half_done():
        # the plugin's job comment names the group and its rules
        running = cluster.command("squeue", "-h", "-t", "RUNNING", "-o", "%k").split()
        segmented = list((workdir / "results/segment/qc").glob("*.json"))
        return any("segment_patient" in comment for comment in running) and 0 < len(segmented)

    # Ctrl-C once the group job of preprocessing and segmentation has finished some patients
    wait_for(segmentation_group_half_done, first, log, 3600, cluster)
    first.send_signal(signal.SIGINT)
    first.wait(timeout=600)
    interrupted = log.read_text()
    cluster.wait_until_idle()
    at_interruption = files_and_mtimes(workdir)
    code, completed = run_on_cluster(cluster, workdir, "completed")
    assert code == 0, completed[-6000:] + cluster.logs()
    seconds = time.monotonic() - started
    print(f"tiny study on SLURM, interrupted and rerun: {seconds:.0f} s")
    return workdir, interrupted, at_interruption, completed


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, sep="\t")


def test_study_on_slurm_equals_the_local_run(slurm_study, tiny_study):
    """Byte-identical: same config, seeds and thread counts (the profile's 2-CPU caps are what the
    local run's --cores 2 gives); only measured wall times differ."""
    workdir = slurm_study[0]
    with exclusive(tiny_study):
        compare_with_local_run(workdir, tiny_study)


def compare_with_local_run(workdir, tiny_study):
    for table in CONTRACT_TABLES:
        on_cluster, local = workdir / table, tiny_study / table
        if table in TIMING_COLUMNS:
            drop = TIMING_COLUMNS[table]
            pd.testing.assert_frame_equal(
                read_table(on_cluster).drop(columns=drop), read_table(local).drop(columns=drop),
                check_exact=True, obj=table,
            )
        else:
            assert on_cluster.read_bytes() == local.read_bytes(), table
    model = json.loads((workdir / "results/regions/habitat_model.json").read_text())
    assert model == json.loads((tiny_study / "results/regions/habitat_model.json").read_text())
    assert (workdir / "results/report/index.html").exists()


def group_job_name(group: str, rules) -> str:
    """The plugin's name (log folder) of a group job: group_GROUP_RULES, the rules sorted."""
    return f"group_{group}_{'_'.join(sorted(rules))}"


def submissions(log: str) -> dict[str, str]:
    """SLURM job id -> what the plugin submitted (`rule_RULE` or `group_GROUP_RULES`, its log folder)."""
    return dict(SUBMITTED.findall(log))


def test_submissions_are_what_the_grouping_predicts(slurm_study, cluster, tiny_study):
    workdir, interrupted, _, completed = slurm_study
    # the jobs of the local run, by rule (Snakemake's record of each output names its job)
    with exclusive(tiny_study):
        local = metadata(tiny_study)
    jobs_per_rule = Counter(rule for rule, _ in {(r["rule"], r["job_hash"]) for r in local.values()})
    n_jobs = sum(jobs_per_rule.values())
    # one submission per job of an ungrouped rule, ceil(patients / group size) per group stage
    predicted = Counter({f"rule_{rule}": n for rule, n in jobs_per_rule.items() if rule not in GROUPS})

    # what sacct (the job completion log) recorded for this study's folder, by SLURM job id
    submitted = submissions(interrupted) | submissions(completed)
    ran = {job["JobID"]: job for job in cluster.completed_jobs() if job["JobID"] in submitted}
    assert set(ran) == set(submitted) and all(job["WorkDir"] == str(workdir) for job in ran.values())
    cancelled = [job for job in ran if ran[job]["State"] == "CANCELLED"]
    assert [submitted[job] for job in cancelled] == [group_job_name("per_patient", ("preprocess", "segment_patient"))]
    assert all(ran[job]["State"] == "COMPLETED" for job in ran if job not in cancelled)
    made = Counter(submitted[job] for job in ran if job not in cancelled)

    slides = sorted(name for name in made if name.startswith("group_per_patient_slides_"))
    slide_stages = [
        stages for stages in SLIDE_STAGES
        if sorted(group_job_name("per_patient_slides", rules) for rules in stages) == slides
    ]
    assert slide_stages, slides
    for group, rules in [*GROUP_STAGES, *(("per_patient_slides", rules) for rules in slide_stages[0])]:
        predicted[group_job_name(group, rules)] += math.ceil(N_PATIENTS / GROUP_SIZE[group])
    print(
        f"{len(ran)} submissions ({len(cancelled)} cancelled by the interruption) for {n_jobs} jobs; "
        f"{len(slides)} of the slide group"
    )
    assert made == predicted
    assert len(ran) * 3 < n_jobs


def rerun_jobs(log: str) -> list[tuple[str, list[str]]]:
    """(rule, outputs) of every job a Snakemake log shows starting."""
    return [
        (rule, outputs.split(", "))
        for rule, outputs in re.findall(r"^\s*(?:rule|checkpoint) (\w+):\n(?:\s*input: .*\n)?\s*output: (.*)$", log, re.M)
    ]


def test_rerun_after_the_interruption_resumes_without_redoing_finished_jobs(slurm_study):
    workdir, interrupted, at_interruption, completed = slurm_study
    assert "Terminating processes on user request" in interrupted
    # a group job's members record nothing until the group ends: the files kept are what finished
    kept_images = [path for path in at_interruption if re.fullmatch(r"results/imaging/\w+/ct.nii.gz", path)]
    assert kept_images, "no patient was preprocessed inside the group job before the interruption"
    rerun = rerun_jobs(completed)
    redone = [(rule, output) for rule, outputs in rerun for output in outputs if output in at_interruption]
    assert redone == []
    assert {"preprocess", "segment_patient"} <= {rule for rule, _ in rerun}  # the rest of the group
    final = files_and_mtimes(workdir)
    assert [path for path, mtime in at_interruption.items() if final.get(path) != mtime] == []


def test_a_failed_job_is_reported_with_its_log_paths(slurm_study, cluster):
    """A job that fails on the cluster (its input damaged behind Snakemake's back); runs last:
    the failed job's output is removed, as Snakemake does."""
    workdir = slurm_study[0]
    scores = workdir / "results/models/os/scores.tsv"
    original, stat = scores.read_bytes(), scores.stat()
    scores.write_text("not a table\n")
    os.utime(scores, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # only the job sees the damage
    try:
        code, log = run_on_cluster(
            cluster, workdir, "failed", "--forcerun", "radscore_truth", "--retries", "0",
            "results/models/os/truth_comparison.tsv",
        )
    finally:
        scores.write_bytes(original)
        os.utime(scores, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert code != 0
    assert "Error in rule radscore_truth" in log
    assert "logs/evaluate/os_truth.log" in log
    slurm_logs = re.findall(r"\S*slurm_logs/rule_radscore_truth/\S+?\.log", log)
    assert slurm_logs, log[-4000:]
    slurm_log = Path(slurm_logs[0]) if Path(slurm_logs[0]).is_absolute() else workdir / slurm_logs[0]
    assert "Error in rule radscore_truth" in slurm_log.read_text()
    job_id = re.search(r"has been submitted with SLURM jobid (\d+)", log).group(1)
    assert {job["JobID"]: job["State"] for job in cluster.completed_jobs()}[job_id] == "FAILED"


GROUPED_NAPS = """
rule all:
    input:
        expand("done/{i}.txt", i=range(4)),

rule nap:
    output:
        "done/{i}.txt",
    resources:
        mem_mb=200,
        cpus_per_task=1,
        runtime=5,
    shell:
        "date +%s.%N > {output}; sleep 8; date +%s.%N >> {output}"
"""


def test_a_group_job_runs_its_members_side_by_side(cluster, tmp_path):
    """Four 8-s one-CPU jobs in one 2-CPU group job: profiles/slurm's executor (slurm-groups) runs
    two at a time, never more; the plugin alone runs them one after another (plugin issue #469)."""
    (tmp_path / "Snakefile").write_text(GROUPED_NAPS)
    done = subprocess.run(
        [
            str(SNAKEMAKE), "--snakefile", str(tmp_path / "Snakefile"), "--directory", str(tmp_path),
            "--executor", "slurm-groups", "--jobs", "4", "--groups", "nap=naps", "--group-components", "naps=4",
            "--cores", "2", "--resources", "cpus_per_task=2", "mem_mb=1000",
            "--set-resource-scopes", "cpus_per_task=local", "mem_mb=local",
            "--slurm-groups-status-command", "squeue", "--slurm-groups-init-seconds-before-status-checks", "2",
            "--seconds-between-status-checks", "2",
        ],
        capture_output=True, text=True, env=cluster.env,
    )
    assert done.returncode == 0, done.stderr[-4000:] + cluster.logs()
    spans = [tuple(map(float, (tmp_path / f"done/{i}.txt").read_text().split())) for i in range(4)]
    running_at_each_start = [sum(start <= s < end for start, end in spans) for s, _ in spans]
    assert max(running_at_each_start) == 2, spans
