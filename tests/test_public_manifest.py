from pathlib import Path

from radiogenomics.io import read_tsv
from radiogenomics.public.http import DownloadResult
from radiogenomics.public.manifest import MANIFEST_COLUMNS, manifest_record, update_manifest


def result(tmp_path, name, sha, date):
    return DownloadResult(
        f"http://x/{name}", tmp_path / "raw" / name, 10, "m" * 32, sha, date, True, 1
    )


def test_manifest_rows_are_relative_merged_and_keep_dates_of_unchanged_files(tmp_path):
    path = tmp_path / "downloads.tsv"
    first = [
        manifest_record(
            result(tmp_path, n, "a" * 64, "2026-01-01T00:00:00+00:00"),
            source="GDC",
            api_version="v0",
            item_id=n,
            kind="star_counts",
            root=tmp_path,
        )
        for n in ("f1", "f2")
    ]
    update_manifest(path, first)
    rerun = [
        manifest_record(
            result(tmp_path, "f1", "a" * 64, "2026-02-02T00:00:00+00:00"),
            source="GDC",
            api_version="v0",
            item_id="f1",
            kind="star_counts",
            root=tmp_path,
        ),
        manifest_record(
            result(tmp_path, "f2", "b" * 64, "2026-02-02T00:00:00+00:00"),
            source="GDC",
            api_version="v0",
            item_id="f2",
            kind="star_counts",
            root=tmp_path,
        ),
    ]
    table = update_manifest(path, rerun)
    on_disk = read_tsv(path, dtype=str)
    assert on_disk.columns.tolist() == MANIFEST_COLUMNS
    assert on_disk["local_path"].tolist() == ["raw/f1", "raw/f2"]
    # f1 unchanged keeps its first date; f2 changed content and gets the new one.
    assert on_disk["downloaded_at"].tolist() == [
        "2026-01-01T00:00:00+00:00",
        "2026-02-02T00:00:00+00:00",
    ]
    assert table["sha256"].tolist() == ["a" * 64, "b" * 64]
    assert not Path(on_disk["local_path"][0]).is_absolute()
