"""Export a finished run as a Workflow Run RO-Crate (ro-crate-py), built from the sidecars.

    python -m radiogenomics.reporting.rocrate --root WORKDIR --snakefile Snakefile [--out DIR]

The crate holds the workflow (the Snakefile, main entity), every input and output named in a
provenance sidecar (with sha256 and size), one CreateAction per rule job (instrument: the rule,
object: its inputs and params as PropertyValue, result: its outputs, start and end time) and one
CreateAction for the whole run (object: raw inputs and the config, result: every output).

Without ``--out`` the crate is written in place: ``ro-crate-metadata.json`` lands in the workdir
and no data is copied. With ``--out`` the data files are copied into a standalone crate folder.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from pathlib import Path

from rocrate.model.contextentity import ContextEntity
from rocrate.rocrate import ROCrate

from radiogenomics.core.provenance import SIDECAR_SUFFIX, read_sidecar

WROC_RUN_PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5": "Process Run Crate",
    "https://w3id.org/ro/wfrun/workflow/0.5": "Workflow Run Crate",
}
WROC_RUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"


def find_sidecars(root: Path, results: str = "results") -> list[Path]:
    base = root / results
    return sorted(p for p in base.rglob("*" + SIDECAR_SUFFIX) if p.is_file())


def _entity_id(text: str) -> str:
    return "#" + re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


class _CrateBuilder:
    def __init__(self, root: Path, copy_data: bool):
        self.root = root
        self.copy_data = copy_data
        self.crate = ROCrate()
        self.entities: dict[str, object] = {}

    def data_entity(self, path: str, sha256: str | None):
        if path in self.entities:
            return self.entities[path]
        source = self.root / path
        properties = {}
        if sha256:
            properties["sha256"] = sha256.removeprefix("dir:")
        if source.is_file():
            properties["contentSize"] = str(source.stat().st_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "No source": in-place crates reference, not copy
            if source.is_dir():
                entity = self.crate.add_dataset(
                    source if self.copy_data else None, dest_path=path, properties=properties
                )
            else:
                entity = self.crate.add_file(
                    source if self.copy_data and source.exists() else None,
                    dest_path=path,
                    properties=properties,
                )
        self.entities[path] = entity
        return entity

    def rule_entity(self, rule: str, script: dict | None):
        key = f"rule:{rule}"
        if key not in self.entities:
            properties = {"@type": "SoftwareApplication", "name": f"Snakemake rule {rule}"}
            if script and script.get("repo_path"):
                properties["description"] = f"script {script['repo_path']}"
            self.entities[key] = self.crate.add(
                ContextEntity(self.crate, _entity_id(f"rule-{rule}"), properties=properties)
            )
        return self.entities[key]

    def param_entities(self, job_id: str, params: dict) -> list:
        values = []
        for name, value in sorted(params.items()):
            values.append(
                self.crate.add(
                    ContextEntity(
                        self.crate,
                        _entity_id(f"{job_id}-param-{name}"),
                        properties={
                            "@type": "PropertyValue",
                            "name": name,
                            "value": json.dumps(value, sort_keys=True),
                        },
                    )
                )
            )
        return values


def export_crate(
    root: str | Path,
    snakefile: str | Path,
    out_dir: str | Path | None = None,
    config_path: str | Path | None = None,
    name: str = "ccRCC radiomics + radiogenomics study run",
    license_id: str | None = None,
) -> Path:
    """Write the crate; returns the path of its ``ro-crate-metadata.json``."""
    root = Path(root)
    copy_data = out_dir is not None
    crate_dir = Path(out_dir) if copy_data else root
    builder = _CrateBuilder(root, copy_data)
    crate = builder.crate
    crate.name = name
    crate.description = "Workflow Run RO-Crate built from the per-output provenance sidecars."
    if license_id:
        crate.license = license_id

    snakefile = Path(snakefile)
    inside_root = _inside(snakefile, root)
    workflow = crate.add_workflow(
        source=snakefile if copy_data or not inside_root else None,
        dest_path=(
            snakefile.resolve().relative_to(root.resolve()).as_posix()
            if inside_root
            else snakefile.name
        ),
        main=True,
        lang="snakemake",
    )
    for profile, title in WROC_RUN_PROFILES.items():
        entity = crate.add(
            ContextEntity(
                crate,
                profile,
                properties={"@type": ["CreativeWork", "Profile"], "name": title, "version": "0.5"},
            )
        )
        crate.root_dataset.append_to("conformsTo", entity)
    if WROC_RUN_CONTEXT not in crate.metadata.extra_contexts:
        crate.metadata.extra_contexts.append(WROC_RUN_CONTEXT)

    produced: set[str] = set()
    consumed: dict[str, str] = {}
    all_results = []
    starts, ends = [], []
    for sidecar in find_sidecars(root):
        record = read_sidecar(sidecar)
        job = sidecar.relative_to(root).as_posix().removesuffix(SIDECAR_SUFFIX)
        job_id = _entity_id(f"job-{record['rule']}-{job}")
        inputs = [builder.data_entity(i["path"], i["sha256"]) for i in record["inputs"]]
        outputs = [builder.data_entity(o["path"], o["sha256"]) for o in record["outputs"]]
        params = builder.param_entities(job_id, record.get("params", {}))
        properties = {
            "name": f"rule {record['rule']} -> {', '.join(o['path'] for o in record['outputs'])}",
            "actionStatus": {"@id": "http://schema.org/CompletedActionStatus"},
        }
        if record.get("started"):
            properties["startTime"] = record["started"]
            starts.append(record["started"])
        if record.get("finished"):
            properties["endTime"] = record["finished"]
            ends.append(record["finished"])
        crate.add_action(
            builder.rule_entity(record["rule"], record.get("code", {}).get("script")),
            identifier=job_id,
            object=inputs + params,
            result=outputs,
            properties=properties,
        )
        produced.update(o["path"] for o in record["outputs"])
        consumed.update({i["path"]: i["sha256"] for i in record["inputs"]})
        all_results.extend(outputs)

    raw_inputs = [
        builder.data_entity(p, h) for p, h in sorted(consumed.items()) if p not in produced
    ]
    if config_path is not None and _inside(Path(config_path), root):
        config_rel = Path(config_path).resolve().relative_to(root.resolve()).as_posix()
        raw_inputs.append(builder.data_entity(config_rel, None))
    elif config_path is not None and copy_data:
        raw_inputs.append(crate.add_file(config_path, dest_path=f"config/{Path(config_path).name}"))
    run_properties = {"name": f"Run of {name}"}
    if starts:
        run_properties["startTime"] = min(starts)
    if ends:
        run_properties["endTime"] = max(ends)
        crate.datePublished = max(ends)  # a rerun of the export gives the same metadata
    crate.add_action(
        workflow,
        identifier="#workflow-run",
        object=raw_inputs,
        result=list(dict.fromkeys(all_results)),
        properties=run_properties,
    )

    crate_dir.mkdir(parents=True, exist_ok=True)
    if copy_data:
        crate.write(crate_dir)
    else:
        crate.metadata.write(crate_dir)
    return crate_dir / "ro-crate-metadata.json"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m radiogenomics.reporting.rocrate",
        description="Export the run as a Workflow Run RO-Crate.",
    )
    parser.add_argument("--root", default=".", help="Snakemake workdir")
    parser.add_argument("--snakefile", default="Snakefile")
    parser.add_argument("--config", help="config file used for the run")
    parser.add_argument("--out", help="standalone crate folder (data copied); default: in place")
    args = parser.parse_args(argv)
    print(export_crate(args.root, args.snakefile, args.out, args.config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
