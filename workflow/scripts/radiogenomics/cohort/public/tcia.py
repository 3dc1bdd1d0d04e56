"""TCIA through the NBIA REST API v4: list CT series, choose one per contrast phase, download.

Public collections (TCGA-KIRC, CPTAC-CCRCC, C4KC-KiTS) need no token. ``getSeries`` answers
JSON, and an empty result is HTTP 200 with an empty body. ``getImageWithMD5Hash`` answers a
ZIP holding the series' DICOM files, ``md5hashes.csv`` (one MD5 per file) and a LICENSE entry.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pydicom
from pydicom.errors import InvalidDicomError
import requests

from radiogenomics.core.cases import BadCase
from radiogenomics.cohort.public.archive import UnsafeArchive, safe_extract_zip
from radiogenomics.imaging.dicom import NonUniformSlices, check_uniform_slice_positions
from radiogenomics.cohort.public.http import (
    DownloadError,
    DownloadResult,
    RetryPolicy,
    download,
    download_time,
    file_digests,
    request_with_retries,
    stamp_download_time,
)

LOG = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://services.cancerimagingarchive.net/nbia-api/services/v4"
API_VERSION = "NBIA REST API v4"
MD5_TABLE = "md5hashes.csv"

# getSeries fields (as NBIA v4 names them) that the selection rules and the manifest use.
SERIES_COLUMNS = [
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "PatientID",
    "Collection",
    "Modality",
    "SeriesDescription",
    "SeriesNumber",
    "BodyPartExamined",
    "ImageCount",
    "SeriesDate",
    "Manufacturer",
    "FileSize",
    "LicenseName",
    "LicenseURI",
]
PHASES = ("non_contrast", "arterial", "venous", "delayed")
NO_AGENT_VALUES = {"", "NONE", "NO", "N", "NIL", "0"}
GEOMETRY_TAGS = ["ImagePositionPatient", "ImageOrientationPatient"]


class SeriesVerificationError(DownloadError):
    """The series disagrees with md5hashes.csv, with ImageCount or with the series asked for."""


@dataclass(frozen=True)
class SeriesRules:
    """How a series is chosen; every pattern is a case-insensitive regular expression.

    Phase patterns are tried in the order of ``phase_patterns``; non-contrast first, so that
    "pre contrast" is not read as a contrast phase. A description that only says "with
    contrast" maps to ``generic_contrast_phase`` (routine abdominal CT is portal-venous).
    """

    modality: str = "CT"
    min_images: int = 20
    exclude_description: tuple = (
        r"scout",
        r"topo",
        r"locali[sz]er",
        r"dose",
        r"screen\s*save",
        r"\bmip\b",
        r"\bmpr\b",
        r"\bcor(onal)?\b",
        r"\bsag(ittal)?\b",
        r"\blung\b",
        r"\bbone\b",
    )
    phase_patterns: dict = field(
        default_factory=lambda: {
            "non_contrast": [
                r"non[\s_-]*con",
                r"\bnc\b",
                r"w/?o\b",
                r"without",
                r"pre[\s_-]*(con|ce)",
                r"\bplain\b",
                r"unenhanced",
                r"non[\s_-]*enhanced",
            ],
            "delayed": [r"delay", r"excret", r"urogra", r"\bcsr\b"],
            "arterial": [r"arter", r"\bart\b", r"cortico[\s_-]*medullary", r"\bcmp\b"],
            "venous": [
                r"venous",
                r"portal",
                r"\bpv\b",
                r"nephrographic",
                r"parenchymal",
                r"\bven\b",
            ],
        }
    )
    generic_contrast_patterns: tuple = (
        r"contrast",
        r"\bw/",
        r"\+\s*c\b",
        r"\bc\s*\+",
        r"\bwith\b",
        r"enhanced",
        r"\bcect\b",
    )
    generic_contrast_phase: str = "venous"

    @classmethod
    def from_config(cls, cfg: dict | None) -> SeriesRules:
        cfg = dict(cfg or {})
        for key in ("exclude_description", "generic_contrast_patterns"):
            if key in cfg:
                cfg[key] = tuple(cfg[key])
        return cls(**cfg)


def classify_phase(
    description: str | None, rules: SeriesRules, contrast_bolus_agent: str | None = None
) -> str:
    """Contrast phase from the series description, then from the DICOM ContrastBolusAgent tag.

    ``contrast_bolus_agent`` is None when the header was not read; an empty or "NONE" agent
    means the series was acquired without contrast. Returns a phase name or "unknown".
    """
    text = (description or "").lower()
    for phase, patterns in rules.phase_patterns.items():
        if any(re.search(p, text) for p in patterns):
            return phase
    if any(re.search(p, text) for p in rules.generic_contrast_patterns):
        return rules.generic_contrast_phase
    if contrast_bolus_agent is not None:
        if contrast_bolus_agent.strip().upper() in NO_AGENT_VALUES:
            return "non_contrast"
        return rules.generic_contrast_phase
    return "unknown"


def contrast_agent_from_header(folder: str | Path) -> str:
    """ContrastBolusAgent (0018,0010) of the first DICOM file in ``folder`` ('' when absent)."""
    first = sorted(Path(folder).glob("*.dcm"))[0]
    header = pydicom.dcmread(first, stop_before_pixels=True)
    return str(header.get("ContrastBolusAgent", "") or "")


def read_overrides(path: str | Path | None) -> pd.DataFrame:
    """Manual choices: TSV ``patient_id, phase, series_uid``; empty uid = phase absent."""
    columns = ["patient_id", "phase", "series_uid"]
    if not path:
        return pd.DataFrame(columns=columns)
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = set(columns) - set(table.columns)
    if missing:
        raise ValueError(f"{path}: series override table lacks columns {sorted(missing)}")
    return table[columns]


def choose_series(
    series: pd.DataFrame, rules: SeriesRules, phases, overrides: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Annotate every listed series with ``phase``, ``eligible`` and ``chosen_for``.

    Per patient and phase the eligible series with most images wins (thinnest slices), ties
    broken by SeriesNumber then UID so the choice is deterministic. Overrides win over rules.
    """
    table = series.copy()
    table["ImageCount"] = pd.to_numeric(table["ImageCount"], errors="coerce").fillna(0).astype(int)
    description = table["SeriesDescription"].fillna("").str.lower()
    excluded = description.apply(lambda d: any(re.search(p, d) for p in rules.exclude_description))
    table["eligible"] = (
        (table["Modality"].str.upper() == rules.modality.upper())
        & (table["ImageCount"] >= rules.min_images)
        & ~excluded
    )
    table["phase"] = table["SeriesDescription"].apply(lambda d: classify_phase(d, rules))
    table["chosen_for"] = ""
    table["SeriesNumberSort"] = pd.to_numeric(table.get("SeriesNumber"), errors="coerce")
    ranked = table[table["eligible"]].sort_values(
        ["PatientID", "ImageCount", "SeriesNumberSort", "SeriesInstanceUID"],
        ascending=[True, False, True, True],
    )
    for phase in phases:
        best = ranked[ranked["phase"] == phase].drop_duplicates("PatientID")
        table.loc[best.index, "chosen_for"] = phase
    if overrides is not None and len(overrides):
        for row in overrides.itertuples(index=False):
            same = (table["PatientID"] == row.patient_id) & (table["chosen_for"] == row.phase)
            table.loc[same, "chosen_for"] = ""
            if row.series_uid:
                hit = table["SeriesInstanceUID"] == row.series_uid
                if not hit.any():
                    raise ValueError(
                        f"override {row.patient_id}/{row.phase}: series "
                        f"{row.series_uid} is not listed by TCIA"
                    )
                table.loc[hit, "chosen_for"] = row.phase
                table.loc[hit, "phase"] = row.phase
    return table.drop(columns="SeriesNumberSort")


class TciaClient:
    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        session: requests.Session | None = None,
        policy: RetryPolicy = RetryPolicy(),
    ):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.policy = policy

    def get_series(self, collection: str, patient_id: str | None = None) -> pd.DataFrame:
        params = {"Collection": collection, "format": "json"}
        if patient_id:
            params["PatientID"] = patient_id
        url = f"{self.base_url}/getSeries"
        rows = request_with_retries(self.session, "GET", url, self.policy, params=params)
        if not rows and not patient_id:
            # NBIA answers an unknown collection with an empty body, as it does a patient
            # without series: for a whole collection that is an error, not an empty cohort.
            raise DownloadError(
                f"{requests.Request('GET', url, params=params).prepare().url}: no series "
                f"listed for collection {collection!r}. Check cohort.tcia.collection (TCIA "
                "names are case-sensitive, e.g. TCGA-KIRC) and that the server is NBIA v4."
            )
        table = pd.DataFrame(rows or [])
        for column in SERIES_COLUMNS:
            if column not in table.columns:
                table[column] = pd.Series(dtype=object)
        return table

    def image_url(self, series_uid: str) -> str:
        return f"{self.base_url}/getImageWithMD5Hash?SeriesInstanceUID={series_uid}"

    def download_series(
        self,
        series_uid: str,
        dest: str | Path,
        expected_count: int | None = None,
        patient_id: str | None = None,
    ) -> DownloadResult:
        """Download, extract safely, verify and move the series folder ``dest`` into place.

        Verification: MD5 per file, count == ImageCount, and every file's SeriesInstanceUID
        and PatientID are the ones asked for. A folder already at ``dest`` that verifies is
        kept without a request; one that does not is downloaded again. A failed verification
        discards the archive and tries again (up to policy.attempts); an unsafe archive
        (zip-slip) is refused at once: retrying would not make it safe. The result describes
        the folder (``series_digests``), so kept and fetched folders give the same record.
        """
        dest = Path(dest)
        url = self.image_url(series_uid)
        remove_staging(dest)
        if dest.is_dir():
            try:
                digests = verify_series_folder(dest, expected_count, series_uid, patient_id)
                return folder_result(url, dest, digests, fetched=False, attempts=0)
            except SeriesVerificationError as error:
                LOG.warning("%s: %s; downloading the series again", dest, error)
        dest.parent.mkdir(parents=True, exist_ok=True)
        archive_path = dest.with_name(f".{dest.name}.zip")
        for attempt in range(1, self.policy.attempts + 1):
            download(url, archive_path, session=self.session, policy=self.policy)
            staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
            try:
                safe_extract_zip(archive_path, staging)
                digests = verify_series_folder(staging, expected_count, series_uid, patient_id)
                _replace_folder(staging, dest)
                archive_path.unlink()
                stamp_download_time(dest)
                return folder_result(url, dest, digests, fetched=True, attempts=attempt)
            except UnsafeArchive:
                archive_path.unlink(missing_ok=True)
                raise
            except (SeriesVerificationError, zipfile.BadZipFile, zlib.error, EOFError) as error:
                # A cut-off or corrupt ZIP (NBIA sends no Content-Length) shows up here.
                archive_path.unlink(missing_ok=True)
                if attempt >= self.policy.attempts:
                    raise SeriesVerificationError(
                        f"series {series_uid}: {error} (after {attempt} attempts)"
                    ) from error
                time.sleep(self.policy.delay(attempt))
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        raise AssertionError("unreachable")


def remove_staging(dest: Path) -> None:
    """Staging and trash folders (``.<name>.*``) a killed run left beside ``dest``."""
    if dest.parent.is_dir():
        for leftover in dest.parent.glob(f".{dest.name}.*"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)


def read_md5_table(path: Path) -> dict[str, str]:
    """``md5hashes.csv``: a header row then file name, MD5 per row (column names vary)."""
    with open(path, newline="") as handle:
        rows = [r for r in csv.reader(io.StringIO(handle.read())) if r]
    if not rows:
        return {}
    header = [h.strip().lower() for h in rows[0]]
    has_header = any("md5" in h for h in header)
    name_col = next((i for i, h in enumerate(header) if "file" in h), 0) if has_header else 0
    md5_col = next((i for i, h in enumerate(header) if "md5" in h), 1) if has_header else 1
    body = rows[1:] if has_header else rows
    return {r[name_col].strip(): r[md5_col].strip().lower() for r in body}


def verify_series_folder(
    folder: Path,
    expected_count: int | None,
    series_uid: str | None = None,
    patient_id: str | None = None,
) -> dict[str, tuple[str, str]]:
    """Check a series folder; returns {relative path: (md5, sha256)} of every file in it.

    Every DICOM file must be listed in md5hashes.csv with the right MD5, none unlisted,
    count == ImageCount, and each header must carry the SeriesInstanceUID and PatientID asked
    for: a ZIP whose MD5 list agrees can still hold a slice of another series or patient.
    """
    table_path = folder / MD5_TABLE
    if not table_path.exists():
        raise SeriesVerificationError(f"archive has no {MD5_TABLE}")
    expected = read_md5_table(table_path)
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*.dcm")}
    unlisted = present - set(expected)
    if unlisted:
        raise SeriesVerificationError(f"files without an MD5 entry: {sorted(unlisted)[:3]}")
    digests = {}
    for name, md5 in sorted(expected.items()):
        path = folder / name
        if not path.is_file():
            raise SeriesVerificationError(f"{name} is listed in {MD5_TABLE} but missing")
        digests[name] = file_digests(path)
        if digests[name][0] != md5:
            raise SeriesVerificationError(f"{name}: MD5 mismatch")
    if expected_count is not None and len(present) != int(expected_count):
        raise SeriesVerificationError(
            f"{len(present)} DICOM files, ImageCount says {expected_count}"
        )
    wanted = {"SeriesInstanceUID": series_uid, "PatientID": patient_id}
    for name in sorted(present):
        try:
            header = pydicom.dcmread(
                folder / name, stop_before_pixels=True, specific_tags=list(wanted)
            )
        except (InvalidDicomError, OSError) as error:
            raise SeriesVerificationError(f"{name} is not a readable DICOM file: {error}")
        for tag, value in wanted.items():
            found = str(header.get(tag, ""))
            if value is not None and found != value:
                raise SeriesVerificationError(
                    f"{name} belongs to {tag} {found!r}, not the {value!r} asked for"
                )
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and name not in digests:
            digests[name] = file_digests(path)
    return digests


def series_digests(digests: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """(md5, sha256) of a folder: of its ``md5sum`` / ``sha256sum`` listing, paths sorted.

    The same as ``cd <folder> && find . -type f -printf '%P\\n' | LC_ALL=C sort |
    xargs -d '\\n' sha256sum | sha256sum`` (and md5sum alike), so anyone can check it.
    """
    ordered = sorted(digests.items(), key=lambda item: item[0].encode())
    md5_listing = "".join(f"{md5}  {name}\n" for name, (md5, _) in ordered)
    sha_listing = "".join(f"{sha}  {name}\n" for name, (_, sha) in ordered)
    return (
        hashlib.md5(md5_listing.encode()).hexdigest(),
        hashlib.sha256(sha_listing.encode()).hexdigest(),
    )


def folder_result(url, folder: Path, digests, fetched: bool, attempts: int) -> DownloadResult:
    md5, sha256 = series_digests(digests)
    size = sum((folder / name).stat().st_size for name in digests)
    return DownloadResult(
        url, folder, size, md5, sha256, download_time(folder), fetched=fetched, attempts=attempts
    )


def check_series_geometry(folder: Path, series_uid: str, patient_id: str) -> None:
    """BadCase unless the series' slices are evenly spaced (no slice missing mid-series)."""
    headers = [
        pydicom.dcmread(p, stop_before_pixels=True, specific_tags=GEOMETRY_TAGS)
        for p in sorted(Path(folder).rglob("*.dcm"))
    ]
    try:
        orientations = {tuple(map(float, h.ImageOrientationPatient)) for h in headers}
        if len(orientations) > 1:
            raise NonUniformSlices(f"{len(orientations)} slice orientations in one series")
        check_uniform_slice_positions(
            [list(map(float, h.ImagePositionPatient)) for h in headers], orientations.pop()
        )
    except (NonUniformSlices, AttributeError, KeyError) as error:
        reason = str(error) if isinstance(error, NonUniformSlices) else f"no {error}"
        raise BadCase(
            patient_id,
            folder,
            f"CT series {series_uid}: {reason}",
            "choose another series for this phase in cohort.tcia.overrides",
            stage="acquire",
        ) from error


def series_uid_of(folder: Path) -> str | None:
    """SeriesInstanceUID of the first DICOM file in ``folder`` (None: no folder or no file)."""
    first = min(Path(folder).rglob("*.dcm"), default=None) if Path(folder).is_dir() else None
    if first is None:
        return None
    header = pydicom.dcmread(first, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
    return str(header.get("SeriesInstanceUID", ""))


def move_series_folder(source: Path, dest: Path) -> None:
    """Move a verified series folder (e.g. a probe) to ``dest``, keeping its download time."""
    when = source.stat().st_mtime
    dest.parent.mkdir(parents=True, exist_ok=True)
    _replace_folder(source, dest)
    os.utime(dest, (when, when))


def _replace_folder(staging: Path, dest: Path) -> None:
    """Move a verified folder into place; an older incomplete folder is removed first."""
    if dest.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
        dest.rename(trash / dest.name)
        shutil.rmtree(trash, ignore_errors=True)
    staging.rename(dest)
    # mkdtemp makes 0700 folders; give the series the usual permissions.
    with contextlib.suppress(OSError):
        dest.chmod(0o755)
