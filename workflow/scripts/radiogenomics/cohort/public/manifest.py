"""The downloads manifest: one row per fetched file or series, joined by the provenance stage."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from radiogenomics.core.io import write_tsv
from radiogenomics.cohort.public.http import DownloadResult

MANIFEST_COLUMNS = [
    "source",
    "api_version",
    "item_id",
    "kind",
    "source_url",
    "local_path",
    "size_bytes",
    "md5",
    "sha256",
    "downloaded_at",
]


def manifest_record(
    result: DownloadResult,
    *,
    source: str,
    api_version: str,
    item_id: str,
    kind: str,
    local_path: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
) -> dict:
    """A manifest row; ``local_path`` defaults to the result path, relative to ``root``."""
    path = Path(local_path if local_path is not None else result.path)
    if root is not None:
        path = Path(os.path.relpath(path, root))
    return {
        "source": source,
        "api_version": api_version,
        "item_id": item_id,
        "kind": kind,
        "source_url": result.url,
        "local_path": path.as_posix(),
        "size_bytes": result.size_bytes,
        "md5": result.md5,
        "sha256": result.sha256,
        "downloaded_at": result.downloaded_at,
    }


class DownloadJournal:
    """``downloads.tsv`` kept current while the acquisition runs.

    Each completed (or kept) download is appended at once, as one ``write`` to a file opened
    for appending, so a killed or failed run keeps the rows of everything it fetched. A row for
    content already recorded keeps its first download date, so identical content gives an
    identical row. ``write`` rewrites the table (atomically) sorted by local path, one row per
    path that exists, so identical reruns give an identical file.
    """

    def __init__(self, path: str | os.PathLike, root: str | os.PathLike = "."):
        self.path, self.root = Path(path), Path(root)
        self.rows = {row["local_path"]: row for row in _read_rows(self.path)}

    def record(self, result: DownloadResult, **fields) -> dict:
        """Add the row for ``result`` (fields as for ``manifest_record``, without ``root``)."""
        row = {k: str(v) for k, v in manifest_record(result, root=self.root, **fields).items()}
        before = self.rows.get(row["local_path"])
        if before is not None and before["sha256"] == row["sha256"]:
            row["downloaded_at"] = before["downloaded_at"]
        if row != before:
            self._append(row)
            self.rows[row["local_path"]] = row
        return row

    def write(self) -> pd.DataFrame:
        present = [r for p, r in sorted(self.rows.items()) if (self.root / p).exists()]
        table = pd.DataFrame(present, columns=MANIFEST_COLUMNS)
        write_tsv(table, self.path)
        return table

    def _append(self, row: dict) -> None:
        line = "\t".join(row[c] for c in MANIFEST_COLUMNS) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                line = "\t".join(MANIFEST_COLUMNS) + "\n" + line
            elif not _ends_with_newline(self.path, size):
                line = "\n" + line  # a torn last line (a kill mid-write) stays on its own line
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def _ends_with_newline(path: Path, size: int) -> bool:
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        return handle.read(1) == b"\n"


def _read_rows(path: Path) -> list[dict]:
    """Complete rows of a downloads table; later rows for one path win, torn lines are dropped."""
    if not path.exists():
        return []
    lines = path.read_text().split("\n")
    if not lines or lines[0].split("\t") != MANIFEST_COLUMNS:
        return []
    rows = []
    for line in lines[1:-1]:  # the last piece has no newline: empty, or torn
        values = line.split("\t")
        if len(values) == len(MANIFEST_COLUMNS) and all(values):
            rows.append(dict(zip(MANIFEST_COLUMNS, values, strict=True)))
    return rows
