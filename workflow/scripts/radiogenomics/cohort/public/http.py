"""Streamed, resumable, checksum-verified downloads with retries and exponential backoff.

A download goes to ``.<name>.part`` beside the target. Interrupted transfers keep the part
file and the next attempt (or the next run) resumes it with an HTTP ``Range`` request; a
server that ignores ``Range`` (answers 200) restarts it from byte zero. Only a body whose
length and checksum verify is moved (``os.replace``) to the final path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import requests

LOG = logging.getLogger(__name__)

# HTTP statuses worth retrying: server trouble and rate limiting; other 4xx are caller errors.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class DownloadError(RuntimeError):
    """A download that failed after all attempts (or with a non-retryable status)."""


class ChecksumMismatch(DownloadError):
    pass


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Tests use tiny delays; defaults suit the public APIs."""

    attempts: int = 5
    backoff_s: float = 2.0
    backoff_factor: float = 2.0
    max_backoff_s: float = 60.0
    connect_timeout_s: float = 30.0
    read_timeout_s: float = 300.0
    chunk_bytes: int = 1 << 20

    @classmethod
    def from_config(cls, cfg: dict | None) -> RetryPolicy:
        return cls(**(cfg or {}))

    def delay(self, failed_attempt: int) -> float:
        """Delay after attempt number ``failed_attempt`` (1-based): b, b*f, b*f^2, ... capped."""
        return min(self.max_backoff_s, self.backoff_s * self.backoff_factor ** (failed_attempt - 1))

    def wait_after(self, failed_attempt: int, retry_after: float | None = None) -> float:
        """The backoff, or longer when the server asked for it (Retry-After), capped."""
        wait = self.delay(failed_attempt)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_backoff_s))
        return wait

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout_s, self.read_timeout_s)


@dataclass
class DownloadResult:
    url: str
    path: Path
    size_bytes: int
    md5: str
    sha256: str
    downloaded_at: str
    fetched: bool  # False when an existing verified file was kept
    attempts: int


def file_digests(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> tuple[str, str]:
    """(md5, sha256) hex digests of a file."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            md5.update(chunk)
            sha256.update(chunk)
    return md5.hexdigest(), sha256.hexdigest()


def part_path(dest: str | os.PathLike) -> Path:
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.part")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110).

    None when absent or unreadable; a date in the past gives 0.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def request_with_retries(
    session: requests.Session,
    method: str,
    url: str,
    policy: RetryPolicy,
    **kwargs,
):
    """A small API query, retried like a download; returns its parsed JSON (None if empty).

    A body that does not parse is retried too: without Content-Length a cut-off answer only
    shows as broken JSON.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            response = session.request(method, url, timeout=policy.timeout, **kwargs)
            if response.status_code in RETRY_STATUSES:
                raise _RetryableStatus(response)
            if response.status_code >= 400:
                raise DownloadError(
                    f"{url}: HTTP {response.status_code} {response.reason}: {response.text[:200]}"
                )
            return response.json() if response.content.strip() else None
        except (
            _RetryableStatus,
            ValueError,
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as error:
            _give_up_or_wait(url, attempt, policy, error)
    raise AssertionError("unreachable")


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    session: requests.Session | None = None,
    policy: RetryPolicy = RetryPolicy(),
    method: str = "GET",
    json_body: dict | None = None,
    params: dict | None = None,
    expected_md5: str | None = None,
    expected_size: int | None = None,
    resume: bool = True,
) -> DownloadResult:
    """Fetch ``url`` to ``dest``; skip when ``dest`` exists and verifies.

    With no published checksum, an existing ``dest`` is trusted (it can only have got there
    through this function's atomic move). ``resume=False`` for requests whose body is not
    addressable by byte ranges (POST bundles).
    """
    dest = Path(dest)
    session = session or requests.Session()
    if dest.exists() and _verifies(dest, expected_md5, expected_size, policy.chunk_bytes):
        md5, sha256 = file_digests(dest, policy.chunk_bytes)
        return DownloadResult(
            url, dest, dest.stat().st_size, md5, sha256, download_time(dest), False, 0
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    if not resume:
        part.unlink(missing_ok=True)
    for attempt in range(1, policy.attempts + 1):
        try:
            _stream_to_part(session, method, url, part, policy, json_body, params, resume)
            size = part.stat().st_size
            if expected_size is not None and size != int(expected_size):
                part.unlink()
                raise ChecksumMismatch(f"{url}: size {size} != expected {expected_size}")
            md5, sha256 = file_digests(part, policy.chunk_bytes)
            if expected_md5 is not None and md5 != expected_md5.lower():
                part.unlink()
                raise ChecksumMismatch(f"{url}: md5 {md5} != expected {expected_md5}")
            os.replace(part, dest)
            stamp_download_time(dest)
            return DownloadResult(url, dest, size, md5, sha256, download_time(dest), True, attempt)
        except (
            _RetryableStatus,
            _ShortBody,
            ChecksumMismatch,
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as error:
            if not resume:
                part.unlink(missing_ok=True)  # a body that cannot be resumed is worthless
            _give_up_or_wait(url, attempt, policy, error)
    raise AssertionError("unreachable")


class _RetryableStatus(Exception):
    def __init__(self, response: requests.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.status = response.status_code
        self.retry_after = parse_retry_after(response.headers.get("Retry-After"))


class _ShortBody(Exception):
    pass


def _give_up_or_wait(url: str, attempt: int, policy: RetryPolicy, error: Exception) -> None:
    if attempt >= policy.attempts:
        raise DownloadError(
            f"{url}: failed after {attempt} attempt(s): {error}. Partial data (if any) is kept "
            "beside the target as a .part file and is resumed on the next run."
        ) from error
    wait = policy.wait_after(attempt, getattr(error, "retry_after", None))
    LOG.warning("%s: attempt %d failed (%s); retrying in %.3g s", url, attempt, error, wait)
    time.sleep(wait)


def _stream_to_part(session, method, url, part: Path, policy, json_body, params, resume) -> None:
    offset = part.stat().st_size if (resume and part.exists()) else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with session.request(
        method,
        url,
        json=json_body,
        params=params,
        headers=headers,
        stream=True,
        timeout=policy.timeout,
    ) as response:
        if response.status_code == 416 and offset:
            # The part already holds the whole body (or is stale): verification decides.
            return
        if response.status_code in RETRY_STATUSES:
            raise _RetryableStatus(response)
        if response.status_code >= 400:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")
        appending = offset and response.status_code == 206
        expected = response.headers.get("Content-Length")
        received = 0
        with open(part, "ab" if appending else "wb") as handle:
            for chunk in response.iter_content(chunk_size=policy.chunk_bytes):
                handle.write(chunk)
                received += len(chunk)
        # urllib3 normally raises on a short body; check again so no transport setting can hide it.
        if expected is not None and received != int(expected):
            raise _ShortBody(f"received {received} of {expected} bytes")


def _verifies(path: Path, expected_md5, expected_size, chunk_bytes) -> bool:
    if expected_size is not None and path.stat().st_size != int(expected_size):
        return False
    if expected_md5 is not None:
        return file_digests(path, chunk_bytes)[0] == expected_md5.lower()
    return True


def stamp_download_time(path: str | os.PathLike) -> None:
    """Set a download's mtime to now, in whole seconds: the date its records carry.

    A file or folder kept on a rerun is then recorded with the same date as when it arrived,
    even when downloads.tsv was lost (Snakemake removes the outputs of a failed job).
    """
    now = int(time.time())
    os.utime(path, (now, now))


def download_time(path: str | os.PathLike) -> str:
    """The download date of a file or folder at its final path (its mtime, UTC, ISO 8601)."""
    return (
        datetime.fromtimestamp(int(Path(path).stat().st_mtime), timezone.utc)
        .replace(microsecond=0)
        .isoformat()
    )
