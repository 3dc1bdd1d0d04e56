"""Feature robustness: seeded mask perturbation and intraclass correlation (ICC).

ICC forms follow Shrout & Fleiss (1979), Psychological Bulletin 86(2):420-428:
ICC(1,1) one-way random, ICC(2,1) two-way random absolute agreement, ICC(3,1) two-way mixed
consistency; single rater. The studies (S1, S2, S4) keep features with ICC above a threshold.
The ANOVA mean squares are written out here (vectorised over thousands of features at once,
which per-feature calls to a statistics package would make slow); tests check them against
statsmodels' ANOVA and the published worked example.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

from radiogenomics.core.cases import BadCase

ICC_FORMS = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)")


def anova_mean_squares(ratings: np.ndarray) -> dict[str, np.ndarray]:
    """Mean squares of the targets x raters layout, vectorised over a trailing feature axis.

    ``ratings`` is (n_targets, n_raters) or (n_targets, n_raters, n_features); returns BMS
    (between targets), WMS (within targets), JMS (between raters), EMS (residual).
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim == 2:
        x = x[:, :, None]
    n, k = x.shape[:2]
    if n < 2 or k < 2:
        raise ValueError(f"ICC needs at least 2 targets and 2 raters, got {n} x {k}")
    grand = x.mean(axis=(0, 1))
    target_means = x.mean(axis=1)
    rater_means = x.mean(axis=0)
    ss_targets = k * ((target_means - grand) ** 2).sum(axis=0)
    ss_raters = n * ((rater_means - grand) ** 2).sum(axis=0)
    ss_total = ((x - grand) ** 2).sum(axis=(0, 1))
    ss_within = ss_total - ss_targets
    ss_error = ss_within - ss_raters
    return {
        "BMS": ss_targets / (n - 1),
        "WMS": ss_within / (n * (k - 1)),
        "JMS": ss_raters / (k - 1),
        "EMS": ss_error / ((n - 1) * (k - 1)),
    }


def icc(ratings: np.ndarray, form: str = "ICC(3,1)") -> np.ndarray:
    """Single-rater ICC of a (n_targets, n_raters[, n_features]) array; NaN where undefined
    (a feature constant over every target and rater)."""
    if form not in ICC_FORMS:
        raise ValueError(f"unknown ICC form {form!r}; choose one of {ICC_FORMS}")
    x = np.asarray(ratings, dtype=float)
    n, k = x.shape[:2]
    ms = anova_mean_squares(x)
    bms, wms, jms, ems = ms["BMS"], ms["WMS"], ms["JMS"], ms["EMS"]
    with np.errstate(divide="ignore", invalid="ignore"):
        if form == "ICC(1,1)":
            value = (bms - wms) / (bms + (k - 1) * wms)
        elif form == "ICC(2,1)":
            value = (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)
        else:
            value = (bms - ems) / (bms + (k - 1) * ems)
    value = np.where(np.isfinite(value), value, np.nan)
    return value if x.ndim == 3 else value[0]


def icc_table(
    features_by_reader: Mapping[str, pd.DataFrame], form: str = "ICC(3,1)"
) -> pd.DataFrame:
    """ICC per feature from one table per reader (or per mask perturbation).

    Each table is indexed by patient id with one column per feature. Only patients present in
    every table are used; a patient with a missing value for a feature is left out of that
    feature's ICC. Returns columns ``feature, icc, form, n_patients``.
    """
    if len(features_by_reader) < 2:
        raise ValueError("icc_table needs at least two readers or perturbations")
    tables = list(features_by_reader.values())
    patients = tables[0].index
    features = list(tables[0].columns)
    for table in tables[1:]:
        patients = patients.intersection(table.index)
        missing = set(features) - set(table.columns)
        if missing:
            raise ValueError(f"feature columns differ between readers: {sorted(missing)[:5]}")
    patients = patients.sort_values()
    stacked = np.stack(
        [t.loc[patients, features].to_numpy(dtype=float) for t in tables], axis=1
    )  # (patients, readers, features)
    complete = np.isfinite(stacked).all(axis=1)  # (patients, features)
    values = np.full(len(features), np.nan)
    counts = complete.sum(axis=0)
    all_complete = complete.all(axis=0)
    if all_complete.any() and len(patients) >= 2:
        values[all_complete] = icc(stacked[:, :, all_complete], form)
    for j in np.flatnonzero(~all_complete & (counts >= 2)):
        values[j] = icc(stacked[complete[:, j], :, j], form)
    return pd.DataFrame({"feature": features, "icc": values, "form": form, "n_patients": counts})


def _signed_distance_mm(mask: sitk.Image) -> np.ndarray:
    """Signed distance in mm to the contour (negative inside), using the voxel spacing.

    The contour is put half a voxel beyond the outermost foreground centres (the midpoint to
    the nearest background centre), so thresholding at 0 returns the mask unchanged and at
    +/- r mm dilates/erodes by r mm on any grid.
    """
    inside = sitk.GetArrayViewFromImage(mask) > 0
    spacing_zyx = np.asarray(mask.GetSpacing(), dtype=float)[::-1]
    if not inside.any():
        return np.full(inside.shape, np.inf)
    to_background = ndimage.distance_transform_edt(inside, sampling=spacing_zyx)
    to_foreground = ndimage.distance_transform_edt(~inside, sampling=spacing_zyx)
    half_voxel = spacing_zyx.min() / 2
    return np.where(inside, half_voxel - to_background, to_foreground - half_voxel)




def perturb_mask(
    mask: sitk.Image,
    seed: int,
    grow_mm: float = 1.0,
    jitter_mm: float = 0.5,
    jitter_smoothing_mm: float = 2.0,
    shift_mm: float = 1.0,
    patient_id: str = "?",
) -> sitk.Image:
    """One seeded re-delineation of ``mask`` on its own grid.

    The contour is moved through its signed distance map d: the new mask is
    ``d(x - t) + noise(x) <= g`` with a growth g ~ U(-grow_mm, grow_mm) (erosion/dilation),
    a translation t ~ U(-shift_mm, shift_mm) per axis, and a smooth Gaussian field with
    standard deviation ``jitter_mm`` (contour jitter; correlation length
    ``jitter_smoothing_mm``). This mimics a second reader, as in Zwanenburg et al. 2019
    (Sci Rep 9:614).
    """
    rng = np.random.default_rng(seed)
    spacing_zyx = np.asarray(mask.GetSpacing(), dtype=float)[::-1]
    distance = _signed_distance_mm(mask).astype(float)
    growth = rng.uniform(-grow_mm, grow_mm) if grow_mm > 0 else 0.0
    shift_zyx_mm = rng.uniform(-shift_mm, shift_mm, size=3) if shift_mm > 0 else np.zeros(3)
    shifted = ndimage.shift(
        distance, shift_zyx_mm / spacing_zyx, order=1, mode="nearest", prefilter=False
    )
    if jitter_mm > 0:
        noise = ndimage.gaussian_filter(
            rng.standard_normal(distance.shape), jitter_smoothing_mm / spacing_zyx
        )
        # Centre and scale the field on the contour band so jitter reshapes the outline
        # without acting as a second, uncontrolled growth term.
        band = np.abs(distance) <= max(jitter_smoothing_mm, spacing_zyx.max())
        noise = (noise - noise[band].mean()) * (jitter_mm / max(noise[band].std(), 1e-12))
        shifted = shifted + noise
    perturbed = (shifted <= growth).astype(np.uint8)
    if not perturbed.any():
        raise BadCase(
            patient_id,
            "tumour mask",
            "mask vanished under perturbation (tumour smaller than the perturbation)",
            "lower robustness.grow_mm / jitter_mm or check the segmentation",
            stage="robustness",
        )
    out = sitk.GetImageFromArray(perturbed)
    out.CopyInformation(mask)
    return out


def perturbed_masks(
    mask: sitk.Image,
    n_perturbations: int,
    seed: int,
    patient_id: str = "?",
    **perturbation: float,
) -> list[sitk.Image]:
    """``n_perturbations`` independent re-delineations; perturbation i of a patient depends
    only on (seed, i), so adding patients never changes another patient's masks."""
    return [
        perturb_mask(
            mask, seed=_child_seed(seed, patient_id, i), patient_id=patient_id, **perturbation
        )
        for i in range(n_perturbations)
    ]


def perturbed_mask_sets(
    masks: Mapping[str, sitk.Image],
    n_perturbations: int,
    seed: int,
    **perturbation: float,
) -> dict[str, dict[str, sitk.Image]]:
    """``{"original": masks, "perturbation1": {...}, ...}``: the raters for :func:`icc_table`
    when no second-reader masks exist (features are re-extracted once per set)."""
    sets: dict[str, dict[str, sitk.Image]] = {"original": dict(masks)}
    for patient, mask in masks.items():
        for i, perturbed in enumerate(
            perturbed_masks(mask, n_perturbations, seed, patient_id=patient, **perturbation), 1
        ):
            sets.setdefault(f"perturbation{i}", {})[patient] = perturbed
    return sets


def _child_seed(seed: int, patient_id: str, index: int) -> int:
    # A stable per-(patient, index) seed; Python's hash() is salted per process, so use bytes.
    key = [seed, index, *np.frombuffer(str(patient_id).encode(), dtype=np.uint8).tolist()]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def dice(a: sitk.Image | np.ndarray, b: sitk.Image | np.ndarray) -> float:
    a = sitk.GetArrayViewFromImage(a) if isinstance(a, sitk.Image) else np.asarray(a)
    b = sitk.GetArrayViewFromImage(b) if isinstance(b, sitk.Image) else np.asarray(b)
    a, b = a > 0, b > 0
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else 1.0
