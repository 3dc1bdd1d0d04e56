"""Wall time of a study up to the radiomics table, against the 10-minute target.

Runs `snakemake features` on a config (default: config/config.yaml, the 200-patient synthetic
study) in a fresh working directory and reports the wall time, the time per patient, and the
ratio to the target measured in this run.

usage: python benchmarks/study_wall_time.py [--configfile FILE] [--cores N] [--workdir DIR]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 600.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configfile", default=None)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="study-bench-"))
    command = [
        str(Path(sys.executable).parent / "snakemake"), "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--cores", str(args.cores), "features",
    ]
    if args.configfile:
        command += ["--configfile", args.configfile]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if args.configfile:
        config["synthetic"].update(yaml.safe_load(Path(args.configfile).read_text()).get("synthetic", {}))
    n = config["synthetic"]["n_internal"] + config["synthetic"]["n_external"]
    print(f"patients: {n}; cores: {args.cores}")
    print(f"wall time up to features: {wall:.0f} s ({wall / n:.2f} s per patient)")
    print(f"ratio to the 10-minute target: {wall / TARGET_S:.2f}")


if __name__ == "__main__":
    main()
