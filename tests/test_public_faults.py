"""Acquisition under faults: after each, a clean rerun in the same folder gives the files of a
run that never saw one, and a rerun of a complete acquisition makes no download request.

Requests are counted, and timed, on the (fake) server side.
"""

import hashlib
import io
import re
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from fake_servers import FakeServer, fast_policy, make_probe_cohort
from test_public_cohort import PATIENTS, cohort_config

from radiogenomics.core.io import read_tsv
from radiogenomics.cohort.public.acquire import fetch_public_cohort
from radiogenomics.cohort.public.http import DownloadError, RetryPolicy, download, parse_retry_after
from radiogenomics.cohort.public.tcia import TciaClient

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def probe_cohort(tmp_path):
    """(server, state): the three-patient fake, the first patient's venous phase known only
    from its DICOM header (so every run goes through the probe folder)."""
    state = make_probe_cohort(tmp_path / "fake")
    with FakeServer(state) as server:
        yield server, state


def acquire(server, folder, attempts=3, **gdc_extra):
    config = cohort_config(server, attempts=attempts, **gdc_extra)
    return fetch_public_cohort(config, folder / "results" / "raw", workdir=folder)


def snapshot(folder, with_dates=True) -> dict:
    """Every file at a final path, as bytes; downloads.tsv without its dates if asked."""
    raw = folder / "results" / "raw"
    files = {
        p.relative_to(raw).as_posix(): p.read_bytes()
        for p in sorted(raw.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(raw).parts)
    }
    if not with_dates:
        table = read_tsv(io.BytesIO(files["downloads.tsv"]), dtype=str)
        files["downloads.tsv"] = table.drop(columns="downloaded_at").to_csv(sep="\t").encode()
    return files


def hidden(folder) -> list:
    return sorted(p.name for p in (folder / "results" / "raw").rglob(".*"))


def downloads_on_disk(folder) -> set:
    """Series folders and GDC files at their final paths, relative to the work folder."""
    raw = folder / "results" / "raw"
    found = [*raw.glob("dicom/*/*"), *raw.glob("tcia/probe/*"), *raw.glob("gdc/files/*/*")]
    return {p.relative_to(folder).as_posix() for p in found if not p.name.startswith(".")}


FAULTS = {
    # name: (faults per route, attempts, gdc page size, what the faulted run must show)
    "slice of another series": (
        {"tcia_image": ["foreign_series"] * 2},
        2,
        2,
        ("excluded", "belongs to SeriesInstanceUID '1.2.826.0.1.3680043.9.9999'"),
    ),
    "slice of another patient, retried": ({"tcia_image": ["foreign_patient"]}, 2, 2, ("ok",)),
    "cut-off series ZIP": ({"tcia_image": [None, "truncate"]}, 1, 2, ("excluded", "CT download")),
    "429 with Retry-After": ({"tcia_series": ["429:0"], "gdc_data": ["503:0"]}, 2, 2, ("ok",)),
    "overlapping GDC pages": ({"gdc_cases": [None, "overlap"]}, 3, 2, ("ok",)),
    "GDC page lost to an overlap, relisted": ({"gdc_files": [None, "overlap"]}, 3, 1, ("ok",)),
    "GDC pages that never add up": (
        {"gdc_cases": ["overlap"] * 9},  # three listings of three one-hit pages
        3,
        1,
        ("error", "/gdc/cases: pagination.total is 3 but 2 distinct case_id values"),
    ),
    "GDC page without pagination": (
        {"gdc_cases": ["no_pagination"] * 2},
        2,
        2,
        (
            "error",
            re.escape("/gdc/cases (from=0): the answer has no data.hits and data.pagination"),
        ),
    ),
    "GDC file lost after every retry": (
        {"gdc_bundle": ["500"] * 2, "gdc_data": ["truncate"] * 2},
        2,
        2,
        ("excluded", "GDC star_counts file aaaa0000-0000-4000-8000-000000000000 unusable"),
    ),
    "GDC bundle with a flipped byte": ({"gdc_bundle": ["bad_md5"]}, 2, 2, ("ok",)),
}


@pytest.mark.parametrize("name", FAULTS)
def test_after_a_fault_a_clean_rerun_gives_the_files_of_a_run_that_saw_none(
    probe_cohort, tmp_path, name
):
    server, state = probe_cohort
    faults, attempts, page_size, expected = FAULTS[name]
    acquire(server, tmp_path / "clean")
    reference = snapshot(tmp_path / "clean", with_dates=False)

    folder = tmp_path / "faulted"
    for route, queue in faults.items():
        state.inject(route, *queue)
    if expected[0] == "error":
        with pytest.raises(DownloadError, match=expected[1]):
            acquire(server, folder, attempts=attempts, page_size=page_size)
    else:
        summary = acquire(server, folder, attempts=attempts, page_size=page_size)
        reasons = summary["exclusions"]["reason"].tolist()
        if expected[0] == "ok":
            assert summary["patients"] == PATIENTS and reasons == []
        else:
            assert len(reasons) == 1 and expected[1] in reasons[0], reasons
    assert all(not queue for queue in state.faults.values())  # every fault was served
    # What the faulted run fetched is in downloads.tsv, failed run or not.
    recorded = read_tsv(folder / "results" / "raw" / "downloads.tsv", dtype=str)
    assert set(recorded["local_path"]) == downloads_on_disk(folder)

    acquire(server, folder)
    assert snapshot(folder, with_dates=False) == reference
    assert hidden(folder) == []
    complete = snapshot(folder)
    before = state.downloads()
    again = acquire(server, folder)
    assert state.downloads() == before and again["downloads"] == 0
    assert snapshot(folder) == complete  # dates included


def test_rerun_of_a_complete_acquisition_downloads_nothing_and_changes_nothing(
    probe_cohort, tmp_path
):
    server, state = probe_cohort
    first = acquire(server, tmp_path)
    series = read_tsv(tmp_path / "results/raw/tcia/series.tsv", dtype=str, keep_default_na=False)
    probed = series[series["SeriesDescription"].str.startswith("5MM AXIAL")]
    assert probed.set_index("SeriesDescription")[["phase", "chosen_for"]].to_dict("index") == {
        "5MM AXIAL": {"phase": "venous", "chosen_for": "venous"},
        "5MM AXIAL B": {"phase": "non_contrast", "chosen_for": ""},
    }
    assert first["downloads"] == 7 + 6  # seven series (one probe stays a probe), six files
    # Three files of a kind come as one two-file bundle and one single file.
    assert state.downloads() == 7 + 2 * 2
    complete = snapshot(tmp_path)
    second = acquire(server, tmp_path)
    assert state.downloads() == 7 + 2 * 2 and second["downloads"] == 0
    assert snapshot(tmp_path) == complete
    # Snakemake deletes the outputs of a failed job, downloads.tsv among them: the rows come
    # back, identical, from the files on disk.
    (tmp_path / "results/raw/downloads.tsv").unlink()
    acquire(server, tmp_path)
    assert state.downloads() == 7 + 2 * 2 and snapshot(tmp_path) == complete


def test_a_kept_folder_holding_a_foreign_slice_is_fetched_again(probe_cohort, tmp_path):
    server, state = probe_cohort
    acquire(server, tmp_path / "clean")
    reference = snapshot(tmp_path / "clean", with_dates=False)
    folder = tmp_path / "older"
    acquire(server, folder)
    # As an older version accepted it: one slice of another series, its MD5 listed to match.
    venous = folder / "results/raw/dicom" / PATIENTS[1] / "venous"
    other = folder / "results/raw/dicom" / PATIENTS[2] / "venous"
    first = sorted(venous.glob("*.dcm"))[0]
    first.write_bytes((other / first.name).read_bytes())
    table = pd.read_csv(venous / "md5hashes.csv")
    table.loc[table["Filename"] == first.name, "MD5Hash"] = hashlib.md5(
        first.read_bytes()
    ).hexdigest()
    table.to_csv(venous / "md5hashes.csv", index=False, lineterminator="\n")
    before = state.count("tcia_image")
    acquire(server, folder)
    assert state.count("tcia_image") == before + 1
    assert snapshot(folder, with_dates=False) == reference


def test_a_slice_missing_mid_series_excludes_the_patient_naming_the_series(probe_cohort, tmp_path):
    server, state = probe_cohort
    gappy = next(
        s for s in state.series if s.patient_id == PATIENTS[1] and "VENOUS" in s.description
    )
    del gappy.files[sorted(gappy.files)[2]]  # TCIA lists what it has: ImageCount agrees
    summary = acquire(server, tmp_path)
    row = summary["exclusions"].set_index("patient_id").loc[PATIENTS[1]]
    assert row["reason"] == (
        f"CT series {gappy.series_uid}: slice gap of 5.000 mm between slices at -399.500 and "
        "-394.500 mm along the slice normal, where the series spacing is 2.500 mm (about 1 "
        "slice(s) missing); 1 irregular gap(s) in 4 slices"
    )
    assert row["file"].endswith(f"dicom/{PATIENTS[1]}/venous") and "override" in row["fix"]
    assert summary["patients"] == [PATIENTS[0], PATIENTS[2]]
    # The series is as TCIA publishes it: a rerun keeps it and excludes again, fetching nothing.
    before, complete = state.downloads(), snapshot(tmp_path)
    acquire(server, tmp_path)
    assert state.downloads() == before and snapshot(tmp_path) == complete


def test_an_unreadable_gdc_file_excludes_its_patient_not_the_run(probe_cohort, tmp_path):
    server, state = probe_cohort
    maf = next(
        f for f in state.gdc_files if f.case_submitter_id == PATIENTS[2] and "maf" in f.file_name
    )
    maf.content = b"not gzip at all"  # GDC's md5sum is of these bytes: it verifies
    summary = acquire(server, tmp_path)
    row = summary["exclusions"].set_index("patient_id").loc[PATIENTS[2]]
    assert row["reason"].startswith(f"GDC masked_maf file {maf.file_id} unusable")
    assert row["file"].endswith(f"gdc/files/{maf.file_id}/{maf.file_name}")
    assert "help desk" in row["fix"] and "cohort.gdc.mutations: false" in row["fix"]
    assert summary["patients"] == PATIENTS[:2]
    raw = tmp_path / "results/raw"
    assert read_tsv(raw / "clinical.tsv")["patient_id"].tolist() == PATIENTS[:2]
    assert read_tsv(raw / "manifest.tsv")["patient_id"].tolist() == PATIENTS[:2]
    assert read_tsv(raw / "expression/samples.tsv")["patient_id"].tolist() == PATIENTS[:2]
    assert set(read_tsv(raw / "mutations.maf")["patient_id"]) == set(PATIENTS[:2])


def test_an_empty_collection_listing_is_an_error_naming_the_url(probe_cohort, tmp_path):
    server, state = probe_cohort
    config = cohort_config(server)
    config["tcia"]["collection"] = "TCGA-KIRK"
    with pytest.raises(DownloadError, match=r"/tcia/getSeries\?Collection=TCGA-KIRK.*no series"):
        fetch_public_cohort(config, tmp_path / "raw", workdir=tmp_path)


def test_retry_after_is_honoured_in_seconds_and_as_a_date(probe_cohort, tmp_path):
    server, state = probe_cohort
    policy = RetryPolicy(attempts=3, backoff_s=0.001, max_backoff_s=5.0, read_timeout_s=5.0)
    state.inject("tcia_series", "429:1")
    TciaClient(f"{server.url}/tcia", policy=policy).get_series("TCGA-KIRC")
    state.inject("gdc_data", "503-date:2")
    f = state.gdc_files[0]
    download(f"{server.url}/gdc/data/{f.file_id}", tmp_path / "f", policy=policy)
    for route in ("tcia_series", "gdc_data"):
        first, second = [r.time for r in state.requests if r.route == route][:2]
        # Without Retry-After the client would come back after 0.001 s. An HTTP date has
        # whole seconds, so "2 s ahead" is between 1 and 2 s ahead.
        assert second - first >= 0.99, route


def test_retry_after_parsing_and_cap():
    now = datetime(2026, 12, 2, 1, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("Wed, 02 Dec 2026 01:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 02 Dec 2026 00:59:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None and parse_retry_after(None) is None
    policy = RetryPolicy(backoff_s=0.5, backoff_factor=2.0, max_backoff_s=60.0)
    assert policy.wait_after(1, 7.0) == 7.0  # longer than the backoff: the server's wait
    assert policy.wait_after(3, 0.0) == 2.0  # shorter: the backoff
    assert policy.wait_after(1, 3600.0) == 60.0  # capped by the policy
    assert fast_policy().wait_after(1, None) == fast_policy().delay(1)


KILLED_RUN = """
import json, sys
sys.path.insert(0, {scripts!r})
from pathlib import Path
from radiogenomics.cohort.public.acquire import fetch_public_cohort
config = json.loads(Path({config!r}).read_text())
fetch_public_cohort(config, Path({folder!r}) / "results" / "raw", workdir={folder!r})
"""


def test_a_run_killed_mid_bundle_leaves_its_rows_and_a_rerun_cleans_its_staging(
    probe_cohort, tmp_path
):
    server, state = probe_cohort
    acquire(server, tmp_path / "clean")
    reference = snapshot(tmp_path / "clean", with_dates=False)
    folder = tmp_path / "killed"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(cohort_config(server, attempts=3)))
    state.inject("gdc_bundle", "stall")
    script = KILLED_RUN.format(
        scripts=str(REPO / "workflow" / "scripts"), config=str(config), folder=str(folder)
    )
    run = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    try:
        assert state.stalled.wait(120), "the run never reached the GDC bundle"
        # the server has sent half the bundle; kill once the client has started writing it
        files = folder / "results/raw/gdc/files"
        deadline = time.monotonic() + 60
        while not any(files.glob("..batch-*.tar.gz.part")) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(run.pid, signal.SIGKILL)
        run.wait(30)
    finally:
        state.release.set()
    left = sorted(p.name for p in files.iterdir())
    assert len(left) == 2 and left[0].startswith("..batch-") and left[0].endswith(".tar.gz.part")
    assert left[1].startswith(".batch-") and (files / left[1]).is_dir()
    rows = read_tsv(folder / "results/raw/downloads.tsv", dtype=str)
    assert rows["kind"].tolist() == ["dicom_series"] * 7  # fetched before the kill, kept

    acquire(server, folder)
    assert hidden(folder) == []
    assert snapshot(folder, with_dates=False) == reference


def test_series_staging_left_by_a_kill_is_removed(probe_cohort, tmp_path):
    server, state = probe_cohort
    series = state.series[1]
    dest = tmp_path / "dicom" / "arterial"
    for leftover in (".arterial.k2j4x", ".arterial.old.8vbq1/arterial"):
        (dest.parent / leftover).mkdir(parents=True)
        (dest.parent / leftover / "00000001.dcm").write_bytes(b"half")
    TciaClient(f"{server.url}/tcia", policy=fast_policy()).download_series(
        series.series_uid, dest, len(series.files), series.patient_id
    )
    assert sorted(p.name for p in dest.parent.iterdir()) == ["arterial"]
