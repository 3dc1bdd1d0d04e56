"""Segmentation QC: agreement with a reference mask, plausibility, and the QC sheet.

Distances are physical (mm), computed from each mask's surface voxels (the voxels of the mask
with a 6-connected neighbour outside it) with scipy's exact Euclidean distance transform,
scaled by the voxel spacing. HD95 follows MedPy's ``hd95``: the 95th percentile of the pooled
surface-to-surface distances in both directions.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

QC_COLUMNS = [
    "patient_id", "method", "source", "dice", "hd95_mm", "volume_diff_ml", "tumor_ml",
    "reference_ml", "components", "kidney_overlap", "flagged", "ok", "reason",
]  # fmt: skip
KIDNEY_CONTACT_MM = 2.0
FLAG_DICE = 0.7


def surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1))


def surface_distances(a: np.ndarray, b: np.ndarray, spacing_zyx) -> np.ndarray:
    """Distances (mm) from every surface voxel of ``a`` to the surface of ``b``."""
    to_b = ndimage.distance_transform_edt(~surface(b), sampling=spacing_zyx)
    return to_b[surface(a)]


def agreement(mask: sitk.Image, reference: sitk.Image) -> dict:
    """Dice, HD95 (mm) and volume difference (ml, mask - reference) of two masks on one grid."""
    a = sitk.GetArrayFromImage(mask) > 0
    b = sitk.GetArrayFromImage(reference) > 0
    voxel_ml = float(np.prod(mask.GetSpacing())) / 1000.0
    result = {
        "dice": 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b)),
        "volume_diff_ml": (np.count_nonzero(a) - np.count_nonzero(b)) * voxel_ml,
        "reference_ml": np.count_nonzero(b) * voxel_ml,
        "hd95_mm": math.nan,
    }
    if a.any() and b.any():
        spacing = mask.GetSpacing()[::-1]
        pooled = np.concatenate([surface_distances(a, b, spacing), surface_distances(b, a, spacing)])
        result["hd95_mm"] = float(np.percentile(pooled, 95))
    return result


def kidney_overlap(tumour: np.ndarray, kidney: np.ndarray, spacing_zyx) -> float:
    """Share of the tumour's surface voxels within KIDNEY_CONTACT_MM of the kidney.

    The kidney label excludes the tumour, so a renal mass shows as contact: part of its
    surface borders the kidney; 0 means a "tumour" away from the kidney (implausible).
    """
    if not tumour.any() or not kidney.any():
        return math.nan
    near = ndimage.distance_transform_edt(~kidney, sampling=spacing_zyx) <= KIDNEY_CONTACT_MM
    border = surface(tumour)
    return float(np.count_nonzero(border & near) / np.count_nonzero(border))


def qc_record(
    patient_id: str, method: str, source: str, tumour: sitk.Image, raw_tumour: sitk.Image,
    kidney: sitk.Image | None, reference: sitk.Image | None, problem: dict | None = None,
) -> dict:  # fmt: skip
    """One row of qc.tsv. ``raw_tumour``: the tumour before post-processing (its components);
    ``reference``: the reference mask to compare with (None: no comparison); ``problem``: the
    BadCase record when the mask is excluded."""
    array = sitk.GetArrayFromImage(tumour) > 0
    spacing = tumour.GetSpacing()[::-1]
    record = {
        "patient_id": patient_id, "method": method, "source": source,
        "dice": math.nan, "hd95_mm": math.nan, "volume_diff_ml": math.nan, "reference_ml": math.nan,
        "tumor_ml": np.count_nonzero(array) * float(np.prod(spacing)) / 1000.0,
        "components": int(ndimage.label(sitk.GetArrayFromImage(raw_tumour) > 0, structure=np.ones((3, 3, 3)))[1]),
        "kidney_overlap": math.nan if kidney is None else kidney_overlap(array, sitk.GetArrayFromImage(kidney) > 0, spacing),
    }  # fmt: skip
    if reference is not None:
        record.update(agreement(tumour, reference))
    record["ok"] = problem is None
    record["reason"] = "" if problem is None else problem["reason"]
    record["flagged"] = bool(
        problem is not None
        or record["dice"] < FLAG_DICE
        or record["components"] > 1
        or record["kidney_overlap"] == 0.0
    )
    return record


def qc_table(records: list[dict]) -> pd.DataFrame:
    """qc.tsv: flagged patients first, then by patient id."""
    table = pd.DataFrame(records, columns=QC_COLUMNS)
    return table.sort_values(["flagged", "patient_id"], ascending=[False, True]).reset_index(drop=True)


def largest_slice(mask: np.ndarray) -> int:
    """Axial slice (z index) with the most tumour voxels (the middle slice when empty)."""
    counts = mask.reshape(mask.shape[0], -1).sum(axis=1)
    return int(np.argmax(counts)) if counts.any() else mask.shape[0] // 2


def qc_sheet(table: pd.DataFrame, cases: dict[str, dict], path_png, path_svg, window=(50, 350), columns: int = 8):
    """Largest-slice contours of every patient (flagged first): mask red, reference green.

    ``cases``: patient -> {ct, tumor, reference (or None)} paths.
    """
    import matplotlib.pyplot as plt

    from ..core.figure_writer import save_figure

    n = len(table)
    rows = max(1, math.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.0 * columns, 2.2 * rows), squeeze=False)
    low, high = window[0] - window[1] / 2, window[0] + window[1] / 2
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (_, row) in zip(axes.ravel(), table.iterrows()):
        case = cases[row["patient_id"]]
        tumour = sitk.GetArrayFromImage(sitk.ReadImage(case["tumor"])) > 0
        reference = sitk.GetArrayFromImage(sitk.ReadImage(case["reference"])) > 0 if case.get("reference") else None
        z = largest_slice(tumour if tumour.any() or reference is None else reference)
        ct = sitk.GetArrayFromImage(sitk.ReadImage(case["ct"]))[z]
        ax.imshow(ct, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        if reference is not None and reference[z].any():
            ax.contour(reference[z], levels=[0.5], colors="lime", linewidths=0.8)
        if tumour[z].any():
            ax.contour(tumour[z], levels=[0.5], colors="red", linewidths=0.8)
        dice = "" if pd.isna(row["dice"]) else f" Dice {row['dice']:.2f}"
        label = f"{'FLAG ' if row['flagged'] else ''}{row['patient_id']} ({row['source']}){dice}"
        ax.set_title(label, fontsize=6, color="red" if row["flagged"] else "black")
    fig.suptitle("Segmentation QC: red = segmentation used, green = reference; flagged first", fontsize=9)
    save_figure(fig, path_png)
    save_figure(fig, path_svg)
    plt.close(fig)
