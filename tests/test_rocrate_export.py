import json

from rocrate.rocrate import ROCrate

from fakepipe import run_pipeline
from radiogenomics.core.provenance import sha256_file
from radiogenomics.reporting.rocrate import export_crate


def _graph(metadata_path):
    graph = json.loads(metadata_path.read_text())["@graph"]
    return {entity["@id"]: entity for entity in graph}


def _ids(value):
    return {item["@id"] for item in (value if isinstance(value, list) else [value])}


def test_standalone_crate_has_the_run(tmp_path):
    run_pipeline(tmp_path)
    (tmp_path / "Snakefile").write_text("rule all:\n    input: 'results/figures/fig.png'\n")
    metadata = export_crate(
        tmp_path,
        tmp_path / "Snakefile",
        out_dir=tmp_path / "crate",
        config_path=tmp_path / "config.yaml",
    )
    graph = _graph(metadata)

    root = graph["./"]
    assert root["mainEntity"] == {"@id": "Snakefile"}
    assert {
        "https://w3id.org/ro/wfrun/process/0.5",
        "https://w3id.org/ro/wfrun/workflow/0.5",
        "https://w3id.org/workflowhub/workflow-ro-crate/1.1",
    } <= _ids(root["conformsTo"])
    assert "ComputationalWorkflow" in graph["Snakefile"]["@type"]

    actions = {k: v for k, v in graph.items() if v.get("@type") == "CreateAction"}
    assert len(actions) == 4  # three rule jobs and the workflow run
    run = actions["#workflow-run"]
    assert run["instrument"] == {"@id": "Snakefile"}
    assert _ids(run["object"]) == {"raw/data.tsv", "raw/extra/", "config.yaml"}
    assert _ids(run["result"]) == {
        "results/norm.tsv",
        "results/tables/summary.tsv",
        "results/figures/fig.png",
        "results/figures/fig.svg",
    }

    normalize = next(a for a in actions.values() if a["name"].startswith("rule normalize"))
    assert normalize["instrument"] == {"@id": "#rule-normalize"}
    objects = _ids(normalize["object"])
    assert {"raw/data.tsv", "raw/extra/"} <= objects
    param = graph[next(i for i in objects if "param-scale" in i)]
    assert param["@type"] == "PropertyValue" and param["value"] == "2.0"
    assert normalize["startTime"] == "2026-01-01T12:00:00+00:00"
    assert graph["raw/extra/"]["@type"] == "Dataset"
    assert graph["results/norm.tsv"]["sha256"] == sha256_file(tmp_path / "results/norm.tsv")

    # The data was copied and ro-crate-py reads the crate back.
    copied = tmp_path / "crate/results/figures/fig.png"
    assert copied.read_bytes() == (tmp_path / "results/figures/fig.png").read_bytes()
    assert (tmp_path / "crate/raw/extra/a.txt").is_file()
    loaded = ROCrate(tmp_path / "crate")
    assert loaded.mainEntity.id == "Snakefile"
    assert loaded.get("#workflow-run").type == "CreateAction"


def test_in_place_crate_copies_nothing(tmp_path):
    run_pipeline(tmp_path)
    (tmp_path / "Snakefile").write_text("rule all:\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    metadata = export_crate(tmp_path, tmp_path / "Snakefile")
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert metadata == tmp_path / "ro-crate-metadata.json"
    assert set(after) - set(before) == {metadata.relative_to(tmp_path)}
    graph = _graph(metadata)
    assert graph["results/figures/fig.svg"]["@type"] == "File"
    assert graph["./"]["datePublished"] == "2026-01-01T12:00:01+00:00"
    first = metadata.read_text()
    export_crate(tmp_path, tmp_path / "Snakefile")
    assert metadata.read_text() == first  # deterministic
