"""How well a study's habitat maps recover the planted ones (synthetic studies).

Agreement is the adjusted Rand index (Hubert & Arabie 1985; scikit-learn's
``adjusted_rand_score``) between the predicted labels and the planted labels over the voxels
inside both tumours (label > 0 in both maps): the habitats' numbering is arbitrary, and ARI
ignores it (a permutation of labels scores 1), while a disagreement on the tumour's outline is
the segmentation's error, measured by its Dice, not the habitats'.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FOUND = "regions/{patient}/habitats.nii.gz"
PLANTED = "truth/{patient}/habitats.nii.gz"


def habitat_ari(found, planted) -> float:
    """ARI of two habitat maps (0 outside the tumour, 1..K inside) over the voxels inside both;
    NaN when the two tumours share no voxel."""
    from sklearn.metrics import adjusted_rand_score

    found, planted = np.asarray(found), np.asarray(planted)
    if found.shape != planted.shape:
        raise ValueError(f"habitat maps differ in shape: {found.shape} vs {planted.shape}")
    inside = (found > 0) & (planted > 0)
    if not inside.any():
        return float("nan")
    return float(adjusted_rand_score(planted[inside], found[inside]))


def habitat_agreement(results_dir, patients: pd.DataFrame) -> pd.DataFrame:
    """Per patient of ``patients`` (columns ``patient_id``, ``cohort``): ``ari`` of
    ``results/regions/{patient}/habitats.nii.gz`` against ``results/truth/{patient}/habitats.nii.gz``
    and ``n_voxels``, the voxels inside both tumours it was computed on."""
    import SimpleITK as sitk

    def read(template: str, patient: str) -> np.ndarray:
        path = Path(results_dir) / template.format(patient=patient)
        return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))

    rows = []
    for patient, cohort in zip(patients["patient_id"], patients["cohort"], strict=True):
        found, planted = read(FOUND, patient), read(PLANTED, patient)
        rows.append({
            "patient_id": patient, "cohort": cohort, "ari": habitat_ari(found, planted),
            "n_voxels": int(np.count_nonzero((found > 0) & (planted > 0))),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["patient_id", "cohort", "ari", "n_voxels"])


def cohort_summary(agreement: pd.DataFrame) -> pd.DataFrame:
    """Per cohort of a :func:`habitat_agreement` table: ``n``, ``ari_mean``, ``ari_median``,
    ``ari_min`` (patients without a shared voxel, ARI NaN, are counted in ``n`` only)."""
    grouped = agreement.groupby("cohort", sort=True)["ari"]
    return pd.DataFrame({
        "n": grouped.size(), "ari_mean": grouped.mean(), "ari_median": grouped.median(),
        "ari_min": grouped.min(),
    }).reset_index()  # fmt: skip
