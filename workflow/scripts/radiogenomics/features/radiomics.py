"""PyRadiomics features for several regions of one patient, filtering each image only once.

``RadiomicsFeatureExtractor.execute`` filters the whole image (LoG at each sigma, 8 wavelet
decompositions) for every region it is called on. Regions of one patient share the image, so we
filter once per phase and image type, then run the feature classes per region with PyRadiomics'
own functions (``checkMask``, ``computeShape``, ``cropToTumorMask``, ``computeFeatures``). To save
more, each filter runs on the bounding box of all regions plus a margin wide enough that the
filtered values inside the regions equal those of the full image (LoG: the recursive Gaussian's
tail; wavelet: the filter support), which a parity test against ``execute`` checks.

Keys: ``{region}__{phase}_{pyradiomics name}`` (e.g. ``whole__venous_original_glcm_Contrast``);
diagnostics: ``{region}__{phase}_diagnostics_*`` plus ``{region}__{phase}_diagnostics_status``
(``ok`` or why the region has no features, in which case its features are NaN).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

import radiomics
from radiomics import featureextractor, generalinfo, imageoperations

from radiogenomics.core.cases import BadCase

# PyRadiomics logs each feature class and a warning per GLCM; keep the rule logs readable.
radiomics.setVerbosity(logging.ERROR)

# Margin (mm) beyond the regions that a filtered image needs to be exact inside them.
# LoG: ITK's recursive Gaussian has exponentially decaying tails; 14 sigma brings the boundary
# effect below float32 resolution (measured: 25 mm at sigma 3 -> 2.6e-6, 35 mm -> < 1e-7).
LOG_MARGIN_PER_SIGMA = 14.0
# Wavelet: one stationary level of coif1 (6 taps) reaches 5 voxels; 8 gives slack.
WAVELET_MARGIN_VOXELS = 8


@functools.lru_cache(maxsize=8)
def load_extractor(params_path: str) -> featureextractor.RadiomicsFeatureExtractor:
    return featureextractor.RadiomicsFeatureExtractor(str(params_path))


@functools.lru_cache(maxsize=8)
def feature_names(params_path: str) -> tuple[str, ...]:
    """PyRadiomics feature names the params produce (computed once on a small test object)."""
    rng = np.random.default_rng(0)
    array = rng.normal(0, 100, (24, 24, 24)).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    mask = np.zeros(array.shape, dtype=np.uint8)
    mask[8:16, 8:16, 8:16] = 1
    values = load_extractor(str(params_path)).execute(image, sitk.GetImageFromArray(mask))
    return tuple(k for k in values if not k.startswith("diagnostics_"))


class OffGridRegion(ValueError):
    """A region mask whose array shape differs from the image it should describe."""


def _filter_margin_mm(image_type: str, settings: dict, spacing) -> float:
    if image_type == "Original":
        return 0.0
    if image_type == "LoG":
        return LOG_MARGIN_PER_SIGMA * max(settings.get("sigma", [0.0]) or [0.0])
    if image_type == "Wavelet":
        levels = settings.get("start_level", 0) + settings.get("level", 1)
        return WAVELET_MARGIN_VOXELS * 2 ** (levels - 1) * max(spacing)
    return float("inf")  # unknown filter: no cropping, exactness by construction


def _mask_image(region: np.ndarray, reference: sitk.Image, label: int) -> sitk.Image:
    mask = sitk.GetImageFromArray((np.asarray(region) > 0).astype(np.uint8) * np.uint8(label))
    mask.CopyInformation(reference)
    return mask


def _crop(image: sitk.Image, masks: dict, margin_mm: float):
    """Crop image and masks to the union bounding box of the masks plus ``margin_mm``.
    Returns the cropped image, cropped masks and the crop's start index (x, y, z)."""
    size = np.array(image.GetSize())
    spacing = np.array(image.GetSpacing())
    union = np.zeros(size[::-1], dtype=bool)
    for mask in masks.values():
        union |= sitk.GetArrayViewFromImage(mask) > 0
    occupied = np.nonzero(union)
    lower_zyx = np.array([idx.min() for idx in occupied])
    upper_zyx = np.array([idx.max() for idx in occupied])
    pad_xyz = np.ceil(margin_mm / spacing).astype(int) if np.isfinite(margin_mm) else size
    lower = np.maximum(lower_zyx[::-1] - pad_xyz, 0)
    upper = np.minimum(upper_zyx[::-1] + pad_xyz, size - 1)
    extent = [int(u - l + 1) for l, u in zip(lower, upper)]
    start = [int(v) for v in lower]
    cropped = sitk.RegionOfInterest(image, extent, start)
    cropped_masks = {name: sitk.RegionOfInterest(m, extent, start) for name, m in masks.items()}
    return cropped, cropped_masks, np.array(start)


def _mask_diagnostics(image: sitk.Image, mask: sitk.Image, label: int, offset_xyz) -> dict:
    """PyRadiomics' mask diagnostics, computed on the union crop; the bounding box is shifted
    back to full-image indices and the crop-relative centre-of-mass index is dropped."""
    info = generalinfo.GeneralInfo()
    info.addMaskElements(image, mask, label)
    diagnostics = {}
    for key, value in info.getGeneralInfo().items():
        if "Mask-original" not in key or key.endswith("CenterOfMassIndex"):
            continue
        if key.endswith("BoundingBox"):
            value = tuple(int(v) for v in np.asarray(value[:3]) + offset_xyz) + tuple(
                int(v) for v in value[3:]
            )
        diagnostics[key] = value
    return diagnostics


def _phase_features(extractor, image: sitk.Image, regions: dict) -> tuple[dict, dict]:
    """Per region: (pyradiomics features or None, diagnostics) for one phase image."""
    settings = extractor.settings.copy()
    label = settings.get("label", 1)
    general = generalinfo.GeneralInfo()
    general.addGeneralSettings(settings)
    general.addEnabledImageTypes(extractor.enabledImagetypes)
    general.addImageElements(image)
    shared_diagnostics = general.getGeneralInfo()
    image_shape = sitk.GetArrayViewFromImage(image).shape

    values, diagnostics, full_masks = {}, {}, {}
    for name, region in regions.items():
        region = np.asarray(region)
        if region.shape != image_shape:
            raise OffGridRegion(
                f"region {name}: shape {region.shape} differs from the image {image_shape}"
            )
        diagnostics[name] = dict(shared_diagnostics)
        values[name] = None
        if not region.any():
            diagnostics[name]["diagnostics_Mask-original_VoxelNum"] = 0
            diagnostics[name][
                "diagnostics_status"
            ] = "no features: region is empty (label not present)"
        else:
            full_masks[name] = _mask_image(region, image, label)
    if not full_masks:
        return values, diagnostics

    # Mask checks and shape need no filter: run them on the regions' union box (cheap).
    base_image, base_masks, offset = _crop(image, full_masks, 0.0)
    for name, mask in base_masks.items():
        diagnostics[name].update(_mask_diagnostics(base_image, mask, label, offset))
        try:
            bounding_box, corrected = imageoperations.checkMask(base_image, mask, **settings)
        except ValueError as error:
            diagnostics[name]["diagnostics_status"] = f"no features: {error}"
            del full_masks[name]
            continue
        mask = corrected if corrected is not None else mask
        diagnostics[name]["diagnostics_status"] = "ok"
        values[name] = dict(extractor.computeShape(base_image, mask, bounding_box, **settings))
    if not full_masks:
        return values, diagnostics

    for image_type, custom in extractor.enabledImagetypes.items():
        args = settings.copy()
        args.update(custom)
        margin = _filter_margin_mm(image_type, args, image.GetSpacing())
        cropped_image, cropped_masks, _ = _crop(image, full_masks, margin)
        boxes = {
            name: imageoperations.checkMask(cropped_image, m, **settings)[0]
            for name, m in cropped_masks.items()
        }
        generator = getattr(imageoperations, f"get{image_type}Image")(cropped_image, None, **args)
        for filtered, type_name, kwargs in generator:
            for name, mask in cropped_masks.items():
                region_image, region_mask = imageoperations.cropToTumorMask(
                    filtered, mask, boxes[name]
                )
                values[name].update(
                    extractor.computeFeatures(region_image, region_mask, type_name, **kwargs)
                )
    return values, diagnostics


def extract_patient(
    images: dict,
    regions: dict,
    params_path,
    phases=("venous",),
    patient_id: str = "unknown",
) -> tuple[dict, dict]:
    """Features and diagnostics of every region on every phase of one patient.

    images: phase -> sitk.Image (all on one grid); regions: name -> numpy mask (z, y, x) on that
    grid. A region that fails PyRadiomics' mask checks (empty, below ``minimumROISize``) gets NaN
    features and its reason in ``{region}__{phase}_diagnostics_status``.
    """
    params_path = str(params_path)
    extractor = load_extractor(params_path)
    names = feature_names(params_path)
    features, diagnostics = {}, {}
    for phase in phases:
        if phase not in images:
            raise BadCase(
                patient_id,
                f"<{phase} image>",
                f"phase {phase!r} missing",
                f"provide the {phase} phase or drop it from the feature phases",
                stage="features",
            )
        try:
            values, region_diagnostics = _phase_features(extractor, images[phase], regions)
        except OffGridRegion as error:
            raise BadCase(
                patient_id,
                f"<{phase} image / region masks>",
                str(error),
                "region masks must lie on the image's analysis grid (resample masks with "
                "nearest neighbour onto the resampled CT)",
                stage="features",
            ) from error
        for region in regions:
            prefix = f"{region}__{phase}_"
            computed = values[region] or {}
            for name in names:
                value = computed.get(name, np.nan)
                features[prefix + name] = float(value) if value is not None else np.nan
            for key, value in region_diagnostics[region].items():
                diagnostics[prefix + key] = _plain(value)
    return features, diagnostics


def _plain(value):
    """Diagnostics as JSON/parquet-friendly scalars (tuples and dicts become strings)."""
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def features_table(rows: list) -> pd.DataFrame:
    """One row per patient: ``patient_id`` first, feature columns sorted by name."""
    table = pd.DataFrame(rows)
    if "patient_id" not in table.columns:
        raise ValueError("every row needs a patient_id")
    columns = sorted(c for c in table.columns if c != "patient_id")
    return (
        table[["patient_id"] + columns]
        .sort_values("patient_id", kind="stable")
        .reset_index(drop=True)
    )


def params_file() -> Path:
    """The project's default PyRadiomics parameter file."""
    return Path(__file__).resolve().parents[4] / "resources" / "radiomics_params.yaml"


def region_names(regions, k: int) -> list[str]:
    """The feature regions a config list names: ``habitats`` expands to sub1..subK."""
    names = []
    for region in regions:
        names += [f"sub{label}" for label in range(1, k + 1)] if region == "habitats" else [region]
    return names


def extract_patient_files(
    patient_id: str, phase_paths: dict, tumor_path, habitats_path, peri_path,
    habitat_model_path, params_path, regions=("whole", "habitats", "peri"),
) -> tuple[dict, dict]:
    """extract_patient on the stage's files: ``habitats`` expands to sub1..subK of the model."""
    import json

    k = int(json.loads(Path(habitat_model_path).read_text())["k"])
    images = {phase: sitk.ReadImage(str(path)) for phase, path in phase_paths.items()}
    masks = {}
    if "whole" in regions:
        masks["whole"] = sitk.GetArrayFromImage(sitk.ReadImage(str(tumor_path))) > 0
    if "habitats" in regions:
        habitats = sitk.GetArrayFromImage(sitk.ReadImage(str(habitats_path)))
        for label in range(1, k + 1):
            masks[f"sub{label}"] = habitats == label
    if "peri" in regions:
        masks["peri"] = sitk.GetArrayFromImage(sitk.ReadImage(str(peri_path))) > 0
    return extract_patient(images, masks, params_path, phases=tuple(phase_paths), patient_id=patient_id)


def combine_patient_tables(feature_paths, diagnostics_paths) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cohort's feature table (contract layout) and a long diagnostics table."""
    import json

    features = features_table([json.loads(Path(p).read_text()) for p in feature_paths])
    rows = []
    for path in diagnostics_paths:
        record = json.loads(Path(path).read_text())
        patient_id = record.pop("patient_id")
        rows += [{"patient_id": patient_id, "key": k, "value": v} for k, v in sorted(record.items())]
    return features, pd.DataFrame(rows, columns=["patient_id", "key", "value"])
