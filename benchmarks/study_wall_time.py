"""Wall time of a study against its CPU floor, the Snakemake main process's share, a no-op rerun.

Runs `snakemake TARGET` (default `features`) on a config (default: config/config.yaml, the
200-patient synthetic study; config/tiny.yaml for a quick measurement) in a fresh working
directory with the workstation profile. Every job's Python process records, at its exit, its CPU
time and its children's (a sitecustomize hook on PYTHONPATH; the jobs' scripts are untouched).
Reported:
- floor: the sum of the jobs' CPU seconds divided by the cores, the wall time a perfect
  scheduler with no per-job overhead outside the jobs would need (the jobs' own start-up and
  imports are inside it: fatter jobs lower the floor as well as the wall);
- wall / floor;
- the main process's CPU seconds as a share of one core over the run;
- a no-op rerun: the same command again, nothing to do.

usage: python benchmarks/study_wall_time.py [--configfile FILE] [--cores N] [--workdir DIR]
                                            [--target features] [--scheduler greedy|ilp]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]

# Runs at the start of every Python process of the run; writes one record at its exit.
JOB_CPU_HOOK = """
import atexit, json, os, sys, time

_started = time.time()


def _record_job_cpu():
    times = os.times()
    record = {
        "pid": os.getpid(), "parent": os.getppid(), "argv": sys.argv[:2],
        "wall": time.time() - _started, "cpu": times.user + times.system,
        "children_cpu": times.children_user + times.children_system,
    }
    with open(os.path.join(os.environ["JOB_CPU_RECORDS"], f"{os.getpid()}.json"), "w") as out:
        json.dump(record, out)


atexit.register(_record_job_cpu)
"""


def run_snakemake(command, env):
    """(wall seconds, main-process CPU seconds, pid) of one snakemake run."""
    started = time.perf_counter()
    process = psutil.Popen(command, stdout=sys.stderr, stderr=sys.stderr, env=env)
    main_cpu = 0.0
    while process.poll() is None:
        try:
            times = process.cpu_times()
            main_cpu = times.user + times.system
        except psutil.NoSuchProcess:
            break
        time.sleep(0.5)
    wall = time.perf_counter() - started
    if process.returncode:
        sys.exit(f"snakemake failed with exit code {process.returncode}")
    return wall, main_cpu, process.pid


def job_cpu_seconds(records: Path, main_pid: int) -> tuple[int, float]:
    """(jobs, CPU seconds) of the job processes, their children included.

    A job process is a recorded Python process other than the main one whose parent is not a
    recorded process itself (a job's worker processes are in its children's CPU time).
    """
    processes = [json.loads(path.read_text()) for path in records.glob("*.json")]
    pids = {process["pid"] for process in processes}
    jobs = [p for p in processes if p["pid"] != main_pid and (p["parent"] == main_pid or p["parent"] not in pids)]
    return len(jobs), sum(job["cpu"] + job["children_cpu"] for job in jobs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configfile", default=None)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--target", default="features")
    parser.add_argument("--scheduler", default=None, help="override the profile's scheduler")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="study-bench-"))
    hooks, records = Path(tempfile.mkdtemp(prefix="job-cpu-hook-")), Path(tempfile.mkdtemp(prefix="job-cpu-"))
    (hooks / "sitecustomize.py").write_text(JOB_CPU_HOOK)
    env = {
        **os.environ, "JOB_CPU_RECORDS": str(records), "PYTHONHASHSEED": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(hooks), os.environ.get("PYTHONPATH")])),
    }
    command = [
        str(Path(sys.executable).parent / "snakemake"), "--snakefile", str(REPO / "Snakefile"),
        "--profile", str(REPO / "profiles/default"), "--directory", str(workdir),
        "--cores", str(args.cores), args.target,
    ]
    if args.configfile:
        command += ["--configfile", args.configfile]
    if args.scheduler:
        command += ["--scheduler", args.scheduler]
    wall, main_cpu, main_pid = run_snakemake(command, env)
    n_jobs, jobs_cpu = job_cpu_seconds(records, main_pid)
    noop_wall, _, _ = run_snakemake(command, {**env, "JOB_CPU_RECORDS": tempfile.mkdtemp(prefix="job-cpu-")})
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if args.configfile:
        config["synthetic"].update(yaml.safe_load(Path(args.configfile).read_text()).get("synthetic", {}))
    n = config["synthetic"]["n_internal"] + config["synthetic"]["n_external"]
    floor = jobs_cpu / args.cores
    print(f"patients: {n}; cores: {args.cores}; target: {args.target}; jobs: {n_jobs}")
    print(f"wall time: {wall:.0f} s ({wall / n:.2f} s per patient)")
    print(f"floor (jobs' CPU {jobs_cpu:.0f} s / {args.cores} cores): {floor:.0f} s; wall / floor: {wall / floor:.2f}")
    print(f"snakemake main process CPU: {main_cpu:.0f} s ({main_cpu / wall:.0%} of one core)")
    print(f"no-op rerun: {noop_wall:.1f} s")


if __name__ == "__main__":
    main()
