"""Radiomics under re-delineation: the raters of the ICC filter (S1: ICC > 0.8, S2: > 0.75).

A second reader's mask changes every region derived from it, so each rater's tumour mask is
carried through the same frozen habitat model and shell as the reference mask before the
features are re-extracted. Raters are second-reader masks when the study has them, else seeded
perturbations of the reference mask (:func:`radiogenomics.features.robustness.perturbed_masks`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import SimpleITK as sitk

from radiogenomics.imaging.drawn_masks import carried_to_analysis_grid, declared_phase
from radiogenomics.features.radiomics import extract_patient, region_names
from radiogenomics.imaging.ct import read_case_image
from radiogenomics.regions.habitats import HabitatModel, patient_regions
from radiogenomics.features.robustness import icc_table, perturbed_masks


def second_reader_on_grid(
    patient_id: str, path, reference: sitk.Image, registration: dict, sidecar=None, registration_path=""
) -> sitk.Image:
    """A second reader's mask on the analysis grid: carried from the phase it was drawn on
    through the patient's registration (nearest neighbour), like a correction
    (:func:`radiogenomics.imaging.drawn_masks.carried_to_analysis_grid`)."""
    # a second reader's mask may be a NIfTI file or a DICOM series folder, like any mask
    mask = read_case_image(patient_id, path, "second-reader mask")
    declared = declared_phase(patient_id, sidecar, "second-reader mask", "robustness")
    carried, _ = carried_to_analysis_grid(
        patient_id, mask, path, registration, reference, declared, what="second-reader mask",
        stage="robustness", registration_path=registration_path,
    )  # fmt: skip
    return carried


def rater_features(
    patient_id: str,
    phase_paths: Mapping[str, str],
    habitat_phase_paths: Mapping[str, str],
    tumor_path,
    habitat_model_path,
    params_path,
    *,
    regions: Sequence[str] = ("whole", "habitats", "peri"),
    margin_mm: float = 3.0,
    body_threshold_hu: float = -500,
    second_reader=None,
    registration: dict | None = None,
    second_reader_sidecar=None,
    registration_path="",
    n_perturbations: int = 3,
    seed: int = 0,
    **perturbation: float,
) -> pd.DataFrame:
    """Features of every rater's regions for one patient: one row per rater (``rater`` then
    the columns of the radiomics table). The reference rater's row is the stage's own table.
    ``second_reader`` (a mask drawn on any phase) needs the patient's ``registration`` record
    (and the optional sidecar naming its phase)."""
    model = HabitatModel.from_dict(json.loads(Path(habitat_model_path).read_text()))
    reference = sitk.ReadImage(str(tumor_path))
    if second_reader is not None:
        raters = {
            "reader2": second_reader_on_grid(
                patient_id, second_reader, reference, registration, second_reader_sidecar, registration_path
            )
        }
    else:
        masks = perturbed_masks(
            reference, n_perturbations, seed, patient_id=patient_id, **perturbation
        )
        raters = {f"perturbation{i}": mask for i, mask in enumerate(masks, 1)}
    habitat_images = {p: sitk.ReadImage(str(path)) for p, path in habitat_phase_paths.items()}
    feature_images = {p: sitk.ReadImage(str(path)) for p, path in phase_paths.items()}
    rows = []
    for rater, mask in raters.items():
        tumor = sitk.GetArrayFromImage(mask) > 0
        _, all_regions = patient_regions(
            habitat_images, tumor, model, margin_mm=margin_mm, body_threshold_hu=body_threshold_hu
        )
        chosen = {name: all_regions[name] for name in region_names(regions, model.k_)}
        features, _ = extract_patient(
            feature_images, chosen, params_path, phases=tuple(phase_paths), patient_id=patient_id
        )
        rows.append({"rater": rater, "patient_id": patient_id, **features})
    return pd.DataFrame(rows)


def robustness_table(
    reference: pd.DataFrame,
    raters: Sequence[pd.DataFrame],
    form: str = "ICC(3,1)",
    deep: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """ICC per radiomics feature (``reference``: radiomics table rows of the re-read patients;
    ``raters``: :func:`rater_features` tables), then the deep features' ICC table when given.

    Columns ``feature, icc, form, n_patients, source`` (source ``radiomics`` or ``deep``).
    """
    per_rater = pd.concat(list(raters), ignore_index=True)
    features = [c for c in reference.columns if c != "patient_id"]
    tables = {"reference": reference.set_index("patient_id")[features]}
    for rater, table in per_rater.groupby("rater", sort=True):
        tables[str(rater)] = table.set_index("patient_id")[features]
    result = icc_table(tables, form).assign(source="radiomics")
    if deep is not None:
        result = pd.concat([result, deep.assign(source="deep")], ignore_index=True)
    return result[["feature", "icc", "form", "n_patients", "source"]]
