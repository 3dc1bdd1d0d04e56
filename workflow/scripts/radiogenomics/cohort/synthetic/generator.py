"""The synthetic ccRCC cohort: the embedded default study, with planted, recoverable structure.

Each patient has a latent aggressiveness z ~ N(0, 1). Tumour size, invasion (-> perinephric fat
stranding, T3+), grade, necrotic fraction, texture heterogeneity, survival, expression and
mutations all follow from z (see design.md, "The synthetic cohort"). Every per-patient draw uses
its own generator seeded by (seed, stream, patient number), so a patient's values do not depend
on how many patients are simulated.

Images: :mod:`radiogenomics.cohort.synthetic.phantoms`; omics: :mod:`radiogenomics.cohort.synthetic.omics`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import phantoms as synthetic_images, omics as synthetic_omics
from ...core.io import write_tsv
from .phantoms import PHASES, TRUE_K, TUMOUR_MARGIN_MM, write_phantom  # noqa: F401  (public API)

DEFAULTS = {
    "seed": 20240101,
    "n_internal": 160,
    "n_external": 40,
    "n_genes": 2000,
    "n_de_up": 40,
    "n_de_down": 25,  # fewer down than up genes, as in S1 (260 up / 187 down)
    "bad_cases": {},
}
DEFECTS = ("empty_mask", "missing_phase", "touching_border", "unreadable", "off_grid_mask")

# Scanner profiles: native spacing (x, y, z) mm, noise sd HU, HU offset. C is the external site.
SITES = {
    "A": {"spacing": (0.7, 0.7, 1.25), "noise_sd": 8.0, "hu_offset": 0.0},
    "B": {"spacing": (0.8, 0.8, 2.5), "noise_sd": 12.0, "hu_offset": 5.0},
    "C": {"spacing": (0.9, 0.9, 5.0), "noise_sd": 15.0, "hu_offset": -8.0},
}
FOV_MM = (150.0, 120.0, 90.0)
SIZE_RANGE_CM = (1.8, 9.5)
NECROSIS_RANGE = (0.02, 0.45)
NECROSIS_THRESHOLD = 0.2
MIN_NECROTIC_RADIUS_MM = 4.0
TEXTURE_RANGE_HU = (6.0, 20.0)
DICOM_PERIOD = 6  # every sixth patient is written as a DICOM series

# Survival: Weibull proportional hazards, h(t) = (k / lam) (t / lam)^(k-1) exp(risk).
LOG_HR_Z = 0.9
LOG_HR_T3 = 0.5
WEIBULL_SHAPE = 1.3
OS_SCALE_MONTHS = 110.0
RECURRENCE_SCALE_MONTHS = 80.0
FOLLOW_UP_MONTHS = (24.0, 100.0)
DROPOUT_MEAN_MONTHS = 300.0

STREAM_PATIENT = 1
STREAM_PHANTOM = 2
STREAM_STRANDING = 3
STREAM_PHASE_MOTION = 4
# Between the acquisitions of two phases the patient moves and the scan range differs: every
# non-reference phase gets a rigid misalignment (uniform per axis) and its own z extent.
MOTION_TRANSLATION_MM = 4.0
MOTION_ROTATION_DEG = 3.0
PHASE_Z_SCALE = (0.8, 1.25)  # z extent relative to the reference phase's
# Perinephric fat stranding on CT is an imperfect sign of invasion (pT3a): microscopic invasion
# is often not visible, and oedema or inflammation strands the fat around some pT1-2 tumours.
STRANDING_SHOWN = {True: 0.8, False: 0.15}  # P(visible stranding | invasive tumour or not)
STRANDING_STRENGTH = {True: (0.4, 1.0), False: (0.2, 0.6)}  # fraction of full streak contrast


def _stranding_strength(seed: int, number: int, invasive: bool) -> float:
    """Contrast of the perinephric streaks (0 = none), from its own random stream so that the
    clinical variables do not depend on it."""
    rng = np.random.default_rng([seed, STREAM_STRANDING, number])
    if rng.uniform() >= STRANDING_SHOWN[invasive]:
        return 0.0
    return round(float(rng.uniform(*STRANDING_STRENGTH[invasive])), 4)


def _phase_motion(seed: int, number: int, reference_phase: str) -> dict:
    """Planted misalignment and scan range per phase, from their own random stream (so every
    other planted value is unchanged); the reference phase is the phantom's own frame."""
    rng = np.random.default_rng([seed, STREAM_PHASE_MOTION, number])
    motion = {}
    for phase in PHASES:
        moved = phase != reference_phase
        angles = rng.uniform(-MOTION_ROTATION_DEG, MOTION_ROTATION_DEG, 3)
        translation = rng.uniform(-MOTION_TRANSLATION_MM, MOTION_TRANSLATION_MM, 3)
        scale, position = rng.uniform(*PHASE_Z_SCALE), rng.uniform(-1.0, 1.0)
        for axis, angle, shift in zip("xyz", angles, translation, strict=True):
            motion[f"{phase}_angle_{axis}_deg"] = round(float(angle), 4) if moved else 0.0
            motion[f"{phase}_translation_{axis}_mm"] = round(float(shift), 4) if moved else 0.0
        motion[f"{phase}_z_scale"] = round(float(scale), 4) if moved else 1.0
        motion[f"{phase}_z_position"] = round(float(position), 4) if moved else 0.0
    return motion


def phase_transform_table(phantoms: pd.DataFrame) -> pd.DataFrame:
    """results/truth/phase_transforms.tsv: the planted rigid misalignment per patient and phase.

    SimpleITK Euler3DTransform(center, angle_x, angle_y, angle_z, translation) mapping a physical
    point of the reference phase to the same anatomy in this phase's scan (what registering the
    phase to the reference recovers); the reference phase's row is the identity.
    """
    rows = []
    for _, row in phantoms.iterrows():
        for phase in PHASES:
            rows.append({
                "patient_id": row["patient_id"],
                "phase": phase,
                "reference_phase": row["reference_phase"],
                "center_x_mm": 0.0, "center_y_mm": 0.0, "center_z_mm": 0.0,
                **{f"angle_{a}_deg": row[f"{phase}_angle_{a}_deg"] for a in "xyz"},
                **{f"translation_{a}_mm": row[f"{phase}_translation_{a}_mm"] for a in "xyz"},
            })  # fmt: skip
    return pd.DataFrame(rows)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def resolve_params(params: dict | None) -> dict:
    resolved = {**DEFAULTS, **(params or {})}
    resolved["bad_cases"] = {k: list(v) for k, v in (resolved.get("bad_cases") or {}).items()}
    unknown = set(resolved["bad_cases"]) - set(DEFECTS)
    if unknown:
        raise ValueError(f"unknown bad_cases defects {sorted(unknown)}; choose from {DEFECTS}")
    return resolved


def patient_ids(params: dict) -> list[str]:
    n = int(params["n_internal"]) + int(params["n_external"])
    return [f"SYN{i:04d}" for i in range(1, n + 1)]


def _t_stage(size_cm: float, invasion: bool, rng: np.random.Generator, z: float) -> str:
    if invasion:
        u = rng.uniform()
        if u < 0.06:
            return "T4"
        return "T3b" if u < 0.06 + 0.3 * _sigmoid(z - 1.0) else "T3a"
    if size_cm <= 4.0:
        return "T1a"
    if size_cm <= 7.0:
        return "T1b"
    return "T2a" if size_cm <= 10.0 else "T2b"


def _survival(rng, risk):
    """Weibull PH event times (inverse transform), administrative + random censoring."""
    death = OS_SCALE_MONTHS * (-np.log(rng.uniform()) / np.exp(risk)) ** (1 / WEIBULL_SHAPE)
    recurrence = RECURRENCE_SCALE_MONTHS * (-np.log(rng.uniform()) / np.exp(risk)) ** (
        1 / WEIBULL_SHAPE
    )
    censor = min(rng.uniform(*FOLLOW_UP_MONTHS), rng.exponential(DROPOUT_MEAN_MONTHS))
    first = min(death, recurrence)
    return {
        "os_months": round(min(death, censor), 2),
        "os_event": int(death <= censor),
        "dfs_months": round(min(first, censor), 2),
        "dfs_event": int(first <= censor),
    }


def _phantom_geometry(rng, size_cm, site, touching_border):
    lobulation_seed = int(rng.integers(2**31))
    shape = synthetic_images.shape_summary(lobulation_seed)
    radius = size_cm * 10.0 / shape["caliper"]
    r_max = radius * shape["rho_max"]
    fov = np.maximum(FOV_MM, np.ceil(2 * (r_max + TUMOUR_MARGIN_MM) + 2))
    room = fov / 2 - r_max - TUMOUR_MARGIN_MM
    centre = rng.uniform(-room, room)
    if touching_border:
        centre[0] = -fov[0] / 2 + 0.5 * r_max
    # The kidney sits beside the tumour so the tumour bulges out of it into perirenal fat.
    angle = rng.uniform(0, 2 * np.pi)
    offset = np.array([np.cos(angle), np.sin(angle), 0.0])
    kidney = centre + offset * (0.8 * synthetic_images.KIDNEY_SEMI_AXES_MM[:2].mean())
    spacing = SITES[site]["spacing"]
    return {
        "spacing_x": spacing[0],
        "spacing_y": spacing[1],
        "spacing_z": spacing[2],
        "fov_x": fov[0],
        "fov_y": fov[1],
        "fov_z": fov[2],
        "centre_x": round(centre[0], 3),
        "centre_y": round(centre[1], 3),
        "centre_z": round(centre[2], 3),
        "radius_mm": round(radius, 4),
        "lobulation_seed": lobulation_seed,
        "kidney_x": round(kidney[0], 3),
        "kidney_y": round(kidney[1], 3),
        "kidney_z": round(kidney[2], 3),
        "phantom_seed": int(rng.integers(2**31)),
    }


def _simulate_patient(seed, number, patient_id, internal, defect, reference_phase, mask_phase):
    rng = np.random.default_rng([seed, STREAM_PATIENT, number])
    z = rng.normal()
    site = ("A" if rng.uniform() < 0.5 else "B") if internal else "C"
    low, high = SIZE_RANGE_CM
    size_cm = low + (high - low) * _sigmoid(1.1 * z + 0.5 * rng.normal() - 0.1)
    invasion = bool(rng.uniform() < _sigmoid(-1.0 + 1.3 * z))
    t_stage = _t_stage(size_cm, invasion, rng, z)
    t3_plus = int(t_stage.startswith(("T3", "T4")))
    grade = int(np.digitize(z + 0.6 * rng.normal(), [-1.0, 0.0, 1.0]) + 1)
    necrotic = NECROSIS_RANGE[0] + (NECROSIS_RANGE[1] - NECROSIS_RANGE[0]) * _sigmoid(
        1.8 * z + 0.4 * rng.normal() - 0.2
    )
    risk = LOG_HR_Z * z + LOG_HR_T3 * t3_plus
    survival = _survival(rng, risk)
    clinical = {
        "patient_id": patient_id,
        "site": site,
        **survival,
        "t_stage": t_stage,
        "t_group": "high" if t3_plus else "low",
        "grade": grade,
        "necrosis": 0,
        "size_cm": round(size_cm, 2),
        "age": int(np.clip(np.round(rng.normal(61 + 2 * z, 10)), 25, 90)),
        "sex": "M" if rng.uniform() < 0.65 else "F",
        "ecog": int(np.digitize(0.5 * z + rng.normal(), [0.8, 1.8])),
        "bmi": round(float(np.clip(rng.normal(27, 4.5), 16, 45)), 1),
        "mvi": int(rng.uniform() < _sigmoid(-1.5 + 1.0 * z)),
        "m_stage": int(rng.uniform() < _sigmoid(-2.8 + 1.0 * z)),
        "n_stage": int(rng.uniform() < _sigmoid(-3.0 + 0.8 * z)),
    }
    texture = TEXTURE_RANGE_HU[0] + (TEXTURE_RANGE_HU[1] - TEXTURE_RANGE_HU[0]) * _sigmoid(
        1.5 * z + 0.3 * rng.normal()
    )
    intermediate = rng.uniform(0.12, 0.25)

    stranding = _stranding_strength(seed, number, bool(t3_plus))
    geometry_rng = np.random.default_rng([seed, STREAM_PHANTOM, number])
    geometry = _phantom_geometry(geometry_rng, size_cm, site, defect == "touching_border")
    # A necrotic core smaller than ~8 mm across would vanish on 5 mm slices.
    necrotic = max(necrotic, (MIN_NECROTIC_RADIUS_MM / geometry["radius_mm"]) ** 3)
    clinical["necrosis"] = int(necrotic > NECROSIS_THRESHOLD)
    phantom = {
        "patient_id": patient_id,
        "site": site,
        "format": "dicom" if number % DICOM_PERIOD == 3 else "nifti",
        **geometry,
        "necrotic_fraction": round(necrotic, 5),
        "intermediate_fraction": round(intermediate, 5),
        "texture_hu": round(texture, 3),
        "stranding_strength": stranding,
        "hu_offset": SITES[site]["hu_offset"],
        "noise_sd": SITES[site]["noise_sd"],
        "phases": "venous" if defect == "missing_phase" else "arterial,venous",
        "defect": defect,
        "reference_phase": reference_phase,
        "mask_phase": mask_phase,
        **_phase_motion(seed, number, reference_phase),
    }
    truth = {
        "patient_id": patient_id,
        "z": z,
        "true_k": TRUE_K,
        "site": site,
        "risk": risk,
        "invasion": int(t3_plus),
        "stranding_strength": stranding,
        "size_cm": round(size_cm, 2),
        "necrotic_fraction": phantom["necrotic_fraction"],
        "intermediate_fraction": phantom["intermediate_fraction"],
        "texture_hu": phantom["texture_hu"],
        "defect": defect,
    }
    return clinical, phantom, truth


def simulate_cohort(
    params: dict, reference_phase: str = "venous", mask_phase: str | None = None
) -> dict[str, pd.DataFrame]:
    """Clinical, phantom-parameter and truth tables for SYN0001..SYNnnnn (internal first).

    ``reference_phase``: the phase every other is registered to (imaging.registration.reference);
    it is the phantom's frame, the other phases are misaligned. ``mask_phase``: the phase the
    reference mask is drawn on (default the reference phase).
    """
    params = resolve_params(params)
    for name, phase in (("reference", reference_phase), ("mask", mask_phase or reference_phase)):
        if phase not in PHASES:
            raise ValueError(f"the synthetic cohort has phases {PHASES}; {name} phase {phase!r} is not one")
    ids = patient_ids(params)
    defect_of = {}
    for defect, members in params["bad_cases"].items():
        for patient_id in members:
            if patient_id not in ids:
                raise ValueError(f"bad_cases.{defect}: unknown patient {patient_id}")
            defect_of[patient_id] = defect
    rows = [
        _simulate_patient(
            int(params["seed"]), i + 1, pid, i < int(params["n_internal"]), defect_of.get(pid, ""),
            reference_phase, mask_phase or reference_phase,
        )
        for i, pid in enumerate(ids)
    ]
    clinical, phantoms, truth = (pd.DataFrame(list(part)) for part in zip(*rows, strict=True))
    return {"clinical": clinical, "phantoms": phantoms, "truth": truth}


def write_cohort_tables(
    params: dict, raw_dir, truth_dir, reference_phase: str = "venous", mask_phase: str | None = None
) -> dict[str, pd.DataFrame]:
    """Write raw/ (clinical, phantoms, expression, gene sets, signatures, MAF) and truth/ tables."""
    params = resolve_params(params)
    raw_dir, truth_dir = Path(raw_dir), Path(truth_dir)
    cohort = simulate_cohort(params, reference_phase, mask_phase)
    omics = synthetic_omics.simulate_omics(params, cohort["truth"])
    write_tsv(cohort["clinical"], raw_dir / "clinical.tsv")
    write_tsv(cohort["phantoms"], raw_dir / "phantoms.tsv")
    synthetic_omics.write_omics(omics, raw_dir)
    truth = cohort["truth"].merge(omics["patient_truth"], on="patient_id", how="left")
    write_tsv(truth, truth_dir / "patients.tsv")
    write_tsv(omics["de_genes"], truth_dir / "de_genes.tsv")
    write_tsv(omics["cell_fractions"], truth_dir / "cell_fractions.tsv")
    write_tsv(omics["modules"], truth_dir / "modules.tsv")
    write_tsv(omics["planted_gene_sets"], truth_dir / "planted_gene_sets.tsv")
    write_tsv(phase_transform_table(cohort["phantoms"]), truth_dir / "phase_transforms.tsv")
    return {**cohort, "truth": truth, **omics}


def write_manifest(rows, path) -> pd.DataFrame:
    """raw/manifest.tsv from write_phantom's rows (sorted by patient; empty cell = no phase)."""
    columns = ["patient_id", "site", "format", "arterial", "venous", "mask", "mask_phase"]
    manifest = pd.DataFrame(list(rows), columns=columns).sort_values("patient_id")
    write_tsv(manifest.fillna(""), path)
    return manifest
