"""Acquire a public cohort: TCIA CT series + GDC clinical, counts and mutations -> results/raw/.

Writes the internal files CONTRIBUTING.md defines (``manifest.tsv`` with DICOM folders,
``clinical.tsv``, ``expression/counts.tsv`` + ``samples.tsv``, ``mutations.maf``) plus
``downloads.tsv`` (the downloads manifest, a row added as each download completes),
``tcia/series.tsv`` (every listed series with its phase and the choice made) and
``acquisition_exclusions.tsv`` (patients dropped, with reason). A patient whose CT series or
GDC file cannot be had is excluded, never the whole run; a rerun in the same folder resumes
and, once everything is there, makes no download request and rewrites identical files.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import os
import zlib
from pathlib import Path

import pandas as pd
import requests

from radiogenomics.core.cases import BadCase, check_patient_id
from radiogenomics.core.io import write_tsv
from radiogenomics.cohort.public import gdc, tcia
from radiogenomics.cohort.public.archive import UnsafeArchive
from radiogenomics.cohort.public.http import DownloadError, RetryPolicy
from radiogenomics.cohort.public.manifest import DownloadJournal

LOG = logging.getLogger(__name__)
EXCLUSION_COLUMNS = ["patient_id", "stage", "reason", "file", "fix"]
# What reading a downloaded GDC file that verified but does not parse raises.
UNREADABLE = (ValueError, OSError, EOFError, zlib.error, gzip.BadGzipFile)


def fetch_public_cohort(
    cfg: dict,
    raw_dir: str | Path,
    workdir: str | Path = ".",
    session: requests.Session | None = None,
    on_bad_case: str = "exclude",
) -> dict:
    """Run the whole acquisition described by the ``cohort`` config section (source: public).

    Returns a summary: patient ids kept, the exclusion table and the number of downloads
    made by this run (0 when a complete acquisition is rerun). Rerunning keeps everything
    already verified on disk and resumes partial files.
    """
    raw_dir, workdir = Path(raw_dir), Path(workdir)
    session = session or requests.Session()
    policy = RetryPolicy.from_config(cfg.get("download"))
    tcia_cfg, gdc_cfg = cfg["tcia"], cfg["gdc"]
    journal = DownloadJournal(raw_dir / "downloads.tsv", workdir)
    exclusions: list[dict] = []
    fetched = []

    def record(result, **fields) -> None:
        journal.record(result, **fields)
        fetched.append(result.fetched)

    def exclude(error: BadCase) -> None:
        if on_bad_case == "fail":
            raise error
        LOG.warning("%s", error)
        exclusions.append(error.as_record())

    try:
        patients = _acquire_ct(tcia_cfg, raw_dir, session, policy, record, exclude)
        client = gdc.GdcClient(
            gdc_cfg.get("base_url", gdc.DEFAULT_BASE_URL),
            session,
            policy,
            page_size=int(gdc_cfg.get("page_size", 500)),
        )
        clinical = _acquire_clinical(client, gdc_cfg, cfg, patients, exclude)
        kept = sorted(set(patients) & set(clinical["patient_id"]))
        # Disabled parts still write empty tables, so the rule's outputs always exist.
        star = _gdc_files(
            client, gdc_cfg, kept, raw_dir, record, exclude, "expression", "star_counts"
        )
        mafs = _gdc_files(
            client, gdc_cfg, kept, raw_dir, record, exclude, "mutations", "masked_maf"
        )
        lost = star.lost | mafs.lost
        kept = [p for p in kept if p not in lost]
        write_tsv(
            clinical[clinical["patient_id"].isin(kept)].reset_index(drop=True),
            raw_dir / "clinical.tsv",
        )
        _write_image_manifest(tcia_cfg, patients, kept, raw_dir, workdir)
        if gdc_cfg.get("slides", False):
            _acquire_slides(client, gdc_cfg, kept, raw_dir, workdir, record)
        _write_expression(star.files[star.files["patient_id"].isin(kept)], gdc_cfg, raw_dir)
        write_tsv(
            gdc.combine_mafs([t for pid, t in mafs.tables if pid in kept]),
            raw_dir / "mutations.maf",
        )
    finally:
        journal.write()
        write_tsv(
            pd.DataFrame(exclusions, columns=EXCLUSION_COLUMNS),
            raw_dir / "acquisition_exclusions.tsv",
        )
    return {
        "patients": kept,
        "exclusions": pd.DataFrame(exclusions, columns=EXCLUSION_COLUMNS),
        "downloads": sum(fetched),
    }


def _acquire_ct(tcia_cfg, raw_dir, session, policy, record, exclude) -> dict:
    """Download the chosen series; returns {patient_id: {phase: folder}} for usable patients."""
    client = tcia.TciaClient(tcia_cfg.get("base_url", tcia.DEFAULT_BASE_URL), session, policy)
    rules = tcia.SeriesRules.from_config(tcia_cfg.get("series_rules"))
    phases = list(tcia_cfg.get("phases", ["arterial", "venous"]))
    required = list(tcia_cfg.get("required_phases", phases))
    collection = tcia_cfg["collection"]
    wanted = tcia_cfg.get("patients") or []
    listed = (
        pd.concat([client.get_series(collection, p) for p in wanted], ignore_index=True)
        if wanted
        else client.get_series(collection)
    )
    table = tcia.choose_series(
        listed, rules, phases, tcia.read_overrides(tcia_cfg.get("overrides"))
    )
    result: dict[str, dict[str, Path]] = {}
    for pid in sorted(set(table["PatientID"]) | set(wanted)):
        try:
            check_patient_id(pid, "TCIA getSeries")
        except BadCase as error:
            exclude(error)
            continue
        mine = table[table["PatientID"] == pid]
        folders = {}
        try:
            for row in mine[mine["chosen_for"] != ""].itertuples():
                dest = raw_dir / "dicom" / pid / row.chosen_for
                fetched = client.download_series(
                    row.SeriesInstanceUID, dest, int(row.ImageCount), pid
                )
                _record_series(record, fetched, row.SeriesInstanceUID)
                folders[row.chosen_for] = dest
            if tcia_cfg.get("resolve_unknown_with_dicom", True):
                _resolve_unknown(client, rules, mine, pid, phases, folders, raw_dir, record, table)
            for folder in sorted(folders.values()):
                tcia.check_series_geometry(folder, tcia.series_uid_of(folder), pid)
        except (DownloadError, UnsafeArchive) as error:
            exclude(
                BadCase(
                    pid,
                    client.base_url,
                    f"CT download failed: {error}",
                    "rerun to resume; if it persists, add a series override",
                    stage="acquire",
                )
            )
            continue
        except BadCase as error:
            exclude(error)
            continue
        missing = [p for p in required if p not in folders]
        if missing:
            exclude(
                BadCase(
                    pid,
                    f"TCIA {collection}",
                    f"no CT series for phase(s) {missing}",
                    "add a row to the series override table if a series fits",
                    stage="acquire",
                )
            )
            continue
        result[pid] = folders
    write_tsv(table, raw_dir / "tcia" / "series.tsv")
    return result


def _record_series(record, result, series_uid: str) -> None:
    record(
        result,
        source="TCIA",
        api_version=tcia.API_VERSION,
        item_id=series_uid,
        kind="dicom_series",
    )


def _resolve_unknown(client, rules, mine, pid, phases, folders, raw_dir, record, table):
    """Series whose description names no phase: read ContrastBolusAgent from their header.

    A series is probed in ``tcia/probe/<uid>``; once its header names a wanted phase it moves
    to ``dicom/<patient>/<phase>``, where a rerun finds it (by its SeriesInstanceUID) instead
    of probing it again.
    """
    unknown = mine[(mine["phase"] == "unknown") & mine["eligible"]].sort_values(
        ["ImageCount", "SeriesInstanceUID"], ascending=[False, True]
    )
    patient_dir = raw_dir / "dicom" / pid
    for row in unknown.itertuples():
        if all(p in folders for p in phases):
            return
        uid = row.SeriesInstanceUID
        placed = [patient_dir / p for p in phases if p not in folders]
        folder = next(
            (f for f in placed if tcia.series_uid_of(f) == uid),
            raw_dir / "tcia" / "probe" / uid,
        )
        probed = client.download_series(uid, folder, int(row.ImageCount), pid)
        phase = tcia.classify_phase(
            row.SeriesDescription, rules, tcia.contrast_agent_from_header(folder)
        )
        table.loc[row.Index, "phase"] = phase
        if phase in phases and phase not in folders:
            dest = patient_dir / phase
            if folder != dest:
                tcia.move_series_folder(folder, dest)
                probed = dataclasses.replace(probed, path=dest)
            table.loc[row.Index, "chosen_for"] = phase
            folders[phase] = dest
        _record_series(record, probed, uid)


def _acquire_clinical(client, gdc_cfg, cfg, patients, exclude) -> pd.DataFrame:
    fallback_path = gdc_cfg.get("grade_fallback")
    fallback = pd.read_csv(fallback_path, sep="\t", dtype=str) if fallback_path else None
    clinical = gdc.harmonise_clinical(
        client.get_cases(gdc_cfg["project"]),
        site=gdc_cfg.get("site", gdc_cfg["project"]),
        grade_fallback=fallback,
    )
    known = set(clinical["patient_id"]) if len(clinical) else set()
    for pid in sorted(set(patients) - known):
        exclude(
            BadCase(
                pid,
                f"GDC {gdc_cfg['project']}",
                "no GDC case with this submitter_id",
                "check that the TCIA PatientID is the TCGA case barcode",
                stage="acquire",
            )
        )
    min_days = cfg.get("min_os_days")
    if min_days is not None and len(clinical):
        short = clinical["patient_id"].isin(patients) & (clinical["os_days"] < float(min_days))
        for pid in clinical.loc[short, "patient_id"]:
            exclude(
                BadCase(
                    pid,
                    f"GDC {gdc_cfg['project']}",
                    f"survival shorter than {min_days} days (study exclusion rule)",
                    "none: excluded by the study protocol",
                    stage="acquire",
                )
            )
        clinical = clinical[~short]
    return clinical if len(clinical) else pd.DataFrame(columns=["patient_id"])


def _write_image_manifest(tcia_cfg, patients, kept, raw_dir, workdir) -> None:
    phases = list(tcia_cfg.get("phases", ["arterial", "venous"]))
    rows = []
    for pid in kept:
        row = {
            "patient_id": pid,
            "site": tcia_cfg.get("site", tcia_cfg["collection"]),
            "format": "dicom",
        }
        for phase in phases:
            folder = patients[pid].get(phase)
            row[phase] = "" if folder is None else Path(os.path.relpath(folder, workdir)).as_posix()
        row["mask"] = ""  # TCGA-KIRC has no reference masks: the segment stage makes them
        rows.append(row)
    write_tsv(
        pd.DataFrame(rows, columns=["patient_id", "site", "format", *phases, "mask"]),
        raw_dir / "manifest.tsv",
    )


@dataclasses.dataclass
class GdcFiles:
    files: pd.DataFrame  # the file table (file_id, file_name, patient_id, sample_id, ...)
    lost: set  # patients excluded for a file that could not be downloaded or read
    tables: list  # (patient_id, parsed table) for MAFs; empty for counts


def _gdc_files(client, gdc_cfg, patients, raw_dir, record, exclude, part, kind) -> GdcFiles:
    """Find, download and check one kind of GDC file for ``patients``.

    A file that fails after every retry, or verifies but does not parse, excludes its
    patient (an exclusions row naming the file) instead of stopping the acquisition.
    """
    if not gdc_cfg.get(part, True) or not patients:
        return GdcFiles(pd.DataFrame(columns=gdc.FILE_TABLE_COLUMNS), set(), [])
    if kind == "star_counts":
        files = client.find_star_counts(
            gdc_cfg["project"], tuple(gdc_cfg.get("sample_types", ["Primary Tumor"]))
        )
        files = files[files["patient_id"].isin(patients)].drop_duplicates("sample_id")
        read = gdc.read_star_counts
    else:
        files = client.find_masked_mafs(gdc_cfg["project"])
        files = files[files["patient_id"].isin(patients)]
        read = gdc.read_maf
    files = files.drop_duplicates("file_id").reset_index(drop=True)
    dest_dir = raw_dir / "gdc" / "files"
    failures = _download_gdc_files(client, files, dest_dir, gdc_cfg, record, kind)
    lost, tables = set(), []
    for row in files.itertuples(index=False):
        path = dest_dir / row.file_id / row.file_name
        error = failures.get(row.file_id)
        fix = "rerun to resume; if it persists, report the file to the GDC help desk"
        if error is None:
            try:
                table = read(path)
            except UNREADABLE as unreadable:
                error = unreadable
                fix = "the file verifies against GDC's md5sum: report it to the GDC help desk"
        if error is not None:
            exclude(
                BadCase(
                    row.patient_id,
                    path,
                    f"GDC {kind} file {row.file_id} unusable: {error}",
                    f"{fix}, or set cohort.gdc.{part}: false",
                    stage="acquire",
                )
            )
            lost.add(row.patient_id)
        elif kind == "masked_maf":
            tables.append((row.patient_id, table))
    return GdcFiles(files, lost, tables)


def _download_gdc_files(client, files, dest_dir, gdc_cfg, record, kind) -> dict:
    """Download ``files`` in batches, journalling each; returns {file_id: error} of failures."""
    _, failures = client.download_files(
        files,
        dest_dir,
        batch_size=int(gdc_cfg.get("batch_size", 50)),
        on_result=lambda result: record(
            result,
            source="GDC",
            api_version=gdc.API_VERSION,
            item_id=result.path.parent.name,
            kind=kind,
        ),
    )
    return failures


def _write_expression(files: pd.DataFrame, gdc_cfg: dict, raw_dir: Path) -> None:
    paths = {
        r.sample_id: raw_dir / "gdc" / "files" / r.file_id / r.file_name for r in files.itertuples()
    }
    if not paths:
        if gdc_cfg.get("expression", True):
            LOG.warning("no STAR counts files for the cohort; expression tables are empty")
        counts = pd.DataFrame(columns=["gene"])
        genes = pd.DataFrame(columns=["gene_id", "gene_name", "gene_type"])
    else:
        counts, genes = gdc.build_counts_matrix(paths, gdc_cfg.get("gene_key", "gene_name"))
    write_tsv(counts, raw_dir / "expression" / "counts.tsv")
    write_tsv(genes, raw_dir / "expression" / "genes.tsv")
    write_tsv(
        files[["sample_id", "patient_id"]].sort_values("sample_id", ignore_index=True),
        raw_dir / "expression" / "samples.tsv",
    )


def _acquire_slides(client, gdc_cfg, patients, raw_dir, workdir, record) -> None:
    """One diagnostic slide per patient (the first by file name, e.g. DX1), checksummed like
    every GDC file, named in the manifest column ``slide``. A patient whose slide is missing or
    fails to download keeps an empty cell: left out of pathomics, not of the cohort."""
    files = client.find_diagnostic_slides(
        gdc_cfg["project"], tuple(gdc_cfg.get("sample_types", ["Primary Tumor"]))
    )
    files = files[files["patient_id"].isin(patients)].sort_values(["patient_id", "file_name"])
    files = files.drop_duplicates("patient_id").reset_index(drop=True)
    dest_dir = raw_dir / "gdc" / "files"
    failures = _download_gdc_files(client, files, dest_dir, gdc_cfg, record, "diagnostic_slide")
    slide_of = {}
    for row in files.itertuples(index=False):
        path = dest_dir / row.file_id / row.file_name
        if row.file_id in failures:
            LOG.warning(
                "%s: slide %s not downloaded: %s", row.patient_id, path, failures[row.file_id]
            )
            continue
        slide_of[row.patient_id] = Path(os.path.relpath(path, workdir)).as_posix()
    manifest = pd.read_csv(raw_dir / "manifest.tsv", sep="\t", dtype=str, keep_default_na=False)
    manifest["slide"] = manifest["patient_id"].map(slide_of).fillna("")
    write_tsv(manifest, raw_dir / "manifest.tsv")
