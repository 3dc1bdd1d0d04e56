"""Make the workflow library importable from tests without installing the workflow."""

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


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """A finished run of the tiny study; TINY_STUDY_DIR reuses an existing run's workdir."""
    if os.environ.get("TINY_STUDY_DIR"):
        return Path(os.environ["TINY_STUDY_DIR"])
    workdir = tmp_path_factory.mktemp("tiny")
    done = run_snakemake(workdir, "all", env=import_tracing_env(workdir))
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir

