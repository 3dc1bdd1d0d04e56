import hashlib
import io
import tarfile
import zipfile

import pytest
import requests
from fake_servers import FakeServer, FakeState, fake_cohort, fast_policy  # noqa: F401

from radiogenomics.cohort.public.archive import UnsafeArchive, safe_extract_tar, safe_extract_zip
from radiogenomics.cohort.public.http import (
    DownloadError,
    RetryPolicy,
    download,
    file_digests,
    part_path,
)


def gdc_file(state):
    f = state.gdc_files[0]
    return f, hashlib.md5(f.content).hexdigest()


def test_backoff_delays_match_hand_calculation():
    policy = RetryPolicy(backoff_s=0.5, backoff_factor=3.0, max_backoff_s=10.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 4.5, 10.0]


def test_file_digests_match_hashlib(tmp_path):
    blob = bytes(range(256)) * 50
    path = tmp_path / "x.bin"
    path.write_bytes(blob)
    assert file_digests(path, chunk_bytes=1000) == (
        hashlib.md5(blob).hexdigest(),
        hashlib.sha256(blob).hexdigest(),
    )


def test_download_recovers_from_500_timeout_and_truncation(fake_cohort, tmp_path):
    server, state = fake_cohort
    f, md5 = gdc_file(state)
    state.inject("gdc_data", "500", "timeout", "truncate")
    dest = tmp_path / "out" / f.file_name
    result = download(
        f"{server.url}/gdc/data/{f.file_id}",
        dest,
        policy=fast_policy(5),
        expected_md5=md5,
        expected_size=len(f.content),
    )
    assert dest.read_bytes() == f.content
    assert result.attempts == 4 and result.fetched and result.md5 == md5
    assert not part_path(dest).exists()
    # The attempt after the truncated body resumed from the bytes already on disk.
    ranges = [r[3] for r in state.requests if r[0] == "gdc_data"]
    resumed_at = int(ranges[-1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(f.content) // 2


def test_wrong_checksum_is_retried_and_never_lands(fake_cohort, tmp_path):
    server, state = fake_cohort
    f, md5 = gdc_file(state)
    dest = tmp_path / f.file_name
    state.inject("gdc_data", "bad_md5", "bad_md5")
    with pytest.raises(DownloadError, match="md5"):
        download(
            f"{server.url}/gdc/data/{f.file_id}", dest, policy=fast_policy(2), expected_md5=md5
        )
    assert not dest.exists() and not part_path(dest).exists()
    state.inject("gdc_data", "bad_md5")
    download(f"{server.url}/gdc/data/{f.file_id}", dest, policy=fast_policy(2), expected_md5=md5)
    assert dest.read_bytes() == f.content


def test_interrupted_download_leaves_only_a_part_file_and_rerun_completes(fake_cohort, tmp_path):
    server, state = fake_cohort
    f, md5 = gdc_file(state)
    dest = tmp_path / f.file_name
    state.inject("gdc_data", "truncate")
    with pytest.raises(DownloadError):
        download(
            f"{server.url}/gdc/data/{f.file_id}", dest, policy=fast_policy(1), expected_md5=md5
        )
    assert not dest.exists()
    kept = part_path(dest).stat().st_size
    assert 0 < kept <= len(f.content) // 2
    result = download(
        f"{server.url}/gdc/data/{f.file_id}", dest, policy=fast_policy(1), expected_md5=md5
    )
    assert dest.read_bytes() == f.content and result.md5 == md5
    assert state.requests[-1][3] == f"bytes={kept}-"


def test_complete_file_is_skipped_without_a_request(fake_cohort, tmp_path):
    server, state = fake_cohort
    f, md5 = gdc_file(state)
    dest = tmp_path / f.file_name
    download(f"{server.url}/gdc/data/{f.file_id}", dest, policy=fast_policy(), expected_md5=md5)
    before = len(state.requests)
    again = download(
        f"{server.url}/gdc/data/{f.file_id}", dest, policy=fast_policy(), expected_md5=md5
    )
    assert len(state.requests) == before and not again.fetched and again.md5 == md5


def test_client_errors_are_not_retried(fake_cohort, tmp_path):
    server, state = fake_cohort
    with pytest.raises(DownloadError, match="404"):
        download(f"{server.url}/gdc/data/nope", tmp_path / "x", policy=fast_policy(3))
    assert not (tmp_path / "x").exists()


def test_unreachable_server_fails_after_bounded_attempts(tmp_path):
    state = FakeState()
    with FakeServer(state) as server:
        url = server.url
    with pytest.raises(DownloadError, match="2 attempt"):
        download(
            f"{url}/gdc/data/x", tmp_path / "x", policy=fast_policy(2), session=requests.Session()
        )


def _zip_with(name, data=b"x", mode=None):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("ok.dcm", b"fine")
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        bundle.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name,mode,reason",
    [
        ("../evil.dcm", None, "contains '..'"),
        ("a/../../evil.dcm", None, "contains '..'"),
        ("/etc/evil", None, "absolute path"),
        ("C:\\evil", None, "absolute path"),
        ("link.dcm", 0o120777, "symbolic link"),
    ],
)
def test_zip_slip_is_refused_before_anything_is_written(tmp_path, name, mode, reason):
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip_with(name, mode=mode))
    target = tmp_path / "target"
    with pytest.raises(UnsafeArchive, match=reason) as error:
        safe_extract_zip(archive, target)
    assert "zip-slip" in str(error.value) and repr(name) in str(error.value)
    assert not target.exists() and not (tmp_path / "evil.dcm").exists()


def test_tar_links_and_dotdot_are_refused(tmp_path):
    for build in ("symlink", "dotdot"):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
            info = tarfile.TarInfo("id/evil" if build == "symlink" else "../evil")
            if build == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                bundle.addfile(info)
            else:
                info.size = 1
                bundle.addfile(info, io.BytesIO(b"x"))
        archive = tmp_path / f"{build}.tar.gz"
        archive.write_bytes(buffer.getvalue())
        with pytest.raises(UnsafeArchive):
            safe_extract_tar(archive, tmp_path / build)
        assert not (tmp_path / build).exists()
