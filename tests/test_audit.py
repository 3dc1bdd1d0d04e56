import shutil

import yaml

from fakepipe import CONFIG, run_pipeline
from radiogenomics.core import audit as audit_module
from radiogenomics.core.audit import audit, main

FIGURE = "results/figures/fig.png"


def _kinds(report):
    return {(f.kind, f.path) for f in report.findings}


def test_audit_passes_and_prints_the_chain(tmp_path, capsys):
    run_pipeline(tmp_path)
    report = audit(FIGURE, root=tmp_path, config=CONFIG)
    assert report.ok, report.render()
    text = report.render()
    for line in (
        "results/figures/fig.png  [rule plot]  ok",
        "└── results/tables/summary.tsv  [rule summarize]  ok",
        "    └── results/norm.tsv  [rule normalize]  ok",
        "        ├── raw/data.tsv  [raw input]  ok",
        "        └── raw/extra  [raw input]  ok",
    ):
        assert line in text.splitlines()
    assert main([FIGURE, "--root", str(tmp_path), "--config", str(tmp_path / "config.yaml")]) == 0
    assert "audit passed" in capsys.readouterr().out
    # The svg shares the sidecar and audits the same way; an absolute path works too.
    assert audit(str(tmp_path / "results/figures/fig.svg"), root=tmp_path).ok
    assert audit("./results/figures/../figures/fig.svg", root=tmp_path).ok


def test_one_input_byte_changed(tmp_path, capsys):
    run_pipeline(tmp_path)
    raw = tmp_path / "raw/data.tsv"
    data = bytearray(raw.read_bytes())
    data[-2] = ord("5") if data[-2] != ord("5") else ord("6")
    raw.write_bytes(bytes(data))
    report = audit(FIGURE, root=tmp_path)
    assert _kinds(report) == {("input", "raw/data.tsv")}
    assert report.findings[0].rule == "normalize"
    assert main([FIGURE, "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "CHANGED input: raw/data.tsv (rule normalize)" in out
    assert "raw/data.tsv  [raw input]  INPUT CHANGED" in out


def test_file_in_an_input_folder_changed(tmp_path):
    run_pipeline(tmp_path)
    (tmp_path / "raw/extra/a.txt").write_text("First\n")
    assert _kinds(audit(FIGURE, root=tmp_path)) == {("input", "raw/extra")}


def test_intermediate_table_edited_by_hand(tmp_path):
    run_pipeline(tmp_path)
    with open(tmp_path / "results/norm.tsv", "a") as handle:
        handle.write("9\tc\n")
    assert _kinds(audit(FIGURE, root=tmp_path)) == {
        ("output", "results/norm.tsv"),  # differs from what its rule wrote
        ("input", "results/norm.tsv"),  # and from what summarize read
    }


def test_one_param_changed(tmp_path, capsys):
    run_pipeline(tmp_path)
    changed = {**CONFIG, "normalize": {"scale": 3.0}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(changed))
    assert main([FIGURE, "--root", str(tmp_path), "--config", str(tmp_path / "config.yaml")]) == 1
    out = capsys.readouterr().out
    assert (
        "CHANGED params: results/norm.tsv (rule normalize): param scale (config "
        "normalize.scale) was 2.0, config now gives 3.0" in out
    )
    # A config key no rule takes as a param does not fail the audit.
    assert audit(FIGURE, root=tmp_path, config={**CONFIG, "seed": 8}).ok


def test_params_traced_to_config_by_value(tmp_path):
    run_pipeline(tmp_path)
    report = audit(FIGURE, root=tmp_path, config={**CONFIG, "plot": {"title": "other"}})
    assert [str(f) for f in report.findings] == [
        "CHANGED params: results/figures/fig.png (rule plot): param title (config plot.title) "
        'was "fake", config now gives "other"'
    ]
    assert "results/figures/fig.png  [rule plot]  PARAMS CHANGED" in report.render()


def test_one_script_changed(tmp_path):
    scripts = run_pipeline(tmp_path)
    with open(scripts["summarize"], "a") as handle:
        handle.write("x = 1\n")
    report = audit(FIGURE, root=tmp_path)
    assert [(f.kind, f.rule) for f in report.findings] == [("code", "summarize")]
    assert report.findings[0].path.endswith("workflow/scripts/summarize.py")


def test_library_module_changed(tmp_path, monkeypatch):
    run_pipeline(tmp_path)
    library = tmp_path / "lib" / "radiogenomics"
    shutil.copytree(audit_module.LIBRARY_DIR, library, ignore=shutil.ignore_patterns("__pycache__"))
    with open(library / "core" / "io.py", "a") as handle:
        handle.write("\n# edited\n")
    monkeypatch.setattr(audit_module, "LIBRARY_DIR", library)
    report = audit(FIGURE, root=tmp_path)
    assert {(f.kind, f.path) for f in report.findings} == {("code", "radiogenomics/core/io.py")}
    assert {f.rule for f in report.findings} == {"normalize", "summarize", "plot"}


def test_missing_sidecar_and_missing_input(tmp_path):
    run_pipeline(tmp_path)
    assert _kinds(audit("raw/data.tsv", root=tmp_path)) == {("sidecar", "raw/data.tsv")}
    (tmp_path / "results/norm.tsv").unlink()
    kinds = _kinds(audit(FIGURE, root=tmp_path))
    assert ("missing", "results/norm.tsv") in kinds


def test_all_figures_mode(tmp_path, capsys):
    run_pipeline(tmp_path)
    assert main(["--all-figures", "--root", str(tmp_path)]) == 0
    assert "2 figure(s) audited, 0 problem(s)" in capsys.readouterr().out
    (tmp_path / "results/figures/orphan.png").write_bytes(b"not really a png")
    assert main(["--all-figures", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "NO PROVENANCE: results/figures/orphan.png has no sidecar listing it" in out
    assert "2 figure(s) audited, 1 problem(s)" in out
