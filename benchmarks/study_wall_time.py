"""Wall time of a study up to the radiomics table, against the 10-minute target.

Runs `snakemake features` (or another target) on a config (default: config/config.yaml, the
200-patient synthetic study) in a fresh working directory with the workstation profile and
reports the wall time, the time per patient, the ratio to the target measured in this run, and
the CPU time of the Snakemake main process itself (scheduling, DAG updates; not its jobs).

usage: python benchmarks/study_wall_time.py [--configfile FILE] [--cores N] [--workdir DIR]
                                            [--target features] [--scheduler greedy|ilp]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 600.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configfile", default=None)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--target", default="features")
    parser.add_argument("--scheduler", default=None, help="override the profile's scheduler")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="study-bench-"))
    command = [
        str(Path(sys.executable).parent / "snakemake"), "--snakefile", str(REPO / "Snakefile"),
        "--profile", str(REPO / "profiles/default"), "--directory", str(workdir),
        "--cores", str(args.cores), args.target,
    ]
    if args.configfile:
        command += ["--configfile", args.configfile]
    if args.scheduler:
        command += ["--scheduler", args.scheduler]
    started = time.perf_counter()
    process = psutil.Popen(command, stdout=sys.stderr, stderr=sys.stderr)
    main_cpu = 0.0
    while process.poll() is None:
        try:
            times = process.cpu_times()
            main_cpu = times.user + times.system
        except psutil.NoSuchProcess:
            break
        time.sleep(1.0)
    wall = time.perf_counter() - started
    if process.returncode:
        sys.exit(f"snakemake failed with exit code {process.returncode}")
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if args.configfile:
        config["synthetic"].update(yaml.safe_load(Path(args.configfile).read_text()).get("synthetic", {}))
    n = config["synthetic"]["n_internal"] + config["synthetic"]["n_external"]
    print(f"patients: {n}; cores: {args.cores}; target: {args.target}")
    print(f"wall time: {wall:.0f} s ({wall / n:.2f} s per patient)")
    print(f"ratio to the 10-minute target: {wall / TARGET_S:.2f}")
    print(f"snakemake main process CPU: {main_cpu:.0f} s ({main_cpu / wall:.0%} of one core)")


if __name__ == "__main__":
    main()
