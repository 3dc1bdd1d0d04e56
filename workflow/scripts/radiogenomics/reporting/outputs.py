"""The outputs the workflow declares for its reports, shared by the study report and
``snakemake --report``.

Rule ``study_report`` receives, as a parameter, every output a rule wraps in ``report(...)``
(``report_outputs()`` in ``workflow/rules/common.smk``, read from ``workflow.rules`` at DAG
time): its pattern, Snakemake's regex of it, caption file, category, subcategory and labels.
This module finds the files of a finished run that match those declarations and renders their
captions as Snakemake does: the caption file (RST) is a Jinja template rendered with
``snakemake.config`` and ``snakemake.wildcards``, then turned into HTML by docutils.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace


@dataclass(frozen=True)
class Declared:
    """One output wrapped in ``report(...)`` by a rule."""

    rule: str
    pattern: str
    regex: str
    caption: str | None = None  # relative to workflow/report
    category: str | None = None
    subcategory: str | None = None
    labels: Mapping = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Mapping) -> Declared:
        return cls(
            rule=record["rule"],
            pattern=record["pattern"],
            regex=record["regex"],
            caption=record.get("caption"),
            category=record.get("category"),
            subcategory=record.get("subcategory"),
            labels=dict(record.get("labels") or {}),
        )

    @property
    def folder(self) -> str:
        """The pattern's folder before its first wildcard (where its files can be)."""
        head = self.pattern.split("{", 1)[0]
        return head.rsplit("/", 1)[0] if "/" in head else "."


@dataclass(frozen=True)
class ReportFile:
    """A file of the run matched to its declaration, with the wildcards of the match."""

    path: Path  # relative to the workdir
    declared: Declared
    wildcards: Mapping

    def category(self) -> str:
        return _format(self.declared.category, self.wildcards) or "Other"

    def subcategory(self) -> str | None:
        return _format(self.declared.subcategory, self.wildcards)


def _format(template: str | None, wildcards: Mapping) -> str | None:
    """A category or subcategory, its ``{wildcard}`` replaced as in Snakemake's report."""
    if template is None:
        return None
    return template.format(**wildcards)


def declared_outputs(records: Iterable[Mapping]) -> list[Declared]:
    return [Declared.from_record(r) for r in records]


def match(path: str | Path, declared: Sequence[Declared]) -> ReportFile | None:
    """The first declaration whose regex matches ``path`` (relative, POSIX), or None."""
    text = Path(path).as_posix()
    for entry in declared:
        found = re.match(entry.regex, text)
        if found:
            return ReportFile(Path(text), entry, found.groupdict())
    return None


def find_report_files(
    root: str | Path,
    declared: Sequence[Declared],
    skip_rules: Iterable[str] = (),
) -> list[ReportFile]:
    """Files under ``root`` that match a declaration, in declaration order (then by name).

    Only the declarations' folders are listed (``results/figures``, not the whole run);
    ``skip_rules``: rules whose outputs the caller makes itself (the study report's own).
    """
    root = Path(root)
    skip = set(skip_rules)
    wanted = [d for d in declared if d.rule not in skip]
    listed: dict[str, list[str]] = {}
    for entry in wanted:
        if entry.folder not in listed:
            folder = root / entry.folder
            listed[entry.folder] = sorted(
                p.relative_to(root).as_posix()
                for p in (folder.rglob("*") if folder.is_dir() else [])
                if p.is_file()
            )
    found: dict[str, ReportFile] = {}
    for entry in wanted:
        for path in listed[entry.folder]:
            if path not in found and re.match(entry.regex, path):
                hit = match(path, wanted)  # the first declaration wins, as in match()
                found[path] = hit
    order = {id(d): i for i, d in enumerate(wanted)}
    return sorted(found.values(), key=lambda f: (order[id(f.declared)], f.path.as_posix()))


def render_caption(
    caption: str | None,
    captions_dir: str | Path | None,
    config: Mapping,
    wildcards: Mapping | None = None,
    rule: str = "",
) -> str:
    """HTML of a caption file as ``snakemake --report`` shows it (Jinja, then docutils)."""
    if caption is None or captions_dir is None:
        return ""
    path = Path(captions_dir) / caption
    if not path.is_file():
        return ""
    from docutils.core import publish_parts
    from jinja2 import Environment

    snakemake = SimpleNamespace(
        config=config,
        wildcards=SimpleNamespace(**dict(wildcards or {})),
        rule=rule,
        params=SimpleNamespace(),
    )
    text = (
        Environment(trim_blocks=True, lstrip_blocks=True)
        .from_string(path.read_text())
        .render(snakemake=snakemake, categories={}, files={})
    )
    overrides = {"report_level": 5, "halt_level": 5, "warning_stream": False}
    return publish_parts(text, writer="html", settings_overrides=overrides)["body"].strip()
