"""How the DAG build grows with the cohort, and how many SLURM submissions a large study makes.

For each cohort size, a synthetic study's working directory is faked as it stands after the
cohort checkpoint (benchmarks/fake_cohort.py: no images), and `snakemake --dry-run` is timed
twice: in an empty directory (the DAG up to the checkpoint) and in the faked one (everything
after it, the DAG a running study rebuilds). Growth is reported as seconds per patient relative
to the smallest cohort (1.0 = linear), from the dry run's CPU seconds (the machine may be shared). For the largest cohort the submissions of
`--profile profiles/slurm` are counted by bin/slurm-plan (the SLURM plugin's own sbatch calls).

usage: python benchmarks/dag_scale.py [--sizes 200 1000 5000] [--no-plan]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from fake_cohort import write_checkpointed_cohort  # noqa: E402


def dry_run_seconds(workdir: Path, configfile: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of the dry run: on a shared machine the CPU seconds are the measure."""
    command = [
        str(Path(sys.executable).parent / "snakemake"), "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--configfile", str(configfile), "--dry-run", "--quiet", "all",
        "--rerun-triggers", "mtime", "--cores", "1",
    ]
    started, cpu_before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True)
    seconds, cpu_after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"dry run failed in {workdir}:\n{done.stderr[-3000:]}")
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return seconds, cpu


def slurm_submissions(workdir: Path, configfile: Path) -> dict:
    plan = workdir / "slurm_plan.json"
    done = subprocess.run(
        [sys.executable, "-m", "radiogenomics.core.slurm_plan", str(plan), "--snakefile", str(REPO / "Snakefile"),
         "--directory", str(workdir), "--configfile", str(configfile), "--profile", str(REPO / "profiles/slurm"),
         "--rerun-triggers", "mtime"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "workflow/scripts")},
    )
    if done.returncode:
        sys.exit(f"slurm plan failed in {workdir}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    submissions = json.loads(plan.read_text())["submissions"]
    return {"submissions": len(submissions), "jobs": sum(entry["jobs"] for entry in submissions)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000, 5000])
    parser.add_argument("--no-plan", action="store_true", help="skip counting SLURM submissions")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dag-scale-"))
    rows = []
    for n in args.sizes:
        n_internal, n_external = n * 4 // 5, n - n * 4 // 5
        configfile = root / f"study{n}.yaml"
        configfile.write_text(yaml.safe_dump({"synthetic": {"n_internal": n_internal, "n_external": n_external}}))
        fresh, checkpointed = root / f"fresh{n}", root / f"checkpointed{n}"
        fresh.mkdir()
        write_checkpointed_cohort(checkpointed, n_internal, n_external)
        (before_wall, before), (after_wall, after) = dry_run_seconds(fresh, configfile), dry_run_seconds(checkpointed, configfile)
        rows.append({"patients": n, "before": before, "after": after})
        print(
            f"{n:>6} patients: DAG up to the checkpoint {before:6.1f} s CPU ({before_wall:.1f} s wall), "
            f"after it {after:6.1f} s CPU ({after_wall:.1f} s wall)", flush=True,
        )
    base = rows[0]
    print("\ngrowth (seconds per patient relative to the smallest cohort; 1.0 = linear):")
    for row in rows:
        before = (row["before"] / row["patients"]) / (base["before"] / base["patients"])
        after = (row["after"] / row["patients"]) / (base["after"] / base["patients"])
        print(f"{row['patients']:>6} patients: before checkpoint {before:.2f}, after {after:.2f}")
    if not args.no_plan:
        n = args.sizes[-1]
        configfile = root / f"study{n}.yaml"
        before = slurm_submissions(root / f"fresh{n}", configfile)
        after = slurm_submissions(root / f"checkpointed{n}", configfile)
        print(
            f"\n{n} patients with --profile profiles/slurm: {before['submissions'] + after['submissions']} "
            f"SLURM submissions for {before['jobs'] + after['jobs']} jobs "
            f"({before['submissions']} up to the cohort checkpoint, {after['submissions']} after it)"
        )


if __name__ == "__main__":
    main()
