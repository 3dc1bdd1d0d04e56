"""The downloads manifest: one row per fetched file or series, joined by the provenance stage."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from radiogenomics.io import read_tsv, write_tsv
from radiogenomics.public.http import DownloadResult

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


def update_manifest(path: str | os.PathLike, records: list[dict]) -> pd.DataFrame:
    """Merge ``records`` into the manifest at ``path`` (keyed by local_path) and rewrite it.

    A file kept from an earlier run keeps its original download date when the checksum is
    unchanged, so reruns do not churn the provenance.
    """
    path = Path(path)
    old = read_tsv(path, dtype=str) if path.exists() else pd.DataFrame(columns=MANIFEST_COLUMNS)
    new = pd.DataFrame(records, columns=MANIFEST_COLUMNS).astype({"size_bytes": "Int64"})
    if len(old) and len(new):
        previous = old.set_index("local_path")
        for index, row in new.iterrows():
            if row["local_path"] in previous.index:
                before = previous.loc[row["local_path"]]
                if before["sha256"] == row["sha256"]:
                    new.at[index, "downloaded_at"] = before["downloaded_at"]
    kept = old[~old["local_path"].isin(new["local_path"])]
    table = pd.concat([kept.astype({"size_bytes": "Int64"}), new], ignore_index=True)
    table = table[MANIFEST_COLUMNS].sort_values("local_path", ignore_index=True)
    write_tsv(table, path)
    return table
