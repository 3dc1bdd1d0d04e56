"""A mask a reader drew on any phase of a patient, carried onto the analysis grid.

A radiologist corrects a segmentation (``segmentation.corrections``), or a second reader
re-draws the tumour (``features.robustness.second_reader``), on the series they read: often a
raw, unregistered phase such as the arterial series, not the reference phase whose grid is the
analysis grid. Resampling such a mask in physical coordinates would leave it off by the
patient's motion between the phases (the misalignment the registration corrects).

The phase is recognised by the mask's grid: a viewer exports a mask on the grid of the series
it was drawn on, and the phases of one patient are separate acquisitions on different grids
(their z range and slice count differ). ``registration.json`` records every raw phase's grid
next to its transform; the analysis grid (``results/imaging/{patient}/*.nii.gz``, the
registered phases) is the grid ``analysis``. A mask on a raw phase's grid goes through that
phase's transform (reference -> phase, as the imaging stage resamples the phase itself), a mask
on the analysis grid through the identity; both by nearest neighbour.

Two raw phases may share one grid (the same planned scan range and reconstruction); when the
matching phases' transforms differ, the grid cannot tell them apart and the reader says which
phase it was in a sidecar ``{patient_id}.json`` beside the mask: ``{"phase": "arterial"}``
(a phase of ``imaging.phases``, or ``analysis``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.cases import BadCase
from ..core.config import drawn_phase_sidecar
from .ct import describe_geometry, geometry, same_geometry
from .registration import transform_from_record

ANALYSIS = "analysis"


def declared_phase(patient_id: str, sidecar, what: str, stage: str) -> str | None:
    """The phase a sidecar names (None without a sidecar)."""
    if not sidecar:
        return None
    try:
        phase = json.loads(Path(sidecar).read_text())["phase"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BadCase(
            patient_id, str(sidecar), f"the {what}'s sidecar cannot be read ({type(error).__name__}: {error})",
            'write it as JSON {"phase": "<phase the mask was drawn on>"}, or delete it', stage=stage,
        ) from error  # fmt: skip
    return str(phase)


def phase_grids(registration: dict, path) -> dict[str, dict]:
    """{phase: native grid} from a registration.json record."""
    phases = registration.get("phases") or {}
    if not phases or any("grid" not in entry for entry in phases.values()):
        raise ValueError(
            f"{path}: registration.json records no phase grids (written by an older version of the "
            "workflow); rerun the registration: snakemake --forcerun register_phases"
        )
    return {phase: entry["grid"] for phase, entry in phases.items()}


def drawn_phase(
    patient_id: str, mask: sitk.Image, path, registration: dict, analysis: sitk.Image,
    declared: str | None = None, what: str = "corrected mask", stage: str = "segment",
    registration_path="registration.json",
) -> str:  # fmt: skip
    """The phase ``mask`` was drawn on: ``analysis`` or a phase of ``registration``.

    Raises BadCase naming the file when the mask lies on no phase's grid, when the sidecar
    (``declared``) names a phase whose grid the mask does not lie on, or when phases with
    different transforms share the mask's grid and no sidecar says which one it is.
    """
    grids = {ANALYSIS: geometry(analysis), **phase_grids(registration, registration_path)}
    found = geometry(mask)
    matching = [name for name, grid in grids.items() if same_geometry(found, grid)]
    sidecar = drawn_phase_sidecar(path)
    if declared is not None:
        if declared not in grids:
            raise BadCase(
                patient_id, str(sidecar),
                f"the {what}'s sidecar names phase {declared!r}, not one of {sorted(grids)}",
                f"name the phase the mask was drawn on: one of {sorted(grids)}", stage=stage,
            )  # fmt: skip
        if declared not in matching:
            raise BadCase(
                patient_id, str(path),
                f"the {what} is said to be drawn on {declared} (sidecar {sidecar.name}) but is not on "
                f"its grid (mask: {describe_geometry(found)}; {declared}: {describe_geometry(grids[declared])})",
                "export the mask on the series it was drawn on, or correct the sidecar's phase", stage=stage,
            )  # fmt: skip
        return declared
    if not matching:
        listed = "; ".join(f"{name}: {describe_geometry(grid)}" for name, grid in grids.items())
        raise BadCase(
            patient_id, str(path),
            f"the {what} lies on none of this patient's phase grids (mask: {describe_geometry(found)}; {listed})",
            "export the mask on the series it was drawn on (one of the patient's phases as given to the "
            f"workflow, or results/imaging/{patient_id}/ct.nii.gz), without resampling or cropping it",
            stage=stage,
        )  # fmt: skip
    transforms = {name: _transform_key(registration, name) for name in matching}
    if len(set(transforms.values())) > 1:
        raise BadCase(
            patient_id, str(path),
            f"the {what} lies on a grid that phases {', '.join(matching)} share, and their registrations "
            "differ, so the grid does not tell which phase it was drawn on",
            f'write {sidecar.name} beside it: {{"phase": "<one of {", ".join(matching)}>"}}', stage=stage,
        )  # fmt: skip
    return matching[0]


def _transform_key(registration: dict, phase: str) -> tuple:
    if phase == ANALYSIS:
        return _identity_key()
    record = registration["phases"][phase]["transform"]
    transform = transform_from_record(record)
    if _is_identity(transform):
        return _identity_key()
    return (record["type"], tuple(record["parameters"]), tuple(record["fixed_parameters"]))


def _identity_key() -> tuple:
    return ("identity",)


def _is_identity(transform: sitk.Transform) -> bool:
    matrix = np.asarray(transform.GetMatrix()).reshape(3, 3)
    return bool(np.allclose(matrix, np.eye(3), atol=1e-12) and np.allclose(transform.GetTranslation(), 0.0, atol=1e-9))


def phase_transform(registration: dict, phase: str) -> sitk.Transform:
    """Reference-phase physical point -> the same anatomy in ``phase``'s scan (identity for
    the analysis grid, whose voxels are reference-phase points)."""
    if phase == ANALYSIS:
        return sitk.Transform()
    return transform_from_record(registration["phases"][phase]["transform"])


def carried_to_analysis_grid(
    patient_id: str, mask: sitk.Image, path, registration: dict, analysis: sitk.Image,
    declared: str | None = None, what: str = "corrected mask", stage: str = "segment",
    registration_path="registration.json",
) -> tuple[sitk.Image, str]:  # fmt: skip
    """``mask > 0`` (uint8) on the analysis grid through the registration of the phase it was
    drawn on (nearest neighbour), and that phase. An empty result is a BadCase."""
    phase = drawn_phase(patient_id, mask, path, registration, analysis, declared, what, stage, registration_path)
    binary = sitk.Cast(mask > 0, sitk.sitkUInt8)
    carried = sitk.Resample(
        binary, analysis, phase_transform(registration, phase), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8
    )
    if not np.any(sitk.GetArrayViewFromImage(carried)):
        raise BadCase(
            patient_id, str(path),
            f"the {what} (drawn on {phase}) is empty on the analysis grid",
            "check that the mask holds the tumour (non-zero voxels) inside the analysed field of view",
            stage=stage,
        )  # fmt: skip
    return carried, phase
