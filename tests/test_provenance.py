import datetime as dt
import hashlib
import json

import numpy as np
import pytest

from fakepipe import CONFIG, run_pipeline
from radiogenomics.core import provenance as prov


@pytest.mark.parametrize(
    ("output", "sidecar"),
    [
        ("results/figures/km.png", "results/figures/km.prov.json"),
        ("results/figures/km.svg", "results/figures/km.prov.json"),
        ("results/models/S1/metrics.tsv", "results/models/S1/metrics.prov.json"),
        ("results/imaging/P1/ct.nii.gz", "results/imaging/P1/ct.prov.json"),
        ("results/cohort/qc/P.001.json", "results/cohort/qc/P.001.prov.json"),
        ("results/raw/README", "results/raw/README.prov.json"),
    ],
)
def test_sidecar_path_rule(output, sidecar):
    assert prov.sidecar_path(output).as_posix() == sidecar


def test_file_and_folder_hashes(tmp_path):
    payload = b"abc\x00def" * 1000
    (tmp_path / "f.bin").write_bytes(payload)
    assert prov.sha256_file(tmp_path / "f.bin") == hashlib.sha256(payload).hexdigest()

    # Same content written in a different order hashes the same; one byte changes it.
    for name, order in (("d1", ["a", "b/c"]), ("d2", ["b/c", "a"])):
        for part in order:
            target = tmp_path / name / part
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(part)
    assert prov.sha256_path(tmp_path / "d1") == prov.sha256_path(tmp_path / "d2")
    (tmp_path / "d2" / "x.prov.json").write_text("{}")  # sidecars never change a folder hash
    assert prov.sha256_path(tmp_path / "d1") == prov.sha256_path(tmp_path / "d2")
    (tmp_path / "d2" / "a").write_text("A")
    assert prov.sha256_path(tmp_path / "d1") != prov.sha256_path(tmp_path / "d2")
    # Independent computation of the folder rule.
    lines = "".join(f"{rel}\0{hashlib.sha256(rel.encode()).hexdigest()}\n" for rel in ["a", "b/c"])
    assert prov.sha256_path(tmp_path / "d1") == "dir:" + hashlib.sha256(lines.encode()).hexdigest()


def test_config_hash_is_canonical():
    a = {"b": 1, "a": {"y": [1, 2], "x": "s"}}
    b = {"a": {"x": "s", "y": [1, 2]}, "b": 1}
    assert prov.config_sha256(a) == prov.config_sha256(b)
    expected = hashlib.sha256(b'{"a":{"x":"s","y":[1,2]},"b":1}').hexdigest()
    assert prov.config_sha256(a) == expected
    assert prov.config_sha256({**a, "b": 2}) != expected


def test_sidecar_records_everything(tmp_path):
    run_pipeline(tmp_path)
    record = json.loads((tmp_path / "results/norm.prov.json").read_text())
    assert record["rule"] == "normalize"
    assert record["params"] == {"scale": 2.0}
    inputs = {i["path"]: i["sha256"] for i in record["inputs"]}
    raw = (tmp_path / "raw/data.tsv").read_bytes()
    assert inputs["raw/data.tsv"] == hashlib.sha256(raw).hexdigest()
    assert inputs["raw/extra"].startswith("dir:")
    out = (tmp_path / "results/norm.tsv").read_bytes()
    assert record["outputs"] == [
        {"path": "results/norm.tsv", "sha256": hashlib.sha256(out).hexdigest()}
    ]
    assert record["config_sha256"] == prov.config_sha256(CONFIG)
    assert record["packages"]["numpy"] == np.__version__
    assert record["packages"]["scikit-learn"] is not None
    assert dt.datetime.fromisoformat(record["started"]) == dt.datetime(
        2026, 1, 1, 12, tzinfo=dt.timezone.utc
    )
    assert record["finished"].endswith("+00:00")
    script = tmp_path / "workflow/scripts/normalize.py"
    assert record["code"]["script"]["sha256"] == hashlib.sha256(script.read_bytes()).hexdigest()
    modules = record["code"]["library_modules"]
    assert "radiogenomics/core/io.py" in modules and "radiogenomics/core/provenance.py" not in modules
    assert set(record["code"]["workflow"]) >= {"git_commit", "dirty", "tree_sha256"}

    figure = json.loads((tmp_path / "results/figures/fig.prov.json").read_text())
    assert [o["path"] for o in figure["outputs"]] == [
        "results/figures/fig.png",
        "results/figures/fig.svg",
    ]
    assert figure["seeds"] == {"seed": 7}
    assert figure["wildcards"] == {"name": "fig"}


def test_figures_are_byte_identical_across_runs(tmp_path):
    run_pipeline(tmp_path / "a")
    run_pipeline(tmp_path / "b")
    for name in ("fig.png", "fig.svg"):
        a = (tmp_path / "a/results/figures" / name).read_bytes()
        b = (tmp_path / "b/results/figures" / name).read_bytes()
        assert a == b, name
    svg = (tmp_path / "a/results/figures/fig.svg").read_text()
    assert "<dc:date>" not in svg


def test_workflow_version_reports_dirty_tree(tmp_path):
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "Snakefile").write_text("rule all:\n")
    subprocess.run([*git, "add", "Snakefile"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=repo, check=True)
    clean = prov.workflow_version.__wrapped__(repo)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    assert clean["git_commit"] == head.stdout.strip()
    assert clean["dirty"] is False and clean["tree_sha256"] is None
    (repo / "Snakefile").write_text("rule all:\n    input: []\n")
    dirty = prov.workflow_version.__wrapped__(repo)
    assert dirty["dirty"] is True
    content_hash = hashlib.sha256(b"rule all:\n    input: []\n").hexdigest()
    expected = hashlib.sha256(f"Snakefile\0{content_hash}\n".encode()).hexdigest()
    assert dirty["tree_sha256"] == expected


def test_infer_param_sources():
    config = {"a": {"b": 2, "c": [1, 2]}, "c": 2, "d": "x", "e": {"b": 2, "c": [1, 2]}}
    params = {"p": "x", "q": 2, "r": {"b": 2, "c": [1, 2]}, "s": [1, 2], "t": "nowhere"}
    # q (2) and r (two equal subtrees) are ambiguous; s matches a.c and e.c.
    assert prov.infer_param_sources(params, config) == {"p": "d"}
    assert prov.infer_param_sources({"shell": 3}, {"regions": {"shell_mm": 3}}) == {
        "shell": "regions.shell_mm"
    }


class _NamedList(list):
    """Stands in for Snakemake's Namedlist: a list with named items."""

    def __init__(self, values, names):
        super().__init__(values)
        self._names = names

    def items(self):
        return self._names.items()


def test_from_snakemake(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.tsv").write_text("a\n1\n")
    (tmp_path / "out.tsv").write_text("a\n2\n")
    (tmp_path / "out.png").write_bytes(b"png")

    class FakeSnakemake:
        rule = "make_out"
        input = _NamedList(["in.tsv"], {"table": "in.tsv"})
        output = _NamedList(["out.tsv", "out.png"], {})
        params = _NamedList([3], {"k": 3})
        wildcards = _NamedList(["P1"], {"patient": "P1"})
        log = _NamedList(["logs/x.log"], {})
        config = {"k": 3}

    written = prov.from_snakemake(FakeSnakemake(), seeds={"gmm": 1})
    assert sorted(p.name for p in written) == ["out.prov.json"]
    record = prov.read_sidecar(tmp_path / "out.prov.json")
    assert record["rule"] == "make_out"
    assert record["params"] == {"k": 3}
    assert record["wildcards"] == {"patient": "P1"}
    assert [o["path"] for o in record["outputs"]] == ["out.tsv", "out.png"]
    assert record["code"]["script"]["path"] == __file__
    assert record["started"] is not None


SNAKEFILE = """
configfile: "config.yaml"

rule all:
    input: "results/figures/fig.png"

rule double:
    input: "raw/data.txt"
    output: "results/double.txt"
    params: factor=config["factor"]
    log: "logs/double.log"
    script: "scripts/double.py"

rule plot:
    input: "results/double.txt"
    output: "results/figures/fig.png", "results/figures/fig.svg"
    script: "scripts/plot.py"
"""

DOUBLE = """
from radiogenomics.core.provenance import from_snakemake
text = open(snakemake.input[0]).read()
with open(snakemake.output[0], "w") as handle:
    handle.write(text * snakemake.params.factor)
from_snakemake(snakemake, seeds={"seed": snakemake.config["seed"]},
               param_sources={"factor": "factor"})
"""

PLOT = """
from radiogenomics.core.provenance import from_snakemake
for path in snakemake.output:
    with open(path, "w") as handle:
        handle.write(open(snakemake.input[0]).read().upper())
from_snakemake(snakemake)
"""


@pytest.mark.slow
def test_real_snakemake_run_is_auditable(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from radiogenomics.core.audit import audit

    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "config.yaml").write_text("factor: 2\nseed: 5\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/double.py").write_text(DOUBLE)
    (tmp_path / "scripts/plot.py").write_text(PLOT)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/data.txt").write_text("ab\n")
    library = Path(prov.__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(library)}
    snakemake = Path(sys.executable).with_name("snakemake")
    done = subprocess.run(
        [str(snakemake), "--cores", "1", "all"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr

    record = prov.read_sidecar(tmp_path / "results/double.prov.json")
    assert record["rule"] == "double"
    assert record["params"] == {"factor": 2}
    assert record["seeds"] == {"seed": 5}
    assert record["log"] == ["logs/double.log"]
    assert record["code"]["script"]["path"] == str((tmp_path / "scripts/double.py").resolve())
    assert record["started"] <= record["finished"]
    figure = prov.read_sidecar(tmp_path / "results/figures/fig.prov.json")
    assert [o["path"] for o in figure["outputs"]] == [
        "results/figures/fig.png",
        "results/figures/fig.svg",
    ]

    config = {"factor": 2, "seed": 5}
    assert audit("results/figures/fig.png", root=tmp_path, config=config).ok
    report = audit("results/figures/fig.png", root=tmp_path, config={"factor": 3, "seed": 5})
    assert [(f.kind, f.rule) for f in report.findings] == [("params", "double")]
    assert "param factor (config factor) was 2, config now gives 3" in str(report.findings[0])
