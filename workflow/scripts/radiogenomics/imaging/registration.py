"""Registration of every CT phase to a reference phase (SimpleITK), and its error against truth.

Phases of one study are separate acquisitions: different z ranges and slice counts, and the
patient moves (breathing, repositioning) between them. Each phase is registered rigidly (or
affinely) to the reference phase with Mattes mutual information (the phases differ in contrast
enhancement, so intensities do not match one to one), multi-resolution, on a fixed seeded
random sample of the reference phase's voxels in a box around the tumour: the kidney moves with
breathing independently of the spine, so the box, not the whole abdomen, decides the fit.

Initialisation: the identity. Phases of one study share the scanner's patient coordinate frame
(one DICOM FrameOfReferenceUID), so physical coordinates are the best first guess; centring by
geometry or by intensity moments would add the difference between the phases' scan ranges
(tens of millimetres along z) as a false shift.

The transform of a phase maps a physical point of the reference phase to the point of that
phase's scan showing the same anatomy (ITK convention; resampling the phase with it puts it on
the reference grid).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.cases import BadCase
from .ct import geometry

DEFAULTS = {
    "reference": "venous",
    "method": "rigid",
    "histogram_bins": 50,
    "sampling_percentage": 0.15,
    "shrink_factors": [4, 2, 1],
    "smoothing_sigmas_mm": [2.0, 1.0, 0.0],
    "iterations": 200,
    "roi_margin_mm": 30.0,
    "intensity_window_hu": [-200.0, 400.0],
    "max_displacement_mm": 25.0,
}
# The metric region stops this far inside the moving phase's scan: reference voxels that the
# transform maps out of the moving image are dropped from the metric, and samples dropping in
# and out along a scan border bias the optimiser (phases end at different z).
SCAN_BORDER_MARGIN_MM = 10.0
# A registration whose final metric is worse than the identity's by more than this fraction of
# the identity's metric has diverged.
DIVERGENCE_TOLERANCE = 0.05


def settings(registration: dict | None) -> dict:
    return {**DEFAULTS, **(registration or {})}


def identity() -> sitk.Euler3DTransform:
    return sitk.Euler3DTransform()


def transform_record(transform: sitk.Transform) -> dict:
    """A JSON-able description that transform_from_record turns back into the transform."""
    return {
        "type": transform.GetName(),
        "parameters": [float(p) for p in transform.GetParameters()],
        "fixed_parameters": [float(p) for p in transform.GetFixedParameters()],
    }


def transform_from_record(record: dict) -> sitk.Transform:
    kinds = {"Euler3DTransform": sitk.Euler3DTransform, "AffineTransform": lambda: sitk.AffineTransform(3)}
    if record["type"] not in kinds:
        raise ValueError(f"unknown transform type {record['type']!r}; expected one of {sorted(kinds)}")
    transform = kinds[record["type"]]()
    transform.SetFixedParameters(record["fixed_parameters"])
    transform.SetParameters(record["parameters"])
    return transform


def _voxel_box(image: sitk.Image, start, stop) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned physical box (low, high corners) covering voxels start..stop-1 (outer faces)."""
    corners = np.array([
        image.TransformContinuousIndexToPhysicalPoint([float(i), float(j), float(k)])
        for i in (start[0] - 0.5, stop[0] - 0.5)
        for j in (start[1] - 0.5, stop[1] - 0.5)
        for k in (start[2] - 0.5, stop[2] - 0.5)
    ])  # fmt: skip
    return corners.min(axis=0), corners.max(axis=0)


def tumour_box(mask: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Physical bounding box (low, high corners, x y z) of the mask's foreground voxels."""
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    box = stats.GetBoundingBox(1)
    return _voxel_box(mask, box[:3], np.add(box[:3], box[3:]))


def physical_extent(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Physical box (low, high corners) covered by the image's voxels."""
    return _voxel_box(image, (0, 0, 0), image.GetSize())


def shared_box(a: sitk.Image, b: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """The physical box both images cover, SCAN_BORDER_MARGIN_MM inside either's border."""
    (low_a, high_a), (low_b, high_b) = physical_extent(a), physical_extent(b)
    return np.maximum(low_a, low_b) + SCAN_BORDER_MARGIN_MM, np.minimum(high_a, high_b) - SCAN_BORDER_MARGIN_MM


def box_corners(low, high) -> np.ndarray:
    return np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])


def crop_to_box(image: sitk.Image, low, high) -> sitk.Image:
    """The part of ``image`` inside the physical box (axis-aligned images), at least 8 voxels a side."""
    corners = box_corners(low, high)
    index = np.array([image.TransformPhysicalPointToContinuousIndex(c.tolist()) for c in corners])
    size = np.array(image.GetSize())
    start = np.clip(np.floor(index.min(axis=0)).astype(int), 0, size - 1)
    stop = np.clip(np.ceil(index.max(axis=0)).astype(int) + 1, start + 1, size)
    extent = np.maximum(stop - start, np.minimum(8, size))
    start = np.clip(np.minimum(start, size - extent), 0, None)
    return sitk.RegionOfInterest(image, [int(e) for e in extent], [int(s) for s in start])


def _prepared(image: sitk.Image, window) -> sitk.Image:
    """Float32 HU clamped to the soft-tissue window: air and bone would spend the histogram bins."""
    return sitk.Clamp(sitk.Cast(image, sitk.sitkFloat32), lowerBound=float(window[0]), upperBound=float(window[1]))


def _method(config: dict, seed: int, threads: int) -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(config["histogram_bins"]))
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(float(config["sampling_percentage"]), int(seed))
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-3, numberOfIterations=int(config["iterations"]),
        relaxationFactor=0.5, gradientMagnitudeTolerance=1e-8,
    )  # fmt: skip
    # Parameter scales from a 1-voxel physical shift: step lengths are in millimetres.
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([int(f) for f in config["shrink_factors"]])
    method.SetSmoothingSigmasPerLevel([float(s) for s in config["smoothing_sigmas_mm"]])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetNumberOfThreads(int(threads))
    return method


def register_phase(
    patient_id: str,
    phase: str,
    fixed: sitk.Image,
    moving: sitk.Image,
    box: tuple,
    config: dict,
    seed: int,
    threads: int = 1,
    path: str = "",
) -> dict:
    """Register one phase (moving) to the reference phase (fixed) around the tumour box.

    Returns {transform (record), metric, initial_metric, iterations, stop, seconds}. A
    registration that fails, diverges or moves the tumour further than max_displacement_mm, or a
    phase that does not cover the tumour, raises BadCase (stage "registration").
    """
    # ITK sums the metric over threads in the order they finish, and the metric takes its thread
    # count from the global default: one fixed count keeps the result bit-identical.
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    try:
        return _register_phase(patient_id, phase, fixed, moving, box, settings(config), seed, threads, path)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)


def _register_phase(patient_id, phase, fixed, moving, box, config, seed, threads, path) -> dict:
    start = time.perf_counter()
    low, high = np.asarray(box[0]), np.asarray(box[1])
    margin = float(config["roi_margin_mm"])
    scan_low, scan_high = physical_extent(moving)
    region_low = np.maximum(low - margin, scan_low + SCAN_BORDER_MARGIN_MM)
    region_high = np.minimum(high + margin, scan_high - SCAN_BORDER_MARGIN_MM)
    fixed_roi = crop_to_box(_prepared(fixed, config["intensity_window_hu"]), region_low, region_high)
    moving_image = _prepared(moving, config["intensity_window_hu"])
    method = _method(config, seed, threads)
    if config["method"] == "none":  # trust the scanner coordinates; report how well they agree
        initial = identity()
    else:
        initial = sitk.Euler3DTransform() if config["method"] == "rigid" else sitk.AffineTransform(3)
        initial.SetCenter(((low + high) / 2).tolist())  # rotate about the tumour, not the table
    method.SetInitialTransform(initial, inPlace=False)
    try:
        initial_metric = method.MetricEvaluate(fixed_roi, moving_image)
        if config["method"] == "none":
            transform, metric, iterations, stop = initial, initial_metric, 0, "method none"
        else:
            # Execute wraps the optimised transform in a one-element composite.
            transform = method.Execute(fixed_roi, moving_image).GetNthTransform(0).Downcast()
            iterations, stop = method.GetOptimizerIteration(), method.GetOptimizerStopConditionDescription()
            final = _method(config, seed, threads)
            final.SetInitialTransform(transform, inPlace=False)
            metric = final.MetricEvaluate(fixed_roi, moving_image)
    except RuntimeError as error:  # ITK: e.g. too few samples inside the moving image
        raise BadCase(
            patient_id,
            path,
            f"registration of the {phase} phase to the {config['reference']} phase failed "
            f"({str(error).strip().splitlines()[-1][:160]})",
            _fix(phase, config),
            stage="registration",
        ) from error
    if metric > initial_metric + DIVERGENCE_TOLERANCE * abs(initial_metric):
        raise BadCase(
            patient_id,
            path,
            f"registration of the {phase} phase to the {config['reference']} phase diverged "
            f"(mutual information {metric:.4f} is worse than unregistered {initial_metric:.4f})",
            _fix(phase, config),
            stage="registration",
        )
    _require_coverage(patient_id, phase, moving, transform, low, high, config, path)
    return {
        "transform": transform_record(transform),
        "metric": float(metric),
        "initial_metric": float(initial_metric),
        "iterations": int(iterations),
        "stop": stop,
        "seconds": round(time.perf_counter() - start, 3),
    }


def _fix(phase: str, config: dict) -> str:
    return (
        f"check that the {phase} series shows the same kidney as the {config['reference']} series; "
        f"provide the {phase} phase already registered and set imaging.registration.method: none, "
        f"or drop {phase} from imaging.phases"
    )


def _require_coverage(patient_id, phase, moving, transform, low, high, config, path) -> None:
    """The tumour box, moved by the transform, lies inside the phase's scan and moved at most
    max_displacement_mm."""
    corners = box_corners(low, high)
    moved = np.array([transform.TransformPoint(c.tolist()) for c in corners])
    displacement = float(np.max(np.linalg.norm(moved - corners, axis=1)))
    if displacement > float(config["max_displacement_mm"]):
        raise BadCase(
            patient_id,
            path,
            f"registration of the {phase} phase to the {config['reference']} phase moved the tumour "
            f"by {displacement:.1f} mm (more than max_displacement_mm {config['max_displacement_mm']})",
            _fix(phase, config),
            stage="registration",
        )
    index = np.array([moving.TransformPhysicalPointToContinuousIndex(p.tolist()) for p in moved])
    size = np.array(moving.GetSize())
    if np.any(index < -0.5) or np.any(index > size - 0.5):
        raise BadCase(
            patient_id,
            path,
            f"the {phase} series does not cover the whole tumour (its scan range ends inside the tumour)",
            f"use a {phase} series whose field of view covers the kidney, or drop {phase} from imaging.phases",
            stage="registration",
        )


def register_case(
    patient_id: str,
    images: dict[str, sitk.Image],
    mask: sitk.Image,
    config: dict,
    seed: int,
    threads: int = 1,
    paths: dict | None = None,
) -> dict:
    """Register every phase of one patient to the reference phase (raises BadCase).

    The tumour box comes from the mask, on whichever phase it was drawn: the phases share the
    scanner's coordinate frame up to a few millimetres, which roi_margin_mm covers. ``mask``
    None: the region both phases' scans cover.
    """
    config = settings(config)
    reference = config["reference"]
    if reference not in images:
        raise BadCase(
            patient_id, (paths or {}).get(reference, ""),
            f"the reference phase {reference} is missing", "add the phase or choose another imaging.registration.reference",
            stage="registration",
        )  # fmt: skip
    phases = {}
    for phase, image in images.items():
        if phase == reference:
            phases[phase] = {"transform": transform_record(identity()), "reference": True}
        else:
            # Without a mask (an automatic segmentation comes later) the region is the part of
            # the scans that both phases cover.
            box = tumour_box(mask) if mask is not None else shared_box(images[reference], image)
            phases[phase] = register_phase(
                patient_id, phase, images[reference], image, box, config, seed, threads, (paths or {}).get(phase, "")
            )
        # The phase's native grid: a mask drawn later on this series (a correction, a second
        # reader) is recognised by it and carried through this phase's transform.
        phases[phase]["grid"] = geometry(image)
    return {"reference": reference, "method": config["method"], "phases": phases}


def registration_verdict(
    patient_id: str,
    inspection: dict,
    load,
    mask_phase: str,
    config: dict,
    seed: int,
    on_bad_case: str,
    threads: int = 1,
    paths: dict | None = None,
) -> dict:
    """results/imaging/{patient}/registration.json: the transforms, or why the patient is out.

    ``inspection``: the patient's inspection verdict; a patient already excluded there is
    skipped (``load`` is not called). ``load()`` returns (images by phase, mask).
    A failed registration is an exclusion record (stage registration) unless on_bad_case is fail.
    """
    record = {"patient_id": patient_id, "mask_phase": mask_phase, "skipped": False}
    if not inspection["ok"]:
        return {**record, "ok": False, "skipped": True, "stage": "registration",
                "reason": "excluded at inspection", "file": "", "fix": ""}  # fmt: skip
    start = time.perf_counter()
    try:
        images, mask = load()
        result = register_case(patient_id, images, mask, config, seed, threads, paths)
    except BadCase as bad:
        if on_bad_case == "fail":
            raise
        return {**record, "ok": False, **bad.as_record()}
    return {
        **record, "ok": True, "stage": "registration", "reason": "", "file": "", "fix": "",
        **result, "seconds": round(time.perf_counter() - start, 3),
    }  # fmt: skip


def transforms_of(record: dict) -> dict[str, sitk.Transform]:
    """The transform of every phase in a registration.json record."""
    return {phase: transform_from_record(entry["transform"]) for phase, entry in record["phases"].items()}


def _map_points(transform: sitk.Transform, points: np.ndarray) -> np.ndarray:
    """Vectorised TransformPoint for matrix-offset transforms (Euler3D, affine)."""
    matrix = np.asarray(transform.GetMatrix()).reshape(3, 3)
    centre = np.asarray(transform.GetCenter())
    return (points - centre) @ matrix.T + centre + np.asarray(transform.GetTranslation())


def target_registration_error(planted: sitk.Transform, recovered: sitk.Transform, points: np.ndarray) -> dict:
    """Mean and maximum distance (mm) between where the planted and the recovered transform
    send each point (N x 3, physical, reference phase): the target registration error."""
    points = np.asarray(points, float)
    distance = np.linalg.norm(_map_points(planted, points) - _map_points(recovered, points), axis=1)
    return {"tre_mm": float(distance.mean()), "tre_max_mm": float(distance.max())}


def foreground_points(image: sitk.Image) -> np.ndarray:
    """Physical (x, y, z) of every non-zero voxel."""
    index = np.argwhere(sitk.GetArrayViewFromImage(image) > 0)[:, ::-1].astype(float)
    spacing = np.asarray(image.GetSpacing())
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    return np.asarray(image.GetOrigin()) + (index * spacing) @ direction.T


def planted_transform(row) -> sitk.Euler3DTransform:
    """A row of results/truth/phase_transforms.tsv as the transform it describes."""
    return sitk.Euler3DTransform(
        [float(row[f"center_{a}_mm"]) for a in "xyz"],
        *np.deg2rad([float(row[f"angle_{a}_deg"]) for a in "xyz"]),
        [float(row[f"translation_{a}_mm"]) for a in "xyz"],
    )


TABLE_COLUMNS = [
    "patient_id", "phase", "reference", "method", "metric", "initial_metric", "iterations",
    "seconds", "tre_mm", "tre_max_mm", "tre_unregistered_mm",
]  # fmt: skip


def registration_table(records: list[dict], truth=None, truth_targets: dict | None = None):
    """results/imaging/registration.tsv: one row per registered patient and non-reference phase.

    With the planted transforms (``truth``: results/truth/phase_transforms.tsv) and a target
    image per patient (``truth_targets``: the planted habitat map), the target registration
    error over the tumour's voxels: mean (tre_mm) and maximum (tre_max_mm), and the planted
    misalignment itself (tre_unregistered_mm: the error of not registering).
    """
    import pandas as pd

    planted = {}
    if truth is not None:
        planted = {(r["patient_id"], r["phase"]): planted_transform(r) for _, r in truth.iterrows()}
    rows = []
    for record in records:
        if not record["ok"]:
            continue
        patient = record["patient_id"]
        points = None
        if truth_targets and patient in truth_targets:
            points = foreground_points(sitk.ReadImage(str(truth_targets[patient])))
        for phase, entry in record["phases"].items():
            if entry.get("reference"):
                continue
            row = {"patient_id": patient, "phase": phase, "reference": record["reference"], "method": record["method"],
                   **{k: entry[k] for k in ("metric", "initial_metric", "iterations", "seconds")}}  # fmt: skip
            if points is not None and (patient, phase) in planted:
                truth_transform = planted[(patient, phase)]
                row.update(target_registration_error(truth_transform, transform_from_record(entry["transform"]), points))
                row["tre_unregistered_mm"] = target_registration_error(truth_transform, identity(), points)["tre_mm"]
            rows.append(row)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS).sort_values(["patient_id", "phase"]).reset_index(drop=True)


def _largest_slice(mask: np.ndarray) -> int:
    return int(np.argmax(mask.reshape(mask.shape[0], -1).sum(axis=1)))


def checkerboard(a: np.ndarray, b: np.ndarray, tile: int) -> np.ndarray:
    """Tiles alternating between a and b (2-D arrays of one shape)."""
    rows, cols = np.indices(a.shape)
    return np.where(((rows // tile) + (cols // tile)) % 2 == 0, a, b)


def qc_figure(cases: list[dict], reference: str, window: dict, png, svg, margin_mm: float = 30.0) -> None:
    """Checkerboard of the reference phase and each registered phase on the tumour's largest
    axial slice (tiles of 8 mm), with the tumour contour; one row per patient.

    ``cases``: [{patient_id, images: {phase: path on the reference grid}, mask: path}].
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..core.figure_writer import save_png_svg

    moving = [p for p in cases[0]["images"] if p != reference] if cases else []
    n_cols = max(1, len(moving))
    fig, axes = plt.subplots(len(cases), n_cols, figsize=(3.2 * n_cols, 3.2 * max(1, len(cases))), squeeze=False)
    low, high = window["level"] - window["width"] / 2, window["level"] + window["width"] / 2
    for row, case in enumerate(cases):
        mask_image = sitk.ReadImage(str(case["mask"]))
        mask = sitk.GetArrayFromImage(mask_image) > 0
        k = _largest_slice(mask)
        spacing = mask_image.GetSpacing()
        ys, xs = np.nonzero(mask[k])
        pad_y, pad_x = int(margin_mm / spacing[1]), int(margin_mm / spacing[0])
        crop = (slice(max(0, ys.min() - pad_y), ys.max() + pad_y + 1), slice(max(0, xs.min() - pad_x), xs.max() + pad_x + 1))
        fixed = sitk.GetArrayFromImage(sitk.ReadImage(str(case["images"][reference])))[k][crop]
        tile = max(2, int(round(8.0 / spacing[0])))
        for col, phase in enumerate(moving):
            other = sitk.GetArrayFromImage(sitk.ReadImage(str(case["images"][phase])))[k][crop]
            ax = axes[row, col]
            ax.imshow(checkerboard(fixed, other, tile), cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            ax.contour(mask[k][crop], levels=[0.5], colors="tab:red", linewidths=0.8)
            ax.set_title(f"{case['patient_id']}: {reference} | {phase}", fontsize=8)
            ax.set_axis_off()
    for ax in axes.ravel()[len(cases) * n_cols:]:
        ax.set_axis_off()
    fig.tight_layout()
    if Path(svg) != Path(png).with_suffix(".svg"):
        raise ValueError(f"{png} and {svg} must share their name")
    save_png_svg(fig, Path(png).with_suffix(""))
