"""Audit a figure or table: walk its lineage through provenance sidecars and verify every hash.

    python -m radiogenomics.core.audit results/figures/km_os.png [--root WORKDIR] [--config CONFIG]
    python -m radiogenomics.core.audit --all-figures [--root WORKDIR] [--config CONFIG]

Starting from the output's sidecar, each recorded input is re-hashed and, when the input has a
sidecar of its own that lists it as an output, followed further back until the raw inputs. For
every step the audit checks the output bytes, the input bytes, the rule's script and the library
modules it imported against the current code, and (with ``--config``) each param against the
config key it came from (``provenance.infer_param_sources``). It prints the chain as a tree and
exits 1 naming what changed, 0 when all holds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from radiogenomics.core.provenance import (
    LIBRARY_DIR,
    SIDECAR_SUFFIX,
    read_sidecar,
    sha256_file,
    sha256_path,
    sidecar_path,
    workflow_version,
)

_MISSING = object()


@dataclass
class Finding:
    kind: str  # input | output | code | params | missing | sidecar
    path: str
    rule: str | None
    detail: str

    def __str__(self) -> str:
        where = f" (rule {self.rule})" if self.rule else ""
        return f"CHANGED {self.kind}: {self.path}{where}: {self.detail}"


@dataclass
class Node:
    path: str
    rule: str | None = None
    problems: list[str] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # params not traceable to a config key
    repeated: bool = False


@dataclass
class AuditReport:
    tree: Node
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings

    def render(self) -> str:
        lines = [_label(self.tree)]
        _render_children(self.tree, "", lines)
        lines.append("")
        if self.ok:
            lines.append("audit passed: every hash in the lineage matches")
        else:
            lines.append(f"audit FAILED: {len(self.findings)} change(s)")
            lines.extend(str(f) for f in self.findings)
        return "\n".join(lines)


def _label(node: Node) -> str:
    kind = f"[rule {node.rule}]" if node.rule else "[raw input]"
    state = "ok" if not node.problems else "; ".join(node.problems)
    suffix = " (lineage shown above)" if node.repeated else ""
    if node.unchecked:
        suffix += f" (params not traceable to config: {', '.join(node.unchecked)})"
    return f"{node.path}  {kind}  {state}{suffix}"


def _render_children(node: Node, prefix: str, lines: list[str]) -> None:
    for i, child in enumerate(node.children):
        last = i == len(node.children) - 1
        lines.append(prefix + ("└── " if last else "├── ") + _label(child))
        _render_children(child, prefix + ("    " if last else "│   "), lines)


def _short(digest: str | None) -> str:
    return (digest or "none").removeprefix("dir:")[:12]


def _dotted_get(config: dict, key: str):
    value = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _json_equal(a, b) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


class _Auditor:
    def __init__(self, root: Path, config: dict | None):
        self.root = root
        self.config = None if config is None else json.loads(json.dumps(config, default=str))
        self.findings: list[Finding] = []
        self.visited: set[Path] = set()
        self.current_repo_root = workflow_version(LIBRARY_DIR)["repo_root"]

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    def note(self, node: Node, kind: str, path: str, detail: str) -> None:
        node.problems.append(
            f"{kind.upper()} CHANGED" if kind not in {"missing", "sidecar"} else kind.upper()
        )
        self.findings.append(Finding(kind, path, node.rule, detail))

    def visit(self, path: str) -> Node:
        node = Node(path)
        sidecar = sidecar_path(self.resolve(path))
        if not sidecar.is_file():
            return node
        record = read_sidecar(sidecar)
        outputs = {o["path"]: o["sha256"] for o in record.get("outputs", [])}
        if path not in outputs:
            return node
        node.rule = record.get("rule")
        if sidecar in self.visited:
            node.repeated = True
            return node
        self.visited.add(sidecar)

        self.check_output(node, path, outputs[path])
        self.check_code(node, record)
        self.check_params(node, record)
        for entry in record.get("inputs", []):
            node.children.append(self.check_input(node, entry))
        return node

    def check_output(self, node: Node, path: str, recorded: str) -> None:
        target = self.resolve(path)
        if not target.exists():
            self.note(node, "missing", path, "output no longer exists")
            return
        now = sha256_path(target)
        if now != recorded:
            self.note(
                node,
                "output",
                path,
                f"file differs from what the rule wrote (recorded sha256 "
                f"{_short(recorded)}, now {_short(now)})",
            )

    def check_input(self, consumer: Node, entry: dict) -> Node:
        path, recorded = entry["path"], entry["sha256"]
        target = self.resolve(path)
        if not target.exists():
            self.note(consumer, "missing", path, "input no longer exists")
            return Node(path, problems=["MISSING"])
        now = sha256_path(target)
        child = self.visit(path)
        if now != recorded:
            child.problems.append("INPUT CHANGED")
            self.findings.append(
                Finding(
                    "input",
                    path,
                    consumer.rule,
                    f"input file differs from the one used (recorded sha256 {_short(recorded)}, "
                    f"now {_short(now)})",
                )
            )
        return child

    def current_script(self, script: dict) -> Path:
        if self.current_repo_root and script.get("repo_path"):
            candidate = Path(self.current_repo_root) / script["repo_path"]
            if candidate.exists():
                return candidate
        return Path(script["path"])

    def check_code(self, node: Node, record: dict) -> None:
        code = record.get("code", {})
        script = code.get("script")
        if script:
            current = self.current_script(script)
            shown = script.get("repo_path") or script["path"]
            if not current.is_file():
                self.note(node, "code", shown, "script no longer exists")
            elif sha256_file(current) != script["sha256"]:
                self.note(
                    node,
                    "code",
                    shown,
                    f"script differs (recorded sha256 {_short(script['sha256'])}, "
                    f"now {_short(sha256_file(current))})",
                )
        for module, recorded in code.get("library_modules", {}).items():
            current = LIBRARY_DIR.parent / module
            if not current.is_file():
                self.note(node, "code", module, "library module no longer exists")
            elif sha256_file(current) != recorded:
                self.note(
                    node,
                    "code",
                    module,
                    f"library module differs (recorded sha256 {_short(recorded)}, "
                    f"now {_short(sha256_file(current))})",
                )

    def check_params(self, node: Node, record: dict) -> None:
        """Params are a rule's only sanctioned view of the config (shims read snakemake.params).

        A param whose config key is known is compared with the current config; one computed
        from the config in the Snakefile cannot be traced and is listed as unchecked.
        """
        if self.config is None:
            return
        sources = record.get("param_sources") or {}
        params = record.get("params", {})
        for name in sorted(params):
            if name not in sources:
                node.unchecked.append(name)
                continue
            now = _dotted_get(self.config, sources[name])
            was = params[name]
            if not _json_equal(was, now):
                shown_now = "absent" if now is _MISSING else json.dumps(now)
                self.note(
                    node,
                    "params",
                    node.path,
                    f"param {name} (config {sources[name]}) was {json.dumps(was)}, "
                    f"config now gives {shown_now}",
                )


def audit(path: str, root: str | Path = ".", config: dict | None = None) -> AuditReport:
    """Verify the lineage of ``path`` (relative to the workdir ``root``, or absolute)."""
    root = Path(root)
    auditor = _Auditor(root, config)
    target = Path(path)
    if target.is_absolute():
        try:
            path = target.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            path = target.as_posix()
    else:
        path = Path(
            os.path.normpath(path)
        ).as_posix()  # sidecars store "results/x", not "./results/x"
    tree = auditor.visit(path)
    if tree.rule is None:
        reason = (
            "file does not exist"
            if not auditor.resolve(path).exists()
            else f"no sidecar {sidecar_path(path)} lists this file as an output"
        )
        auditor.note(tree, "sidecar", path, reason)
    return AuditReport(tree, auditor.findings)


def figures_without_provenance(root: str | Path, folder: str = "results/figures") -> list[str]:
    """Files in ``folder`` that no sidecar lists as an output (the contract wants none)."""
    root = Path(root)
    missing = []
    for file in sorted(p for p in (root / folder).rglob("*") if p.is_file()):
        if file.name.endswith(SIDECAR_SUFFIX):
            continue
        relative = file.relative_to(root).as_posix()
        sidecar = sidecar_path(file)
        listed = sidecar.is_file() and relative in {
            o["path"] for o in read_sidecar(sidecar).get("outputs", [])
        }
        if not listed:
            missing.append(relative)
    return missing


def audit_all_figures(
    root: str | Path = ".", config: dict | None = None, folder: str = "results/figures"
) -> tuple[list[str], list[AuditReport]]:
    """Audit every figure in ``folder``; returns the files lacking a sidecar and the reports."""
    root = Path(root)
    missing = figures_without_provenance(root, folder)
    reports = [
        audit(p.relative_to(root).as_posix(), root, config)
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
        and not p.name.endswith(SIDECAR_SUFFIX)
        and p.relative_to(root).as_posix() not in missing
    ]
    return missing, reports


def load_config(path: str | Path) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m radiogenomics.core.audit",
        description="Verify a figure's or table's lineage through its provenance sidecars.",
    )
    parser.add_argument("path", nargs="?", help="figure or table to audit (relative to --root)")
    parser.add_argument(
        "--all-figures",
        action="store_true",
        help="audit every file in results/figures and check each has a sidecar",
    )
    parser.add_argument("--root", default=".", help="Snakemake workdir (default: .)")
    parser.add_argument("--config", help="current config (YAML/JSON) to check params against")
    args = parser.parse_args(argv)
    config = load_config(args.config) if args.config else None
    if args.all_figures:
        missing, reports = audit_all_figures(args.root, config)
        for report in reports:
            print(report.render() + "\n")
        for path in missing:
            print(f"NO PROVENANCE: {path} has no sidecar listing it")
        failed = len(missing) + sum(not r.ok for r in reports)
        print(f"{len(reports)} figure(s) audited, {failed} problem(s)")
        return 0 if failed == 0 else 1
    if args.path is None:
        parser.error("give a PATH or --all-figures")
    report = audit(args.path, root=args.root, config=config)
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
