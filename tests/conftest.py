"""Make the workflow library importable from tests without installing the workflow."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def run_snakemake(workdir, *args, configfile=REPO / "config/tiny.yaml"):
    """Snakemake on ``workdir``; ``configfile`` is one path or a list (later files win)."""
    configfiles = configfile if isinstance(configfile, (list, tuple)) else [configfile]
    command = [
        str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", *map(str, configfiles), "--cores", "2", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """A finished run of the tiny study; TINY_STUDY_DIR reuses an existing run's workdir."""
    if os.environ.get("TINY_STUDY_DIR"):
        return Path(os.environ["TINY_STUDY_DIR"])
    workdir = tmp_path_factory.mktemp("tiny")
    done = run_snakemake(workdir, "all")
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir

