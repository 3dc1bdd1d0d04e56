"""Loopback fakes of the TCIA NBIA v4 and GDC APIs, with fault injection (pytest fixtures).

The server listens on 127.0.0.1, port 0, in a daemon thread; the fixture shuts it down.
Responses use the real field names. Faults are queued per route and consumed one per request:
``500``, ``timeout`` (sleep longer than the client's read timeout), ``truncate`` (half the
body, then close), ``bad_md5`` (one byte flipped), ``zipslip`` (a ``../`` entry in the ZIP),
``symlink`` (a link entry in the ZIP), ``429:<s>`` / ``503:<s>`` (with ``Retry-After: <s>``
seconds), ``503-date:<s>`` (Retry-After as an HTTP date <s> seconds ahead), ``stall`` (half
the body, then wait until ``state.release`` is set; ``state.stalled`` says it got there).
Series ZIPs: ``foreign_series`` / ``foreign_patient`` (one file carries another
SeriesInstanceUID / PatientID, its MD5 listed correctly). GDC listings: ``overlap`` (the page
starts one hit early: a repeated hit, and with one-hit pages a lost one), ``no_pagination``.
GDC listings are sorted as the request's ``sort`` asks; without one their order changes from
request to request, as an unsorted GDC listing may. Every request is logged (``Request``),
with its time, on the server side.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import tarfile
import threading
import time
import zipfile
from collections import defaultdict, deque
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlparse

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

TIMEOUT_SLEEP_S = 1.5  # the tests' client read timeout is 0.5 s
STALL_LIMIT_S = 60  # a stalled answer gives up after this long if nobody releases it
LICENSE_TEXT = "Creative Commons Attribution 3.0 Unported License\n"


# ----------------------------------------------------------------------------- DICOM writing
def write_dicom_series(
    volume_hu: np.ndarray,
    spacing,
    origin,
    direction,
    folder: Path,
    *,
    patient_id: str,
    series_uid: str,
    description: str,
    contrast_agent: str | None = None,
) -> list[Path]:
    """Write a (z, y, x) HU volume as one CT series, files numbered against slice order.

    ``spacing``/``origin`` are (x, y, z) and ``direction`` is a 3x3 matrix whose columns are
    the image axes, as SimpleITK defines them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    direction = np.asarray(direction, dtype=float).reshape(3, 3)
    study_uid, frame_uid = generate_uid(), generate_uid()
    n_slices = volume_hu.shape[0]
    paths = []
    for k in range(n_slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        # Reverse numbering: file order must not be what puts the slices in place.
        path = folder / f"{n_slices - k:08d}.dcm"  # NBIA names ZIP entries %08d.dcm
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientID, ds.PatientName, ds.Modality = patient_id, patient_id, "CT"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID, ds.SeriesNumber, ds.InstanceNumber = frame_uid, 2, k + 1
        ds.SeriesDescription = description
        if contrast_agent is not None:
            ds.ContrastBolusAgent = contrast_agent
        position = np.asarray(origin, float) + k * spacing[2] * direction[:, 2]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.ImageOrientationPatient = [
            f"{v:.6f}" for v in np.concatenate([direction[:, 0], direction[:, 1]])
        ]
        ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]  # row, column spacing
        ds.SliceThickness = f"{spacing[2]:.6f}"
        ds.Rows, ds.Columns = volume_hu.shape[1], volume_hu.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = (volume_hu[k].astype(np.int32) + 1024).astype(np.uint16).tobytes()
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- fake data
@dataclass
class FakeSeries:
    patient_id: str
    series_uid: str
    description: str
    files: dict[str, bytes]  # name -> DICOM bytes
    modality: str = "CT"
    image_count: int | None = None

    def record(self, collection: str) -> dict:
        return {
            "SeriesInstanceUID": self.series_uid,
            "StudyInstanceUID": "1.2.3." + self.patient_id[-4:],
            "Modality": self.modality,
            "ProtocolName": "ABD/PEL",
            "SeriesDate": "2001-05-17",
            "SeriesDescription": self.description,
            "BodyPartExamined": "ABDOMEN",
            "SeriesNumber": 2,
            "AnnotationsFlag": False,
            "Collection": collection,
            "PatientID": self.patient_id,
            "Manufacturer": "GE MEDICAL SYSTEMS",
            "ManufacturerModelName": "LightSpeed16",
            "SoftwareVersions": "LightSpeedverrel",
            "ImageCount": self.image_count if self.image_count is not None else len(self.files),
            "TimeStamp": "2014-09-29 10:05:35.0",
            "LicenseName": "Creative Commons Attribution 3.0",
            "LicenseURI": "https://creativecommons.org/licenses/by/3.0/",
            "CollectionURI": "https://doi.org/10.7937/K9/TCIA.2016.V6PBVTDR",
            "FileSize": sum(len(b) for b in self.files.values()),
            "DateReleased": "2014-09-29",
        }


@dataclass
class FakeGdcFile:
    file_id: str
    file_name: str
    content: bytes
    fields: dict  # flattened GDC fields used by the filters, e.g. data_type
    case_submitter_id: str
    sample_submitter_id: str
    sample_type: str = "Primary Tumor"

    def hit(self) -> dict:
        return {
            "id": self.file_id,
            "file_id": self.file_id,
            "file_name": self.file_name,
            "md5sum": hashlib.md5(self.content).hexdigest(),
            "file_size": len(self.content),
            "data_type": self.fields["data_type"],
            "data_format": self.fields["data_format"],
            "analysis": {"workflow_type": self.fields.get("analysis.workflow_type")},
            "cases": [
                {
                    "submitter_id": self.case_submitter_id,
                    "case_id": "c-" + self.file_id,
                    "samples": [
                        {"submitter_id": self.sample_submitter_id, "sample_type": self.sample_type}
                    ],
                }
            ],
        }


class Request(NamedTuple):
    route: str
    method: str
    path: str
    range: str | None
    time: float  # time.monotonic() on the server when the request arrived
    body: dict | None  # the JSON body of a POST


@dataclass
class FakeState:
    collection: str = "TCGA-KIRC"
    project: str = "TCGA-KIRC"
    series: list[FakeSeries] = field(default_factory=list)
    gdc_files: list[FakeGdcFile] = field(default_factory=list)
    cases: list[dict] = field(default_factory=list)
    faults: dict = field(default_factory=lambda: defaultdict(deque))
    requests: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def inject(self, route: str, *faults: str) -> None:
        """Queue faults for a route: tcia_series, tcia_image, gdc_files, gdc_cases,
        gdc_data (GET /data/{id}) or gdc_bundle (POST /data)."""
        with self.lock:
            self.faults[route].extend(faults)

    def next_fault(self, route: str) -> str | None:
        with self.lock:
            return self.faults[route].popleft() if self.faults[route] else None

    def count(self, route: str) -> int:
        return sum(1 for r in self.requests if r[0] == route)

    def downloads(self) -> int:
        """Requests for data (series ZIPs, GDC files and bundles), not listings."""
        return sum(self.count(r) for r in ("tcia_image", "gdc_data", "gdc_bundle"))


def _relabelled(blob: bytes, **tags) -> bytes:
    """A DICOM file with some header values replaced."""
    ds = pydicom.dcmread(io.BytesIO(blob))
    for tag, value in tags.items():
        setattr(ds, tag, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def series_zip(series: FakeSeries, fault: str | None) -> bytes:
    buffer = io.BytesIO()
    foreign = {
        "foreign_series": {"SeriesInstanceUID": "1.2.826.0.1.3680043.9.9999"},
        "foreign_patient": {"PatientID": "TCGA-ZZ-9999"},
    }.get(fault)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        rows = ["Filename,MD5Hash"]  # the header NBIA writes
        for name, blob in sorted(series.files.items()):
            if foreign and not rows[1:]:
                blob = _relabelled(blob, **foreign)
            bundle.writestr(name, blob)
            digest = hashlib.md5(blob).hexdigest()
            if fault == "bad_md5" and not rows[1:]:
                digest = "0" * 32
            rows.append(f"{name},{digest}")
        bundle.writestr("md5hashes.csv", "\n".join(rows) + "\n")
        bundle.writestr("LICENSE", LICENSE_TEXT)
        if fault == "zipslip":
            bundle.writestr("../../escaped.dcm", b"gotcha")
        if fault == "symlink":
            info = zipfile.ZipInfo("link.dcm")
            info.external_attr = 0o120777 << 16
            bundle.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def gdc_bundle(files: list[FakeGdcFile]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        manifest = ["id\tfilename\tmd5\tsize\tstate"]
        for f in files:
            info = tarfile.TarInfo(f"{f.file_id}/{f.file_name}")
            info.size, info.mtime = len(f.content), 1_600_000_000
            bundle.addfile(info, io.BytesIO(f.content))
            manifest.append(
                f"{f.file_id}\t{f.file_name}\t{hashlib.md5(f.content).hexdigest()}"
                f"\t{len(f.content)}\treleased"
            )
        blob = ("\n".join(manifest) + "\n").encode()
        info = tarfile.TarInfo("MANIFEST.txt")
        info.size, info.mtime = len(blob), 1_600_000_000
        bundle.addfile(info, io.BytesIO(blob))
    return buffer.getvalue()


def _filter_values(filters: dict) -> dict:
    clauses = filters.get("content", []) if filters.get("op") == "and" else [filters]
    return {c["content"]["field"]: c["content"]["value"] for c in clauses if c.get("op") == "in"}


def only_fields(record, fields: list[str]):
    """``record`` reduced to the dotted ``fields`` a GDC query names (lists of nested records
    keep their items, each reduced alike), as the GDC API answers: a field the client does
    not ask for does not come back."""
    tree: dict = {}
    for name in fields:
        node = tree
        for part in name.split("."):
            node = node.setdefault(part, {})

    def prune(value, node):
        if not node:  # a requested leaf: the whole value
            return value
        if isinstance(value, list):
            return [prune(item, node) for item in value]
        if isinstance(value, dict):
            return {k: prune(value[k], node[k]) for k in node if k in value}
        return value

    return prune(record, tree)


def _paged(hits: list, body: dict, fault: str | None, n_request: int) -> dict:
    sort = body.get("sort")
    if sort:
        key = sort.split(":")[0]
        hits = sorted(hits, key=lambda h: str(h[key]), reverse=sort.endswith(":desc"))
    elif hits:  # no stable order: each request sees the listing rotated
        shift = n_request % len(hits)
        hits = hits[shift:] + hits[:shift]
    size, start = int(body.get("size", 10)), int(body.get("from", 0))
    if fault == "overlap":
        start = max(0, start - 1)
    page = hits[start : start + size]
    answer = {
        "data": {
            "hits": page,
            "pagination": {
                "count": len(page),
                "total": len(hits),
                "size": size,
                "from": start,
                "sort": "",
                "page": start // max(size, 1) + 1,
                "pages": max(1, -(-len(hits) // max(size, 1))),
            },
        },
        "warnings": {},
    }
    if fault == "no_pagination":
        del answer["data"]["pagination"]
    return answer


class Handler(BaseHTTPRequestHandler):
    state: FakeState  # set per server class

    def log_message(self, *args):  # keep pytest output quiet
        pass

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/tcia/getSeries":
            self._serve("tcia_series", self._series_body(query), "application/json")
        elif url.path == "/tcia/getImageWithMD5Hash":
            uid = query.get("SeriesInstanceUID")
            series = next((s for s in self.state.series if s.series_uid == uid), None)
            if series is None:
                return self._plain(404, b"no such series")
            # NBIA streams the ZIP without Content-Length: a cut-off body shows only as a
            # broken ZIP or failed MD5s, which the client must catch.
            self._serve(
                "tcia_image",
                lambda fault: series_zip(series, fault),
                "application/zip",
                content_length=False,
            )
        elif url.path.startswith("/gdc/data/"):
            file_id = url.path.rsplit("/", 1)[1]
            match = next((f for f in self.state.gdc_files if f.file_id == file_id), None)
            if match is None:
                return self._plain(404, b'{"message": "not found"}')
            self._serve(
                "gdc_data",
                lambda fault: match.content,
                "application/octet-stream",
                filename=match.file_name,
            )
        else:
            self._plain(404, b"unknown route")

    def do_POST(self):
        url = urlparse(self.path)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if url.path == "/gdc/files":
            wanted = _filter_values(body["filters"])
            hits = [
                f.hit()
                for f in self.state.gdc_files
                if all(
                    f.fields.get(k) in v
                    for k, v in wanted.items()
                    if k != "cases.project.project_id" and k != "access"
                )
                and self.state.project in wanted.get("cases.project.project_id", [])
            ]
            self._serve(
                "gdc_files",
                lambda fault: json.dumps(
                    _paged(hits, body, fault, len(self.state.requests))
                ).encode(),
                "application/json",
                body=body,
            )
        elif url.path == "/gdc/cases":
            wanted = _filter_values(body["filters"])
            fields = [f for f in str(body.get("fields", "")).split(",") if f]
            hits = (
                [only_fields(case, fields) for case in self.state.cases]
                if self.state.project in wanted.get("project.project_id", [])
                else []
            )
            self._serve(
                "gdc_cases",
                lambda fault: json.dumps(
                    _paged(hits, body, fault, len(self.state.requests))
                ).encode(),
                "application/json",
                body=body,
            )
        elif url.path == "/gdc/data":
            files = [f for f in self.state.gdc_files if f.file_id in body.get("ids", [])]
            self._serve(
                "gdc_bundle", lambda fault: gdc_bundle(files), "application/x-tar", body=body
            )
        else:
            self._plain(404, b"unknown route")

    def _series_body(self, query):
        def body(fault):
            rows = [
                s.record(self.state.collection)
                for s in self.state.series
                if query.get("Collection") == self.state.collection
                and query.get("PatientID") in (None, s.patient_id)
            ]
            return json.dumps(rows).encode() if rows else b""  # NBIA: empty result, empty body

        return body

    def _plain(self, status: int, blob: bytes, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Length", str(len(blob)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(blob)

    def _serve(
        self,
        route: str,
        make_body,
        content_type: str,
        filename: str | None = None,
        content_length: bool = True,
        body: dict | None = None,
    ):
        fault = self.state.next_fault(route)
        with self.state.lock:
            self.state.requests.append(
                Request(
                    route,
                    self.command,
                    self.path,
                    self.headers.get("Range"),
                    time.monotonic(),
                    body,
                )
            )
        if fault == "500":
            return self._plain(500, b"Internal Server Error")
        if fault and fault.split(":")[0] in ("429", "503", "503-date"):
            kind, seconds = fault.split(":")
            retry_after = (
                formatdate(time.time() + float(seconds), usegmt=True)
                if kind == "503-date"
                else seconds
            )
            status = 429 if kind == "429" else 503
            return self._plain(status, b"slow down", {"Retry-After": retry_after})
        if fault == "timeout":
            time.sleep(TIMEOUT_SLEEP_S)
            return
        blob = make_body(fault)
        if fault == "bad_md5" and route in ("gdc_data", "gdc_bundle"):
            blob = blob[:-1] + bytes([blob[-1] ^ 0xFF])
        status, start = 200, 0
        range_header = self.headers.get("Range")
        if range_header and route == "gdc_data" and range_header.startswith("bytes="):
            start = int(range_header[6:].split("-")[0])
            if start >= len(blob):
                return self._plain(416, b"")
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if content_length:
            self.send_header("Content-Length", str(len(blob) - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(blob) - 1}/{len(blob)}")
        if filename:
            self.send_header("Content-Disposition", f"attachment; filename={filename}")
        self.end_headers()
        payload = blob[start:]
        if fault in ("truncate", "stall"):
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            if fault == "stall":
                self.state.stalled.set()
                self.state.release.wait(STALL_LIMIT_S)
            self.close_connection = True
            return
        self.wfile.write(payload)


class FakeServer:
    def __init__(self, state: FakeState):
        handler = type("BoundHandler", (Handler,), {"state": state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.state = state
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


# ----------------------------------------------------------------------------- a tiny cohort
STAR_HEADER = (
    "gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second\t"
    "tpm_unstranded\tfpkm_unstranded\tfpkm_uq_unstranded"
)
GENES = [
    ("ENSG00000000003.15", "TSPAN6", "protein_coding"),
    ("ENSG00000000005.6", "TNMD", "protein_coding"),
    ("ENSG00000000419.13", "DPM1", "protein_coding"),
    ("ENSG00000002586.20", "CD99", "protein_coding"),
    ("ENSG00000002586.20_PAR_Y", "CD99", "protein_coding"),
    ("ENSG00000134086.8", "VHL", "protein_coding"),
]
MAF_HEADER = [
    "Hugo_Symbol",
    "Entrez_Gene_Id",
    "Center",
    "NCBI_Build",
    "Chromosome",
    "Start_Position",
    "End_Position",
    "Strand",
    "Variant_Classification",
    "Variant_Type",
    "Reference_Allele",
    "Tumor_Seq_Allele1",
    "Tumor_Seq_Allele2",
    "Tumor_Sample_Barcode",
    "Matched_Norm_Sample_Barcode",
]


def star_counts_file(counts: list[int]) -> bytes:
    lines = ["# gene-model: GENCODE v36", STAR_HEADER]
    for name, value in zip(
        ["N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous"],
        [1203, 880, 951, 444],
        strict=True,
    ):
        lines.append(f"{name}\t\t\t{value}\t{value}\t{value}\t\t\t")
    for (gene_id, name, kind), value in zip(GENES, counts, strict=True):
        lines.append(
            f"{gene_id}\t{name}\t{kind}\t{value}\t{value // 2}\t{value - value // 2}"
            f"\t1.0\t0.5\t0.6"
        )
    return ("\n".join(lines) + "\n").encode()


def maf_file(sample_barcode: str, mutations: list[tuple]) -> bytes:
    lines = ["#version gdc-1.0.0", "#filedate 20220101", "\t".join(MAF_HEADER)]
    for symbol, chrom, pos, classification in mutations:
        lines.append(
            "\t".join(
                map(
                    str,
                    [
                        symbol,
                        0,
                        "WUGSC",
                        "GRCh38",
                        chrom,
                        pos,
                        pos,
                        "+",
                        classification,
                        "SNP",
                        "C",
                        "C",
                        "T",
                        sample_barcode,
                        sample_barcode[:12] + "-10A",
                    ],
                )
            )
        )
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def source_volume(seed: int) -> tuple[np.ndarray, tuple, tuple, np.ndarray]:
    """A small CT-like (z, y, x) volume with anisotropic spacing and an oblique direction."""
    rng = np.random.default_rng(seed)
    volume = rng.integers(-1000, 1500, size=(5, 12, 10)).astype(np.int16)
    angle = np.deg2rad(10)
    direction = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    return volume, (0.78, 0.7, 2.5), (-120.5, 35.25, -402.0), direction


# Disease status per fake patient, in the GDC dictionary's follow_up fields: the first recurs
# (progression_or_recurrence Yes, days_to_recurrence 540, recorded at the day-600 visit), the
# second is with tumour at day 420 after a tumour-free visit at 150, the third is tumour free
# at its last visit (1200). A field the client does not request is not served (only_fields).
RECURRENCE_FOLLOW_UPS = [
    [
        {"days_to_follow_up": 200, "disease_response": "TF-Tumor Free"},
        {
            "days_to_follow_up": 600,
            "progression_or_recurrence": "Yes",
            "days_to_recurrence": 540,
            "progression_or_recurrence_type": "Distant",
        },
    ],
    [
        {"days_to_follow_up": 150, "disease_response": "TF-Tumor Free"},
        {"days_to_follow_up": 420, "disease_response": "WT-With Tumor"},
    ],
    [
        {
            "days_to_follow_up": 1200,
            "disease_response": "TF-Tumor Free",
            "progression_or_recurrence": "No",
        }
    ],
]


def make_cohort(tmp: Path, patients=("TCGA-B0-5094", "TCGA-B0-5095", "TCGA-CJ-4642")) -> FakeState:
    """Three TCGA-KIRC patients: venous + arterial CT (plus a scout), counts, MAF, clinical."""
    state = FakeState()
    for index, pid in enumerate(patients):
        for phase_index, description in enumerate(
            ["ABD PEL W/CONTRAST PORTAL VENOUS", "ARTERIAL PHASE 2.5MM"]
        ):
            volume, spacing, origin, direction = source_volume(10 * index + phase_index)
            uid = f"1.3.6.1.4.1.14519.5.2.1.{index}.{phase_index}"
            folder = tmp / "source" / uid
            paths = write_dicom_series(
                volume,
                spacing,
                origin,
                direction,
                folder,
                patient_id=pid,
                series_uid=uid,
                description=description,
                contrast_agent="OMNIPAQUE 350",
            )
            state.series.append(
                FakeSeries(pid, uid, description, {p.name: p.read_bytes() for p in paths})
            )
        scout = write_dicom_series(
            np.zeros((1, 4, 4), np.int16),
            (1, 1, 1),
            (0, 0, 0),
            np.eye(3),
            tmp / "source" / f"scout{index}",
            patient_id=pid,
            series_uid=f"1.9.{index}",
            description="SCOUT",
        )
        state.series.append(
            FakeSeries(pid, f"1.9.{index}", "SCOUT", {p.name: p.read_bytes() for p in scout})
        )
        sample = f"{pid}-01A"
        star = {
            "data_type": "Gene Expression Quantification",
            "data_format": "TSV",
            "data_category": "Transcriptome Profiling",
            "analysis.workflow_type": "STAR - Counts",
        }
        counts = [100 + 10 * index, 0, 55, 7, 0, 300 - 20 * index]
        state.gdc_files.append(
            FakeGdcFile(
                f"aaaa{index:04d}-0000-4000-8000-00000000000{index}",
                f"{index:08x}-star.rna_seq.augmented_star_gene_counts.tsv",
                star_counts_file(counts),
                star,
                pid,
                sample,
            )
        )
        maf = {
            "data_type": "Masked Somatic Mutation",
            "data_format": "MAF",
            "data_category": "Simple Nucleotide Variation",
        }
        state.gdc_files.append(
            FakeGdcFile(
                f"bbbb{index:04d}-0000-4000-8000-00000000000{index}",
                f"TCGA_KIRC.{index:04d}.wxs.aliquot_ensemble_masked.maf.gz",
                maf_file(
                    f"{sample}-01D-1234-10",
                    [
                        ("VHL", "chr3", 10142000 + index, "Missense_Mutation"),
                        ("PBRM1", "chr3", 52600000, "Nonsense_Mutation"),
                    ][: index + 1],
                ),
                maf,
                pid,
                sample,
            )
        )
        state.cases.append(
            {
                "case_id": f"case-{index}",
                "submitter_id": pid,
                "project": {"project_id": "TCGA-KIRC"},
                "demographic": {
                    "vital_status": "Dead" if index == 0 else "Alive",
                    "days_to_death": 913 if index == 0 else None,
                    "gender": "male" if index != 1 else "female",
                    "age_at_index": 60 + index,
                },
                "diagnoses": [
                    {
                        "days_to_last_follow_up": 400 + 100 * index,
                        "ajcc_pathologic_t": ["T1a", "T3b", "T2"][index % 3],
                        "tumor_grade": ["G2", "Not Reported", "G4"][index % 3],
                        "age_at_diagnosis": 365 * (60 + index),
                    }
                ],
                "follow_ups": copy.deepcopy(RECURRENCE_FOLLOW_UPS[index % 3]),
            }
        )
    return state


def make_probe_cohort(tmp: Path) -> FakeState:
    """``make_cohort``, but the first patient's venous series is named only "5MM AXIAL".

    Its phase comes from its DICOM header (ContrastBolusAgent), as does that of an extra,
    larger "5MM AXIAL B" series without contrast, which is probed first and stays in the
    probe folder.
    """
    state = make_cohort(tmp)
    venous = state.series[0]
    venous.description = "5MM AXIAL"
    volume, spacing, origin, direction = source_volume(99)
    volume = np.concatenate([volume, volume[:1]])  # six slices: probed before the venous one
    uid = "1.3.6.1.4.1.14519.5.2.1.0.5"
    paths = write_dicom_series(
        volume,
        spacing,
        origin,
        direction,
        tmp / "source" / uid,
        patient_id=venous.patient_id,
        series_uid=uid,
        description="5MM AXIAL B",
        contrast_agent="NONE",
    )
    state.series.append(
        FakeSeries(venous.patient_id, uid, "5MM AXIAL B", {p.name: p.read_bytes() for p in paths})
    )
    return state


@pytest.fixture
def fake_cohort(tmp_path):
    """(server, state): a running fake TCIA+GDC with a three-patient cohort."""
    state = make_cohort(tmp_path)
    with FakeServer(state) as server:
        yield server, state


def fast_policy(attempts: int = 4):
    """Tiny backoff delays and a short read timeout so fault tests stay fast."""
    from radiogenomics.cohort.public.http import RetryPolicy

    return RetryPolicy(
        attempts=attempts,
        backoff_s=0.001,
        backoff_factor=2.0,
        max_backoff_s=0.01,
        connect_timeout_s=5.0,
        read_timeout_s=0.5,
        chunk_bytes=64,
    )
