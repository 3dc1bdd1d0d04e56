"""From a predicted label map, a reference mask or a correction to the final tumour mask.

The final masks lie on the analysis grid (``results/imaging/{patient}/ct.nii.gz``). A
correction may be drawn on any phase, raw or registered: its grid tells which, and it is
carried through that phase's registration (:mod:`radiogenomics.imaging.drawn_masks`).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..core.cases import BadCase
from ..imaging.drawn_masks import carried_to_analysis_grid, declared_phase
from ..imaging.ct import read_case_image

CORRECTION_FIX = "put a corrected mask {patient}.nii.gz in the segmentation.corrections folder"


def on_grid(mask: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """``mask > 0`` as uint8 on the grid of ``reference`` (nearest neighbour, physical space)."""
    binary = sitk.Cast(mask > 0, sitk.sitkUInt8)
    return sitk.Resample(binary, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)


def largest_component(array: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a binary array (empty stays empty)."""
    labelled, n = ndimage.label(array, structure=np.ones((3, 3, 3)))
    if n <= 1:
        return array.astype(bool)
    sizes = np.bincount(labelled.ravel())[1:]
    return labelled == (int(np.argmax(sizes)) + 1)


def split_label_map(label_map: sitk.Image, labels: dict, postprocess: str) -> tuple[sitk.Image, sitk.Image]:
    """Tumour and kidney masks from a KiTS-style label map.

    Tumour = the ``tumor`` label (a cyst is not tumour); ``postprocess`` ``largest`` keeps its
    largest connected component (one tumour per patient, as the analysis assumes), ``all``
    keeps every component. Kidney = the ``kidney`` label (0 everywhere when labels.kidney is null).
    """
    array = sitk.GetArrayFromImage(label_map)
    tumour = array == int(labels["tumor"])
    if postprocess == "largest":
        tumour = largest_component(tumour)
    kidney = array == int(labels["kidney"]) if labels.get("kidney") is not None else np.zeros_like(tumour)
    return tuple(_like(part, label_map) for part in (tumour, kidney))


def _like(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.CopyInformation(reference)
    return image


def check_plausible(patient_id: str, tumour: sitk.Image, path: str, min_volume_ml: float) -> None:
    """BadCase (stage segment) for an empty or implausibly small automatic tumour mask."""
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(tumour)))
    volume_ml = voxels * float(np.prod(tumour.GetSpacing())) / 1000.0
    fix = CORRECTION_FIX.format(patient=patient_id)
    if voxels == 0:
        raise BadCase(patient_id, path, "segmentation found no tumour", fix, stage="segment")
    if volume_ml < min_volume_ml:
        raise BadCase(
            patient_id, path,
            f"segmented tumour is implausibly small ({volume_ml:.2f} ml < segmentation.min_tumor_ml {min_volume_ml})",
            fix, stage="segment",
        )  # fmt: skip


def final_masks(
    patient_id: str, method: str, ct: sitk.Image, labels: dict, postprocess: str, min_volume_ml: float,
    prediction: str | None = None, reference: str | None = None, correction: str | None = None,
    registration: dict | None = None, correction_sidecar: str | None = None, registration_path: str = "",
) -> dict:  # fmt: skip
    """The masks every later stage reads, and where they came from.

    A correction wins over the automatic mask; with method ``reference`` the reference mask
    is the mask; with ``nnunet`` the prediction (``prediction``: its label map) is split and
    post-processed. An empty ``reference`` means the patient has none. A correction is carried
    onto the analysis grid through ``registration`` (the patient's registration.json record)
    from the phase it was drawn on (its grid, or the phase ``correction_sidecar`` names); one
    that cannot be placed is the patient's problem (an empty mask). Returns {tumor, raw_tumor,
    kidney (None without a kidney), source, path, drawn_on (the correction's phase or None),
    reference (the mask to compare with, or None), problem (BadCase record or None)}.
    """
    kidney = None
    if reference and not np.any(sitk.GetArrayViewFromImage(sitk.ReadImage(reference))):
        reference = None  # preprocess writes an empty reference for a patient without a mask
    if method == "nnunet":
        predicted = on_grid_labels(sitk.ReadImage(prediction), ct)
        raw_tumour, kidney = split_label_map(predicted, labels, "all")
        tumour, _ = split_label_map(predicted, labels, postprocess)
        source, path = "nnunet", prediction
    else:
        tumour = raw_tumour = on_grid(sitk.ReadImage(reference), ct)
        source, path = "reference", reference
    compare = reference if (method == "nnunet" and reference) else None
    problem, drawn_on = None, None
    if correction:
        if registration is None:
            raise ValueError(f"{patient_id}: a correction needs the patient's registration.json record")
        source, path, compare = "correction", correction, reference
        try:
            drawn = read_case_image(patient_id, correction, "corrected mask")
            declared = declared_phase(patient_id, correction_sidecar, "corrected mask", "segment")
            tumour, drawn_on = carried_to_analysis_grid(
                patient_id, drawn, correction, registration, ct, declared,
                registration_path=registration_path,
            )  # fmt: skip
        except BadCase as bad:
            # the automatic mask is what the correction rejected: nothing is left to analyse
            problem = {**bad.as_record(), "stage": "segment"}
            tumour = sitk.Cast(ct * 0, sitk.sitkUInt8)
        raw_tumour = tumour
    if problem is None:
        try:
            check_plausible(patient_id, tumour, path, min_volume_ml if source == "nnunet" else 0.0)
        except BadCase as bad:
            problem = bad.as_record()
    return {
        "tumor": tumour, "raw_tumor": raw_tumour, "kidney": kidney, "source": source, "path": path,
        "drawn_on": drawn_on, "reference": on_grid(sitk.ReadImage(compare), ct) if compare else None,
        "problem": problem,
    }  # fmt: skip


def on_grid_labels(label_map: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """A label map on the grid of ``reference`` (nearest neighbour keeps the label values)."""
    return sitk.Resample(label_map, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
