from pathlib import Path

from radiogenomics.core.io import read_tsv
from radiogenomics.cohort.public.http import DownloadResult
from radiogenomics.cohort.public.manifest import MANIFEST_COLUMNS, DownloadJournal


def result(tmp_path, name, sha, date):
    path = tmp_path / "raw" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return DownloadResult(f"http://x/{name}", path, 10, "m" * 32, sha, date, True, 1)


def fields(name):
    return {"source": "GDC", "api_version": "v0", "item_id": name, "kind": "star_counts"}


def test_each_record_is_on_disk_at_once_and_dates_of_unchanged_content_are_kept(tmp_path):
    path = tmp_path / "downloads.tsv"
    journal = DownloadJournal(path, tmp_path)
    journal.record(result(tmp_path, "f2", "a" * 64, "2026-01-01T00:00:00+00:00"), **fields("f2"))
    # A run killed now has lost nothing: the row is already in the file.
    assert read_tsv(path, dtype=str)["local_path"].tolist() == ["raw/f2"]
    journal.record(result(tmp_path, "f1", "a" * 64, "2026-01-01T00:00:00+00:00"), **fields("f1"))

    rerun = DownloadJournal(path, tmp_path)  # a later run, as after a kill
    rerun.record(result(tmp_path, "f1", "a" * 64, "2026-02-02T00:00:00+00:00"), **fields("f1"))
    rerun.record(result(tmp_path, "f2", "b" * 64, "2026-02-02T00:00:00+00:00"), **fields("f2"))
    assert len(path.read_text().splitlines()) == 1 + 3  # f1 unchanged: nothing appended
    table = rerun.write()
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

    before = path.read_bytes()
    again = DownloadJournal(path, tmp_path)
    again.record(result(tmp_path, "f1", "a" * 64, "2026-03-03T00:00:00+00:00"), **fields("f1"))
    again.write()
    assert path.read_bytes() == before  # an identical rerun gives an identical file


def test_a_torn_last_line_is_dropped_and_rows_of_vanished_files_are_not_written(tmp_path):
    path = tmp_path / "downloads.tsv"
    journal = DownloadJournal(path, tmp_path)
    journal.record(result(tmp_path, "f1", "a" * 64, "2026-01-01T00:00:00+00:00"), **fields("f1"))
    journal.record(result(tmp_path, "f2", "c" * 64, "2026-01-01T00:00:00+00:00"), **fields("f2"))
    with open(path, "a") as handle:
        handle.write("GDC\tv0\tf3\tstar_counts\thttp://x/f3\traw/f3\t1")  # killed mid-line
    later = DownloadJournal(path, tmp_path)
    assert sorted(later.rows) == ["raw/f1", "raw/f2"]
    later.record(result(tmp_path, "f3", "d" * 64, "2026-01-02T00:00:00+00:00"), **fields("f3"))
    assert sorted(DownloadJournal(path, tmp_path).rows) == ["raw/f1", "raw/f2", "raw/f3"]
    (tmp_path / "raw" / "f2").unlink()
    assert later.write()["local_path"].tolist() == ["raw/f1", "raw/f3"]
