"""Acquire a public cohort: TCIA CT series + GDC clinical, counts and mutations -> results/raw/.

Writes the internal files CONTRIBUTING.md defines (``manifest.tsv`` with DICOM folders,
``clinical.tsv``, ``expression/counts.tsv`` + ``samples.tsv``, ``mutations.maf``) plus
``downloads.tsv`` (the downloads manifest), ``tcia/series.tsv`` (every listed series with its
phase and the choice made) and ``acquisition_exclusions.tsv`` (patients dropped, with reason).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
import requests

from radiogenomics.cases import BadCase, check_patient_id
from radiogenomics.io import write_tsv
from radiogenomics.public import gdc, tcia
from radiogenomics.public.archive import UnsafeArchive
from radiogenomics.public.http import DownloadError, RetryPolicy
from radiogenomics.public.manifest import manifest_record, update_manifest

LOG = logging.getLogger(__name__)
EXCLUSION_COLUMNS = ["patient_id", "stage", "reason", "file", "fix"]


def fetch_public_cohort(
    cfg: dict,
    raw_dir: str | Path,
    workdir: str | Path = ".",
    session: requests.Session | None = None,
    on_bad_case: str = "exclude",
) -> dict:
    """Run the whole acquisition described by the ``cohort`` config section (source: public).

    Returns a summary: patient ids kept, the exclusion table and the number of downloads.
    Rerunning skips everything already verified on disk and resumes partial files.
    """
    raw_dir, workdir = Path(raw_dir), Path(workdir)
    session = session or requests.Session()
    policy = RetryPolicy.from_config(cfg.get("download"))
    tcia_cfg, gdc_cfg = cfg["tcia"], cfg["gdc"]
    exclusions: list[dict] = []
    records: list[dict] = []

    def exclude(error: BadCase) -> None:
        if on_bad_case == "fail":
            raise error
        LOG.warning("%s", error)
        exclusions.append(error.as_record())

    try:
        patients = _acquire_ct(tcia_cfg, raw_dir, workdir, session, policy, records, exclude)
        clinical = _acquire_clinical(gdc_cfg, cfg, patients, raw_dir, session, policy, exclude)
        kept = sorted(set(patients) & set(clinical["patient_id"]))
        write_tsv(
            clinical[clinical["patient_id"].isin(kept)].reset_index(drop=True),
            raw_dir / "clinical.tsv",
        )
        _write_image_manifest(tcia_cfg, patients, kept, raw_dir, workdir)
        client = gdc.GdcClient(
            gdc_cfg.get("base_url", gdc.DEFAULT_BASE_URL),
            session,
            policy,
            page_size=int(gdc_cfg.get("page_size", 500)),
        )
        # Disabled parts still write empty tables, so the rule's outputs always exist.
        expression_patients = kept if gdc_cfg.get("expression", True) else []
        _acquire_expression(client, gdc_cfg, expression_patients, raw_dir, workdir, records)
        mutation_patients = kept if gdc_cfg.get("mutations", True) else []
        _acquire_mutations(client, gdc_cfg, mutation_patients, raw_dir, workdir, records)
        if gdc_cfg.get("slides", False):
            _acquire_slides(client, gdc_cfg, kept, raw_dir, workdir, records)
    finally:
        if records or not (raw_dir / "downloads.tsv").exists():
            update_manifest(raw_dir / "downloads.tsv", records)
        write_tsv(
            pd.DataFrame(exclusions, columns=EXCLUSION_COLUMNS),
            raw_dir / "acquisition_exclusions.tsv",
        )
    return {
        "patients": kept,
        "exclusions": pd.DataFrame(exclusions, columns=EXCLUSION_COLUMNS),
        "downloads": len(records),
    }


def _acquire_ct(tcia_cfg, raw_dir, workdir, session, policy, records, exclude) -> dict:
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
                folders[row.chosen_for] = _fetch_series(
                    client, row, pid, row.chosen_for, raw_dir, workdir, records
                )
            if tcia_cfg.get("resolve_unknown_with_dicom", True):
                _resolve_unknown(
                    client, rules, mine, pid, phases, folders, raw_dir, workdir, records, table
                )
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


def _fetch_series(client, row, pid, phase, raw_dir, workdir, records) -> Path:
    dest = raw_dir / "dicom" / pid / phase
    fetched = client.download_series(row.SeriesInstanceUID, dest, int(row.ImageCount))
    if fetched.archive is not None:
        records.append(
            manifest_record(
                fetched.archive,
                source="TCIA",
                api_version=tcia.API_VERSION,
                item_id=row.SeriesInstanceUID,
                kind="dicom_series",
                local_path=dest,
                root=workdir,
            )
        )
    return dest


def _resolve_unknown(client, rules, mine, pid, phases, folders, raw_dir, workdir, records, table):
    """Series whose description names no phase: read ContrastBolusAgent from their header."""
    unknown = mine[(mine["phase"] == "unknown") & mine["eligible"]].sort_values(
        ["ImageCount", "SeriesInstanceUID"], ascending=[False, True]
    )
    for row in unknown.itertuples():
        if all(p in folders for p in phases):
            return
        probe = raw_dir / "tcia" / "probe" / row.SeriesInstanceUID
        probed = client.download_series(row.SeriesInstanceUID, probe, int(row.ImageCount))
        phase = tcia.classify_phase(
            row.SeriesDescription, rules, tcia.contrast_agent_from_header(probe)
        )
        table.loc[row.Index, "phase"] = phase
        if phase in phases and phase not in folders:
            dest = raw_dir / "dicom" / pid / phase
            dest.parent.mkdir(parents=True, exist_ok=True)
            probe.rename(dest)
            table.loc[row.Index, "chosen_for"] = phase
            folders[phase] = dest
            if probed.archive is not None:
                records.append(
                    manifest_record(
                        probed.archive,
                        source="TCIA",
                        api_version=tcia.API_VERSION,
                        item_id=row.SeriesInstanceUID,
                        kind="dicom_series",
                        local_path=dest,
                        root=workdir,
                    )
                )


def _acquire_clinical(gdc_cfg, cfg, patients, raw_dir, session, policy, exclude) -> pd.DataFrame:
    client = gdc.GdcClient(
        gdc_cfg.get("base_url", gdc.DEFAULT_BASE_URL),
        session,
        policy,
        page_size=int(gdc_cfg.get("page_size", 500)),
    )
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


def _download_project_files(client, files, gdc_cfg, raw_dir, workdir, records, kind):
    results = client.download_files(
        files, raw_dir / "gdc" / "files", batch_size=int(gdc_cfg.get("batch_size", 50))
    )
    by_path = {r.path: r for r in results}
    for row in files.itertuples(index=False):
        result = by_path[raw_dir / "gdc" / "files" / row.file_id / row.file_name]
        records.append(
            manifest_record(
                result,
                source="GDC",
                api_version=gdc.API_VERSION,
                item_id=row.file_id,
                kind=kind,
                root=workdir,
            )
        )
    return results


def _acquire_expression(client, gdc_cfg, kept, raw_dir, workdir, records) -> None:
    if not kept:
        _write_empty_expression(raw_dir)
        return
    files = client.find_star_counts(
        gdc_cfg["project"], tuple(gdc_cfg.get("sample_types", ["Primary Tumor"]))
    )
    files = files[files["patient_id"].isin(kept)].drop_duplicates("sample_id")
    files = files.drop_duplicates("file_id").reset_index(drop=True)
    _download_project_files(client, files, gdc_cfg, raw_dir, workdir, records, "star_counts")
    paths = {
        r.sample_id: raw_dir / "gdc" / "files" / r.file_id / r.file_name for r in files.itertuples()
    }
    if not paths:
        LOG.warning("no STAR counts files for the cohort; expression tables are empty")
        _write_empty_expression(raw_dir)
        return
    counts, genes = gdc.build_counts_matrix(paths, gdc_cfg.get("gene_key", "gene_name"))
    write_tsv(counts, raw_dir / "expression" / "counts.tsv")
    write_tsv(genes, raw_dir / "expression" / "genes.tsv")
    write_tsv(
        files[["sample_id", "patient_id"]].sort_values("sample_id"),
        raw_dir / "expression" / "samples.tsv",
    )


def _write_empty_expression(raw_dir: Path) -> None:
    write_tsv(pd.DataFrame(columns=["gene"]), raw_dir / "expression" / "counts.tsv")
    write_tsv(
        pd.DataFrame(columns=["gene_id", "gene_name", "gene_type"]),
        raw_dir / "expression" / "genes.tsv",
    )
    write_tsv(
        pd.DataFrame(columns=["sample_id", "patient_id"]), raw_dir / "expression" / "samples.tsv"
    )


def _acquire_mutations(client, gdc_cfg, kept, raw_dir, workdir, records) -> None:
    if not kept:
        write_tsv(gdc.merge_mafs([]), raw_dir / "mutations.maf")
        return
    files = client.find_masked_mafs(gdc_cfg["project"])
    files = files[files["patient_id"].isin(kept)].drop_duplicates("file_id").reset_index(drop=True)
    _download_project_files(client, files, gdc_cfg, raw_dir, workdir, records, "masked_maf")
    paths = [raw_dir / "gdc" / "files" / r.file_id / r.file_name for r in files.itertuples()]
    write_tsv(gdc.merge_mafs(paths), raw_dir / "mutations.maf")


def _acquire_slides(client, gdc_cfg, kept, raw_dir, workdir, records) -> None:
    """One diagnostic slide per patient (the first by file name, e.g. DX1), checksummed like
    every GDC file, named in the manifest column ``slide`` (empty: the patient has none)."""
    files = client.find_diagnostic_slides(
        gdc_cfg["project"], tuple(gdc_cfg.get("sample_types", ["Primary Tumor"]))
    )
    files = files[files["patient_id"].isin(kept)].sort_values(["patient_id", "file_name"])
    files = files.drop_duplicates("patient_id").reset_index(drop=True)
    _download_project_files(client, files, gdc_cfg, raw_dir, workdir, records, "diagnostic_slide")
    slide_of = {
        r.patient_id: Path(
            os.path.relpath(raw_dir / "gdc" / "files" / r.file_id / r.file_name, workdir)
        ).as_posix()
        for r in files.itertuples()
    }
    manifest = pd.read_csv(raw_dir / "manifest.tsv", sep="\t", dtype=str, keep_default_na=False)
    manifest["slide"] = manifest["patient_id"].map(slide_of).fillna("")
    write_tsv(manifest, raw_dir / "manifest.tsv")
