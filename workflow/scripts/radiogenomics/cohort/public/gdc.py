"""GDC API: find and download STAR counts, masked somatic MAFs and clinical data for a project.

Queries POST JSON to ``/files`` and ``/cases`` with GDC filters and page through the results;
files come from ``/data/{file_id}`` (single) or ``POST /data`` with ``{"ids": [...]}`` (a
tar.gz holding ``<file_id>/<file_name>``). Every file is checked against the md5sum the
``/files`` endpoint publishes before it is moved into place.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from radiogenomics.cohort.public.archive import safe_extract_tar
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
DEFAULT_BASE_URL = "https://api.gdc.cancer.gov"
API_VERSION = "GDC API v0"
DAYS_PER_MONTH = 365.25 / 12

FILE_FIELDS = [
    "file_id",
    "file_name",
    "md5sum",
    "file_size",
    "data_type",
    "data_format",
    "analysis.workflow_type",
    "cases.submitter_id",
    "cases.case_id",
    "cases.samples.submitter_id",
    "cases.samples.sample_type",
]
CASE_FIELDS = [
    "case_id",
    "submitter_id",
    "project.project_id",
    "demographic.vital_status",
    "demographic.days_to_death",
    "demographic.gender",
    "demographic.age_at_index",
    "diagnoses.days_to_last_follow_up",
    "diagnoses.ajcc_pathologic_t",
    "diagnoses.ajcc_pathologic_stage",
    "diagnoses.tumor_grade",
    "diagnoses.age_at_diagnosis",
    "diagnoses.progression_or_recurrence",
    "diagnoses.days_to_recurrence",
    "diagnoses.last_known_disease_status",
    "diagnoses.days_to_last_known_disease_status",
    "follow_ups.days_to_follow_up",
    "follow_ups.progression_or_recurrence",
    "follow_ups.days_to_recurrence",
    "follow_ups.days_to_progression",
    "follow_ups.disease_response",
]
FILE_TABLE_COLUMNS = [
    "file_id",
    "file_name",
    "md5sum",
    "file_size",
    "patient_id",
    "sample_id",
    "sample_type",
]
MAF_COLUMNS = [
    "Hugo_Symbol",
    "Tumor_Sample_Barcode",
    "Variant_Classification",
    "Variant_Type",
    "Chromosome",
    "Start_Position",
]
MISSING_VALUES = {None, "", "not reported", "unknown", "not available", "gx", "tx", "--"}


def gdc_filters(**fields) -> dict:
    """GDC filter JSON: an ``and`` of ``in`` clauses. Keyword ``a__b`` means field ``a.b``."""
    return {
        "op": "and",
        "content": [
            {
                "op": "in",
                "content": {
                    "field": name.replace("__", "."),
                    "value": value if isinstance(value, list) else [value],
                },
            }
            for name, value in fields.items()
        ],
    }


class GdcClient:
    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        session: requests.Session | None = None,
        policy: RetryPolicy = RetryPolicy(),
        page_size: int = 500,
        max_pages: int = 1000,
    ):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.policy = policy
        self.page_size = page_size
        self.max_pages = max_pages

    def query(self, endpoint: str, filters: dict, fields: list[str], key: str) -> list[dict]:
        """All hits of a paged query, one per ``key`` (a unique id field), sorted by it.

        Pages are requested sorted by ``key`` so that they do not overlap, hits seen twice
        are kept once, and the distinct hits must number ``pagination.total``; a listing
        that does not add up (pages shifted while paging, or a malformed answer) is fetched
        again, up to policy.attempts times, then fails naming the URL.
        """
        url = f"{self.base_url}/{endpoint}"
        for attempt in range(1, self.policy.attempts + 1):
            try:
                return self._query_once(url, filters, fields, key)
            except GdcPagingError as error:
                if attempt >= self.policy.attempts:
                    raise DownloadError(f"{error} (after {attempt} listings)") from error
                LOG.warning("%s; listing again", error)
                time.sleep(self.policy.delay(attempt))
        raise AssertionError("unreachable")

    def _query_once(self, url: str, filters: dict, fields: list[str], key: str) -> list[dict]:
        hits: dict[str, dict] = {}
        start, total = 0, None
        for _ in range(self.max_pages):
            body = {
                "filters": filters,
                "fields": ",".join(fields),
                "format": "JSON",
                "size": self.page_size,
                "from": start,
                "sort": f"{key}:asc",
            }
            answer = request_with_retries(self.session, "POST", url, self.policy, json=body)
            page, page_total = _page(answer, url, start, key)
            if total is None:
                total = page_total
            elif page_total != total:
                raise GdcPagingError(
                    f"{url}: pagination.total changed from {total} to {page_total} while paging"
                )
            for hit in page:
                hits.setdefault(str(hit[key]), hit)
            start += len(page)
            if not page or start >= total:
                break
        else:
            raise DownloadError(f"{url}: more than {self.max_pages} pages; raise max_pages")
        if len(hits) != total:
            raise GdcPagingError(
                f"{url}: pagination.total is {total} but {len(hits)} distinct {key} values "
                "came back (pages overlapped or the listing changed while paging)"
            )
        return [hits[k] for k in sorted(hits)]

    def _open_project_files(self, project: str, sample_types, **filters) -> pd.DataFrame:
        """The project's open-access files matching ``filters`` (GDC field=value), one row each
        (``_file_table``; ``sample_types`` None keeps every sample type)."""
        hits = self.query(
            "files",
            gdc_filters(cases__project__project_id=project, **filters, access="open"),
            FILE_FIELDS,
            key="file_id",
        )
        return _file_table(hits, sample_types)

    def find_star_counts(self, project: str, sample_types=("Primary Tumor",)) -> pd.DataFrame:
        return self._open_project_files(
            project,
            sample_types,
            data_category="Transcriptome Profiling",
            data_type="Gene Expression Quantification",
            analysis__workflow_type="STAR - Counts",
        )

    def find_masked_mafs(self, project: str) -> pd.DataFrame:
        return self._open_project_files(
            project,
            None,
            data_category="Simple Nucleotide Variation",
            data_type="Masked Somatic Mutation",
            data_format="MAF",
        )

    def find_diagnostic_slides(self, project: str, sample_types=("Primary Tumor",)) -> pd.DataFrame:
        """Open H&E diagnostic whole-slide images (SVS) of the project (S3 pathomics)."""
        return self._open_project_files(
            project,
            sample_types,
            data_type="Slide Image",
            experimental_strategy="Diagnostic Slide",
            data_format="SVS",
        )

    def get_cases(self, project: str) -> list[dict]:
        return self.query(
            "cases", gdc_filters(project__project_id=project), CASE_FIELDS, key="case_id"
        )

    def data_url(self, file_id: str | None = None) -> str:
        return f"{self.base_url}/data/{file_id}" if file_id else f"{self.base_url}/data"

    def download_file(
        self,
        file_id: str,
        file_name: str,
        md5sum: str,
        dest_dir: str | Path,
        file_size: int | None = None,
    ) -> DownloadResult:
        """``dest_dir/<file_id>/<file_name>``, the layout of the batched tar.gz."""
        return download(
            self.data_url(file_id),
            Path(dest_dir) / file_id / file_name,
            session=self.session,
            policy=self.policy,
            expected_md5=md5sum,
            expected_size=file_size,
        )

    def download_files(
        self,
        files: pd.DataFrame,
        dest_dir: str | Path,
        batch_size: int = 50,
        on_result: Callable[[DownloadResult], None] | None = None,
    ) -> tuple[list[DownloadResult], dict[str, DownloadError]]:
        """Download ``files`` (file_id, file_name, md5sum, file_size) in tar.gz batches.

        Files already present and verified are kept. A file that is missing from a batch or
        fails its md5 check is fetched on its own (with retries) instead; one that still
        fails is returned in the failures (file_id -> error) so that only its patient is
        lost. ``on_result`` is called as each file is done, kept files included. Every
        result carries the file's own URL, however it arrived, so records do not depend on
        the route.
        """
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        # A killed bundle download leaves its staging folder and the bundle's .part file.
        for leftover in dest_dir.glob(".*batch-*"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        results, failures, todo = [], {}, []

        def done(result: DownloadResult) -> None:
            results.append(result)
            if on_result is not None:
                on_result(result)

        for row in files.itertuples(index=False):
            target = dest_dir / row.file_id / row.file_name
            digests = file_digests(target) if target.exists() else None
            if digests and digests[0] == row.md5sum:
                done(self._result(row.file_id, target, digests, fetched=False))
            else:
                todo.append(row)
        for start in range(0, len(todo), max(1, batch_size)):
            batch = todo[start : start + batch_size]
            single = self._download_batch(batch, dest_dir, done) if len(batch) > 1 else batch
            for row in single:
                try:
                    done(
                        self.download_file(
                            row.file_id, row.file_name, row.md5sum, dest_dir, row.file_size
                        )
                    )
                except DownloadError as error:
                    LOG.warning("GDC file %s failed: %s", row.file_id, error)
                    failures[row.file_id] = error
        return results, failures

    def _result(self, file_id: str, target: Path, digests, fetched: bool) -> DownloadResult:
        md5, sha256 = digests
        return DownloadResult(
            self.data_url(file_id),
            target,
            target.stat().st_size,
            md5,
            sha256,
            download_time(target),
            fetched=fetched,
            attempts=int(fetched),
        )

    def _download_batch(self, batch, dest_dir: Path, done) -> list:
        """Fetch ``batch`` as one tar.gz; returns the rows still to fetch one by one."""
        ids = [r.file_id for r in batch]
        tag = hashlib.sha1(",".join(sorted(ids)).encode()).hexdigest()[:12]
        bundle_path = dest_dir / f".batch-{tag}.tar.gz"
        staging = Path(tempfile.mkdtemp(prefix=".batch-", dir=dest_dir))
        left = []
        try:
            try:
                download(
                    self.data_url(),
                    bundle_path,
                    session=self.session,
                    policy=self.policy,
                    method="POST",
                    json_body={"ids": ids},
                    resume=False,
                )
                safe_extract_tar(bundle_path, staging)
                extracted_ok = True
            except (DownloadError, tarfile.TarError, OSError, EOFError) as error:
                # A truncated bundle raises TarError/EOFError; fall back to single files below.
                LOG.warning(
                    "batch of %d GDC files failed (%s); fetching one by one", len(batch), error
                )
                extracted_ok = False
            for row in batch:
                extracted = staging / row.file_id / row.file_name
                if extracted_ok and extracted.is_file():
                    digests = file_digests(extracted)
                    if digests[0] == row.md5sum:
                        target = dest_dir / row.file_id / row.file_name
                        target.parent.mkdir(parents=True, exist_ok=True)
                        extracted.replace(target)
                        stamp_download_time(target)
                        done(self._result(row.file_id, target, digests, fetched=True))
                        continue
                left.append(row)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            bundle_path.unlink(missing_ok=True)
        return left


class GdcPagingError(DownloadError):
    """A paged listing whose pages do not add up to its pagination.total, or lack one."""


def _page(answer, url: str, start: int, key: str) -> tuple[list[dict], int]:
    """The hits and pagination.total of one page, or GdcPagingError naming the URL."""
    data = answer.get("data") if isinstance(answer, dict) else None
    pagination = data.get("pagination") if isinstance(data, dict) else None
    hits = data.get("hits") if isinstance(data, dict) else None
    if not isinstance(pagination, dict) or "total" not in pagination or not isinstance(hits, list):
        raise GdcPagingError(
            f"{url} (from={start}): the answer has no data.hits and data.pagination.total; "
            "is cohort.gdc.base_url the GDC API?"
        )
    if any(not isinstance(hit, dict) or key not in hit for hit in hits):
        raise GdcPagingError(f"{url} (from={start}): a hit without {key}")
    return hits, int(pagination["total"])


def _file_table(hits: list[dict], sample_types) -> pd.DataFrame:
    rows = []
    for hit in hits:
        for case in hit.get("cases", []) or [{}]:
            samples = case.get("samples") or [{}]
            for sample in samples:
                if sample_types and sample.get("sample_type") not in sample_types:
                    continue
                rows.append(
                    {
                        "file_id": hit["file_id"],
                        "file_name": hit["file_name"],
                        "md5sum": hit["md5sum"],
                        "file_size": int(hit["file_size"]),
                        "patient_id": case.get("submitter_id"),
                        "sample_id": sample.get("submitter_id"),
                        "sample_type": sample.get("sample_type"),
                    }
                )
    return pd.DataFrame(rows, columns=FILE_TABLE_COLUMNS).sort_values(
        ["sample_id", "file_id"], ignore_index=True
    )


def read_star_counts(path: str | Path) -> pd.DataFrame:
    """One GDC STAR - Counts file: gene rows only (``N_*`` summary rows dropped)."""
    table = pd.read_csv(path, sep="\t", comment="#", dtype={"gene_id": str, "gene_name": str})
    required = {"gene_id", "gene_name", "unstranded"}
    if not required <= set(table.columns):
        raise ValueError(f"{path}: not a STAR - Counts table (needs {sorted(required)})")
    table = table[~table["gene_id"].str.startswith("N_")]
    return table.reset_index(drop=True)


def build_counts_matrix(
    files: dict[str, str | Path], gene_key: str = "gene_name"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Genes x samples unstranded counts (first column ``gene``) and a gene annotation table.

    ``files`` maps sample id -> STAR counts path. With ``gene_key="gene_name"`` counts of ids
    sharing one symbol (e.g. PAR_Y copies) are summed, as enrichment libraries use symbols.
    """
    if gene_key not in ("gene_name", "gene_id"):
        raise ValueError("gene_key must be gene_name or gene_id")
    columns, genes = {}, None
    for sample_id, path in sorted(files.items()):
        table = read_star_counts(path)
        if genes is None:
            genes = table[[c for c in ("gene_id", "gene_name", "gene_type") if c in table]]
        elif not table["gene_id"].equals(genes["gene_id"]):
            raise ValueError(f"{path}: gene ids differ from the other files (another annotation?)")
        columns[sample_id] = table["unstranded"].to_numpy(dtype=np.int64)
    if genes is None:
        raise ValueError("no STAR counts files given")
    matrix = pd.DataFrame(columns, index=genes[gene_key].to_numpy())
    matrix = matrix.groupby(level=0, sort=True).sum()
    matrix.index.name = "gene"
    return matrix.reset_index(), genes.reset_index(drop=True)


def read_maf(path: str | Path) -> pd.DataFrame:
    """One masked somatic MAF (gzipped or not): the columns TMB needs."""
    table = pd.read_csv(
        path, sep="\t", comment="#", low_memory=False, usecols=lambda c: c in MAF_COLUMNS
    )
    missing = set(MAF_COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path}: MAF lacks columns {sorted(missing)}")
    return table[MAF_COLUMNS]


def merge_mafs(paths) -> pd.DataFrame:
    """Concatenate masked somatic MAFs into the columns TMB needs."""
    return combine_mafs([read_maf(path) for path in sorted(map(str, paths))])


def combine_mafs(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """MAF tables (from ``read_maf``) as one, with ``patient_id``, in a fixed order."""
    merged = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=MAF_COLUMNS)
    merged["patient_id"] = merged["Tumor_Sample_Barcode"].str.slice(0, 12)
    return merged.sort_values(
        ["Tumor_Sample_Barcode", "Chromosome", "Start_Position"], ignore_index=True
    )


def _missing(value) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return str(value).strip().lower() in MISSING_VALUES


def _t_stage(value) -> str | None:
    match = None if _missing(value) else re.match(r"^\s*p?T([0-4])", str(value), re.IGNORECASE)
    return f"T{match.group(1)}" if match else None


def _grade(value) -> int | None:
    match = None if _missing(value) else re.match(r"^\s*G([1-4])\s*$", str(value), re.IGNORECASE)
    return int(match.group(1)) if match else None


# Disease-status values of the GDC dictionary (follow_up.disease_response,
# diagnosis.last_known_disease_status), lower-cased.
TUMOUR_FREE = {"tf-tumor free", "tumor free"}
WITH_TUMOUR = {"wt-with tumor", "with tumor"}
RECURRED = {"distant met recurrence/progression", "loco-regional recurrence/progression"}


def _day(value) -> float:
    return np.nan if _missing(value) else float(value)


def _flag(value) -> str:
    """progression_or_recurrence as 'yes' / 'no' / '' (follow_up says Yes, diagnosis yes)."""
    return "" if _missing(value) else str(value).strip().lower()


def _record_observations(flag: str, status, recurred_on: float, status_on: float) -> list[tuple[str, float]]:
    """One follow-up or diagnosis record: its recurrence flag, then its disease status."""
    observations = []
    if flag == "yes":
        observations.append(("recurred", recurred_on))
    elif flag == "no":
        observations.append(("free", status_on))
    status = str(status or "").strip().lower()
    if status in TUMOUR_FREE:
        observations.append(("free", status_on))
    elif status in RECURRED:
        observations.append(("recurred", recurred_on))
    elif status in WITH_TUMOUR:
        observations.append(("with_tumour", status_on))
    return observations


def _status_observations(case: dict) -> list[tuple[str, float]]:
    """Disease-status observations of one case: ("free" | "recurred" | "with_tumour", day),
    the day counted from diagnosis (NaN when the record gives none)."""
    observations = []
    for follow_up in case.get("follow_ups") or []:
        visit = _day(follow_up.get("days_to_follow_up"))
        # The visit that recorded it bounds the day when neither day field is given.
        days = [_day(follow_up.get(k)) for k in ("days_to_recurrence", "days_to_progression")]
        recurred_on = next((d for d in days if np.isfinite(d)), visit)
        observations += _record_observations(
            _flag(follow_up.get("progression_or_recurrence")), follow_up.get("disease_response"), recurred_on, visit
        )
    for diagnosis in case.get("diagnoses") or []:
        status_on = _day(diagnosis.get("days_to_last_known_disease_status"))
        if not np.isfinite(status_on):
            status_on = _day(diagnosis.get("days_to_last_follow_up"))
        observations += _record_observations(
            _flag(diagnosis.get("progression_or_recurrence")), diagnosis.get("last_known_disease_status"),
            _day(diagnosis.get("days_to_recurrence")), status_on,
        )  # fmt: skip
    return observations


def recurrence_status(case: dict) -> tuple[float, float]:
    """(recurrence, day of the first recurrence) of one GDC case record.

    recurrence 1: a progression_or_recurrence "Yes" (follow-up or diagnosis), a last known
    disease status of loco-regional or distant recurrence/progression, or a with-tumour
    assessment after a tumour-free one (a recurrence seen at that visit). Its day is the
    earliest positive one given (days_to_recurrence, days_to_progression, else the recording
    visit's days_to_follow_up); NaN when none is. recurrence 0: no such sign and at least one
    tumour-free assessment or progression_or_recurrence "No". NaN: no disease status at all,
    or only with-tumour assessments (never disease-free: persistent disease, no recurrence).
    """
    observations = _status_observations(case)
    free_days = [d for s, d in observations if s == "free" and np.isfinite(d)]
    recurred = [d for s, d in observations if s == "recurred"]
    if free_days:
        recurred += [
            d
            for s, d in observations
            if s == "with_tumour" and np.isfinite(d) and d > min(free_days)
        ]
    if recurred:
        days = [d for d in recurred if np.isfinite(d) and d > 0]
        return 1.0, (min(days) if days else np.nan)
    if any(s == "free" for s, _ in observations):
        return 0.0, np.nan
    return np.nan, np.nan


def disease_free_survival(recurrence, recurrence_days, os_event, os_days) -> tuple[float, float]:
    """(dfs_days, dfs_event): the first of recurrence and death from any cause (the synthetic
    cohort's definition), else censored at the last contact (os_days of a living patient).
    NaN when the recurrence status, or the day of a recurrence, is unknown."""
    if recurrence == 1:
        if not np.isfinite(recurrence_days):
            return np.nan, np.nan
        died_first = os_event == 1 and np.isfinite(os_days) and os_days < recurrence_days
        return (float(os_days) if died_first else float(recurrence_days)), 1.0
    if recurrence == 0 and np.isfinite(os_days) and os_event in (0, 1):
        return float(os_days), float(os_event)
    return np.nan, np.nan


def harmonise_clinical(
    cases: list[dict], site: str, grade_fallback: pd.DataFrame | None = None
) -> pd.DataFrame:
    """GDC case records -> the clinical table columns of the output contract.

    - patient_id = case submitter_id (equals the TCIA PatientID for TCGA collections).
    - os_event = vital_status Dead; os_months = days_to_death (dead) or the latest of
      days_to_last_follow_up / days_to_follow_up (alive), divided by 365.25/12.
    - t_stage from ajcc_pathologic_t (T1a -> T1); t_group low (T1-T2) / high (T3-T4).
    - grade from diagnoses.tumor_grade (G1..G4). GDC reports it "Not Reported" for many TCGA
      cases; the documented fallback is ``grade_fallback`` (columns patient_id, grade: e.g.
      neoplasm_histologic_grade from the TCGA clinical supplement or the PanCanAtlas CDR),
      else NaN. ``grade_source`` says which (gdc / fallback / missing).
    - recurrence (1 / 0 / NaN) from the follow-ups' and diagnoses' disease status
      (:func:`recurrence_status`); dfs_months / dfs_event: the first of recurrence and death,
      else censored at the last contact (:func:`disease_free_survival`); NaN when unknown, so
      ``cohort.required_clinical: [dfs_months, dfs_event]`` excludes the patient by name.
    - Necrosis and size are not in GDC's case records: NaN columns (fill them from other
      sources).
    """
    fallback = {}
    if grade_fallback is not None and len(grade_fallback):
        for pid, value in zip(grade_fallback["patient_id"], grade_fallback["grade"], strict=True):
            parsed = _grade(value) if not str(value).strip().isdigit() else int(value)
            if parsed is not None:
                fallback[str(pid)] = parsed
    rows = []
    for case in cases:
        demographic = case.get("demographic") or {}
        diagnoses = case.get("diagnoses") or []
        follow_ups = case.get("follow_ups") or []
        vital = str(demographic.get("vital_status") or "").lower()
        event = 1 if vital == "dead" else 0 if vital == "alive" else np.nan
        death = demographic.get("days_to_death")
        if _missing(death):
            death = next(
                (d.get("days_to_death") for d in diagnoses if not _missing(d.get("days_to_death"))),
                None,
            )
        last_seen = [
            float(v)
            for v in [d.get("days_to_last_follow_up") for d in diagnoses]
            + [f.get("days_to_follow_up") for f in follow_ups]
            if not _missing(v)
        ]
        if event == 1:
            os_days = float(death) if not _missing(death) else np.nan
        elif event == 0:
            os_days = max(last_seen) if last_seen else np.nan
        else:
            os_days = np.nan
        t_stage = next(
            (t for t in map(_t_stage, (d.get("ajcc_pathologic_t") for d in diagnoses)) if t), None
        )
        grade = next((g for g in map(_grade, (d.get("tumor_grade") for d in diagnoses)) if g), None)
        grade_source = "gdc"
        if grade is None:
            grade = fallback.get(case["submitter_id"])
            grade_source = "fallback" if grade is not None else "missing"
        age = demographic.get("age_at_index")
        if _missing(age):
            days = next(
                (
                    d.get("age_at_diagnosis")
                    for d in diagnoses
                    if not _missing(d.get("age_at_diagnosis"))
                ),
                None,
            )
            age = float(days) / 365.25 if days is not None else np.nan
        gender = str(demographic.get("gender") or "").lower()
        recurrence, recurrence_days = recurrence_status(case)
        dfs_days, dfs_event = disease_free_survival(recurrence, recurrence_days, event, os_days)
        rows.append(
            {
                "patient_id": case["submitter_id"],
                "site": site,
                "os_days": os_days,
                "os_months": os_days / DAYS_PER_MONTH,
                "os_event": event,
                "dfs_months": dfs_days / DAYS_PER_MONTH,
                "dfs_event": dfs_event,
                "recurrence": recurrence,
                "t_stage": t_stage,
                "t_group": (
                    None if t_stage is None else ("low" if t_stage in ("T1", "T2") else "high")
                ),
                "grade": np.nan if grade is None else grade,
                "grade_source": grade_source,
                "necrosis": np.nan,
                "size_cm": np.nan,
                "age": float(age) if not _missing(age) else np.nan,
                "sex": gender if gender in ("male", "female") else None,
                "gdc_case_id": case.get("case_id"),
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values("patient_id", ignore_index=True) if len(table) else table
