"""Make the workflow library importable from tests without installing the workflow."""

import contextlib
import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def import_tracing_env(workdir) -> dict:
    """Environment that makes every job of a run note what the project's code imports
    (tests/import_trace/sitecustomize.py) in workdir/.import_trace."""
    records = Path(workdir) / ".import_trace"
    records.mkdir(parents=True, exist_ok=True)
    roots = [REPO / "workflow" / "scripts", Path(workdir).resolve() / ".snakemake" / "scripts"]
    hook = REPO / "tests" / "import_trace"
    return {
        "IMPORT_TRACE_DIR": str(records),
        "IMPORT_TRACE_ROOTS": os.pathsep.join(map(str, roots)),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])),
    }


def run_snakemake(workdir, *args, configfile=REPO / "config/tiny.yaml", env=None):
    """Snakemake on ``workdir``; ``configfile`` is one path or a list (later files win);
    ``env``: variables added to the environment."""
    configfiles = configfile if isinstance(configfile, (list, tuple)) else [configfile]
    command = [
        str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", *map(str, configfiles), "--cores", "2", *args,
    ]
    environment = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=environment)


@contextlib.contextmanager
def exclusive(workdir):
    """Hold ``workdir``'s lock file: pytest sessions that share a study (bin/run-tests) take it to
    build the study, and to rerun part of it or read Snakemake's records of it."""
    with open(f"{workdir}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_tiny_study(workdir: Path) -> None:
    failed = workdir / "TINY_STUDY_FAILED"
    done = run_snakemake(workdir, "all", env=import_tracing_env(workdir))
    if done.returncode != 0:
        failed.write_text(done.stderr)  # the sharing session reports the same failure
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """A finished run of the tiny study. TINY_STUDY_DIR names its workdir: a finished run there is
    reused; a missing or empty folder is built by whichever pytest session asks first, while the
    others wait for it (bin/run-tests runs two sessions)."""
    if not os.environ.get("TINY_STUDY_DIR"):
        workdir = tmp_path_factory.mktemp("tiny")
        build_tiny_study(workdir)
        return workdir
    workdir = Path(os.environ["TINY_STUDY_DIR"])
    with exclusive(workdir):
        if not workdir.is_dir() or not any(workdir.iterdir()):
            workdir.mkdir(parents=True, exist_ok=True)
            build_tiny_study(workdir)
    failed = workdir / "TINY_STUDY_FAILED"
    assert not failed.exists(), f"the shared tiny study failed ({failed}):\n{failed.read_text()[-4000:]}"
    return workdir

