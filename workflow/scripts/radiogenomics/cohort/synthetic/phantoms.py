"""CT phantoms of the synthetic cohort: an analytic abdomen with a lobulated, habitat-bearing tumour.

Everything is defined in physical millimetres (tumour shape, habitats, kidney, stranding), so the
same phantom can be sampled on the native scanner grid (with partial volume along z) and on the
1 mm analysis grid where the planted habitat truth lives. Only the texture field is a lattice
(1 mm, Gaussian-filtered white noise) and it is sampled by trilinear interpolation.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

from ...imaging import grid
from ...core.io import atomic_path, write_label_map

PHASES = ("arterial", "venous")
HABITAT_NAMES = {1: "viable", 2: "necrotic", 3: "intermediate"}
TRUE_K = 3

# Mean HU per tissue and phase (arterial, venous). Habitat means are far apart compared with
# texture (<= 20 HU) + scanner noise (<= 15 HU) so a GMM on both phases can recover them.
TISSUE_HU = {
    "fat": (-100.0, -100.0),
    "soft_tissue": (45.0, 55.0),
    "kidney_cortex": (150.0, 170.0),
    "kidney_medulla": (60.0, 150.0),
    "viable": (170.0, 130.0),
    "necrotic": (20.0, 20.0),
    "intermediate": (70.0, 140.0),
}
KIDNEY_SEMI_AXES_MM = np.array([28.0, 24.0, 50.0])
BODY_WALL_MM = 6.0
STRANDING_DEPTH_MM = 6.0
TEXTURE_SIGMA_MM = 2.0
N_BUMPS = 5
BUMP_KAPPA = 3.0
N_STREAKS = 60
STREAK_KAPPA = 40.0
N_INTERMEDIATE_BLOBS = 2
MIN_BLOB_RADIUS_MM = 4.5
SLICE_CHUNK = 8
TUMOUR_MARGIN_MM = 12.0  # every phase's scan covers the tumour with at least this margin


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fibonacci_directions(n: int = 2000) -> np.ndarray:
    """Near-uniform unit vectors; used to measure the radial function's extremes and moments."""
    k = np.arange(n) + 0.5
    polar = np.arccos(1 - 2 * k / n)
    azimuth = np.pi * (1 + 5**0.5) * k
    return np.stack(
        [np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1
    )


def lobulation(lobulation_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bump directions and amplitudes of the radial modulation rho(u) = 1 + sum a_j k_j(u)."""
    rng = np.random.default_rng([int(lobulation_seed), 1])
    return _unit_vectors(rng, N_BUMPS), rng.uniform(0.05, 0.15, N_BUMPS)


def radial_factor(unit: np.ndarray, lobulation_seed: int) -> np.ndarray:
    """rho(u) for unit vectors ``unit`` (..., 3): sum-of-von-Mises-bumps lobulation."""
    directions, amplitudes = lobulation(lobulation_seed)
    rho = np.ones(unit.shape[:-1])
    for v, a in zip(directions, amplitudes, strict=True):
        rho += a * np.exp(BUMP_KAPPA * (unit @ v - 1.0))
    return rho


def shape_summary(lobulation_seed: int) -> dict:
    """Unit-radius shape facts: max caliper through the centre, max rho, mean rho**3 (volume)."""
    u = fibonacci_directions()
    rho = radial_factor(u, lobulation_seed)
    rho_opposite = radial_factor(-u, lobulation_seed)
    return {
        "caliper": float(np.max(rho + rho_opposite)),
        "rho_max": float(rho.max()),
        "rho3_mean": float(np.mean(rho**3)),
    }


def native_geometry(row) -> dict:
    """Native grid: FOV box [-fov/2, fov/2] per axis, voxel centres half a voxel inside."""
    spacing = np.array([row["spacing_x"], row["spacing_y"], row["spacing_z"]], float)
    fov = np.array([row["fov_x"], row["fov_y"], row["fov_z"]], float)
    size = np.maximum(1, np.round(fov / spacing)).astype(int)
    origin = -fov / 2 + spacing / 2
    return {"spacing": spacing, "size": size, "origin": origin}


class Phantom:
    """The analytic phantom of one patient (one row of the phantoms table)."""

    def __init__(self, row):
        self.row = row
        self.centre = np.array([row["centre_x"], row["centre_y"], row["centre_z"]], float)
        self.radius = float(row["radius_mm"])
        self.lobulation_seed = int(row["lobulation_seed"])
        summary = shape_summary(self.lobulation_seed)
        self.r_max = self.radius * summary["rho_max"]
        self.necrotic_scale = float(row["necrotic_fraction"]) ** (1.0 / 3.0)
        self.kidney_centre = np.array([row["kidney_x"], row["kidney_y"], row["kidney_z"]], float)
        rng = np.random.default_rng([int(row["phantom_seed"]), 2])
        self._place_blobs(rng, summary["rho3_mean"], float(row["intermediate_fraction"]))
        self.streak_directions = _unit_vectors(rng, N_STREAKS)
        self.streak_hu = rng.uniform(-20.0, 10.0, N_STREAKS)
        self.streak_depth = rng.uniform(3.0, STRANDING_DEPTH_MM, N_STREAKS)
        self.stranding_strength = float(row["stranding_strength"])  # 0 = no stranding
        self.texture_hu = float(row["texture_hu"])
        self._texture_field(rng)
        fov = np.array([row["fov_x"], row["fov_y"], row["fov_z"]], float)
        self.fov_low, self.fov_high = -fov / 2, fov / 2

    def _place_blobs(self, rng, rho3_mean, fraction):
        """Intermediate habitat: a few spheres centred midway in the viable shell.

        About half of each sphere falls into necrosis or outside the tumour, hence twice the
        target volume per sphere.
        """
        volume = 4.0 / 3.0 * np.pi * self.radius**3 * rho3_mean
        blob_volume = 2.0 * fraction * volume / N_INTERMEDIATE_BLOBS
        blob_radius = max(MIN_BLOB_RADIUS_MM, (blob_volume * 3 / (4 * np.pi)) ** (1 / 3))
        directions = _unit_vectors(rng, N_INTERMEDIATE_BLOBS)
        depth = (1.0 + self.necrotic_scale) / 2.0
        rho = radial_factor(directions, self.lobulation_seed)
        self.blob_centres = self.centre + directions * (self.radius * rho * depth)[:, None]
        self.blob_radius = blob_radius

    def _texture_field(self, rng):
        """Spatially correlated noise (Gaussian-filtered, sigma 2 mm) on a 1 mm lattice, unit sd."""
        half = int(np.ceil(self.r_max + 4))
        self.texture_origin = self.centre - half
        noise = rng.normal(size=(2 * half + 1,) * 3)
        field = ndimage.gaussian_filter(noise, TEXTURE_SIGMA_MM, mode="wrap")
        self.texture = (field / field.std()).astype(np.float32)

    def _kidney_q(self, xs, ys, zs):
        """Ellipsoidal radius of the kidney (< 1 inside), shaped (z, y, x)."""
        return np.sqrt(
            ((xs[None, None, :] - self.kidney_centre[0]) / KIDNEY_SEMI_AXES_MM[0]) ** 2
            + ((ys[None, :, None] - self.kidney_centre[1]) / KIDNEY_SEMI_AXES_MM[1]) ** 2
            + ((zs[:, None, None] - self.kidney_centre[2]) / KIDNEY_SEMI_AXES_MM[2]) ** 2
        )

    def kidney(self, xs, ys, zs):
        """The kidney outside the tumour, as a reference kidney label (z, y, x)."""
        _, _, tumour, _ = self.sample(xs, ys, zs)
        return (self._kidney_q(xs, ys, zs) < 1.0) & ~tumour

    def sample(self, xs, ys, zs):
        """sample_points on the axis-aligned grid xs x ys x zs (arrays shaped (z, y, x))."""
        zz, yy, xx = np.meshgrid(zs, ys, xs, indexing="ij")
        return self.sample_points(np.stack([xx, yy, zz], axis=-1))

    def sample_points(self, points):
        """Arterial HU, venous HU, tumour indicator and habitat label at anatomical points.

        ``points``: (..., 3) physical (x, y, z) in the phantom's (the reference phase's) frame;
        results are shaped points.shape[:-1]. No noise or offset here.
        """
        shape = points.shape[:-1]
        x, y = points[..., 0], points[..., 1]
        kidney_q = np.sqrt(np.sum(((points - self.kidney_centre) / KIDNEY_SEMI_AXES_MM) ** 2, axis=-1))
        tissue = np.zeros(shape, np.int8)  # 0 fat
        tissue[(y > self.fov_high[1] - BODY_WALL_MM) | (x < self.fov_low[0] + BODY_WALL_MM)] = 1
        tissue[kidney_q < 1.0] = 3
        tissue[(kidney_q < 1.0) & (kidney_q > 0.7)] = 2
        lut = np.array(
            [TISSUE_HU[k] for k in ("fat", "soft_tissue", "kidney_cortex", "kidney_medulla")]
        )
        arterial = np.take(lut[:, 0], tissue)
        venous = np.take(lut[:, 1], tissue)
        habitat = np.zeros(shape, np.uint8)

        # Tumour work only near it (+ stranding depth).
        reach = self.r_max + STRANDING_DEPTH_MM + 1.0
        near = np.all(np.abs(points - self.centre) <= reach, axis=-1)
        if not near.any():
            return arterial, venous, habitat > 0, habitat
        near_points = points[near]
        d = near_points - self.centre
        r = np.linalg.norm(d, axis=-1)
        unit = d / np.maximum(r, 1e-9)[..., None]
        surface = self.radius * radial_factor(unit, self.lobulation_seed)
        inside = r < surface
        sub_habitat = np.where(inside, 1, 0).astype(np.uint8)
        in_blob = np.zeros(inside.shape, bool)
        for centre in self.blob_centres:
            in_blob |= np.sum((near_points - centre) ** 2, axis=-1) < self.blob_radius**2
        sub_habitat[inside & in_blob] = 3
        sub_habitat[inside & (r < self.necrotic_scale * surface)] = 2
        habitat[near] = sub_habitat

        sub_art, sub_ven = arterial[near], venous[near]
        if self.stranding_strength > 0:
            depth_out = r - surface
            shell = (depth_out > 0) & (depth_out < STRANDING_DEPTH_MM) & (tissue[near] == 0)
            if shell.any():
                u_shell = unit[shell]
                alignment = u_shell @ self.streak_directions.T
                best = np.argmax(alignment, axis=1)
                in_streak = (
                    np.exp(STREAK_KAPPA * (alignment[np.arange(len(best)), best] - 1.0)) > 0.5
                ) & (depth_out[shell] < self.streak_depth[best])
                fat = TISSUE_HU["fat"][0]
                streak = fat + self.stranding_strength * (self.streak_hu[best] - fat)
                level = np.where(in_streak, streak, fat)
                sub_art[shell] = level
                sub_ven[shell] = level + np.where(in_streak, 5.0, 0.0)
        if inside.any():
            habitat_lut = np.array([(0.0, 0.0)] + [TISSUE_HU[HABITAT_NAMES[k]] for k in (1, 2, 3)])
            labels = sub_habitat[inside]
            lattice = (near_points[inside] - self.texture_origin)[:, ::-1].T
            texture = ndimage.map_coordinates(self.texture, lattice, order=1, mode="nearest")
            # Necrosis is liquefied: half the texture amplitude.
            texture = texture * self.texture_hu * np.where(labels == 2, 0.5, 1.0)
            sub_art[inside] = habitat_lut[labels, 0] + texture
            sub_ven[inside] = habitat_lut[labels, 1] + texture
        arterial[near], venous[near] = sub_art, sub_ven
        return arterial, venous, habitat > 0, habitat


def _axis(origin, spacing, n):
    return origin + spacing * np.arange(n)


def phase_transform(row, phase: str) -> sitk.Euler3DTransform:
    """The planted misalignment of one phase (identity for the reference phase).

    ITK convention, as a registration of this phase to the reference phase recovers it: it maps
    a physical point of the reference phase (the phantom's frame) to the point of this phase's
    scan that shows the same anatomy. Rotation about the table centre (0, 0, 0).
    """
    angles = np.deg2rad([float(row[f"{phase}_angle_{axis}_deg"]) for axis in "xyz"])
    translation = [float(row[f"{phase}_translation_{axis}_mm"]) for axis in "xyz"]
    return sitk.Euler3DTransform((0.0, 0.0, 0.0), *angles, translation)


def to_anatomy(points: np.ndarray, transform: sitk.Euler3DTransform) -> np.ndarray:
    """Phase-scan points (..., 3) -> the phantom's frame: the inverse of the rigid transform."""
    rotation = np.asarray(transform.GetMatrix()).reshape(3, 3)
    centre = np.asarray(transform.GetCenter())
    shift = points - centre - np.asarray(transform.GetTranslation())
    return shift @ rotation + centre  # row vectors: v @ R == (R^T v)^T


def phase_geometry(row, phase: str) -> dict:
    """Native grid of one phase: the reference phase's grid (native_geometry), or, for another
    phase, the same in-plane grid with its own z extent (fov_z times {phase}_z_scale) and slice
    count, placed at {phase}_z_position (-1..1) of the room that keeps the moved tumour plus
    TUMOUR_MARGIN_MM inside the scan."""
    geometry = native_geometry(row)
    if phase == row["reference_phase"]:
        return geometry
    spacing = geometry["spacing"]
    r_max = float(row["radius_mm"]) * shape_summary(int(row["lobulation_seed"]))["rho_max"]
    centre = [float(row[f"centre_{axis}"]) for axis in "xyz"]
    tumour_z = phase_transform(row, phase).TransformPoint(centre)[2]
    need = r_max + TUMOUR_MARGIN_MM
    n_slices = int(round(max(float(row["fov_z"]) * float(row[f"{phase}_z_scale"]), 2 * need + 2 * spacing[2]) / spacing[2]))
    room = max(0.0, n_slices * spacing[2] / 2 - need)
    z_centre = tumour_z + float(row[f"{phase}_z_position"]) * room
    size = geometry["size"].copy()
    size[2] = n_slices
    origin = geometry["origin"].copy()
    origin[2] = z_centre - (n_slices - 1) * spacing[2] / 2
    return {"spacing": spacing, "size": size, "origin": origin}


def _render_phase(phantom: Phantom, row, phase: str, with_mask: bool):
    """One phase on its native grid: mean HU and (with_mask) tumour fraction per voxel.

    Thick slices average sub-samples spread over the slice thickness (partial volume along z).
    """
    geometry = phase_geometry(row, phase)
    transform = phase_transform(row, phase)
    spacing, size, origin = geometry["spacing"], geometry["size"], geometry["origin"]
    xs, ys = _axis(origin[0], spacing[0], size[0]), _axis(origin[1], spacing[1], size[1])
    z_centres = _axis(origin[2], spacing[2], size[2])
    n_sub = max(1, int(np.ceil(spacing[2] / 1.0 - 1e-9)))
    offsets = ((np.arange(n_sub) + 0.5) / n_sub - 0.5) * spacing[2]
    shape = (size[2], size[1], size[0])
    hu = np.zeros(shape)
    tumour = np.zeros(shape)
    which = PHASES.index(phase)
    for start in range(0, size[2], SLICE_CHUNK):
        stop = min(start + SLICE_CHUNK, size[2])
        for offset in offsets:
            zz, yy, xx = np.meshgrid(z_centres[start:stop] + offset, ys, xs, indexing="ij")
            points = to_anatomy(np.stack([xx, yy, zz], axis=-1), transform)
            values = phantom.sample_points(points)
            hu[start:stop] += values[which]
            tumour[start:stop] += values[2]
    return hu / n_sub, (tumour / n_sub >= 0.5).astype(np.uint8) if with_mask else None, geometry


def render_native(row) -> dict:
    """Every phase on its own native grid, misaligned by its planted transform, as int16 HU numpy
    (z, y, x) arrays with their geometry; the uint8 reference mask on the mask phase's grid.

    Returns {"phases": {phase: {"array", "spacing", "size", "origin"}}, "mask": {...}}.
    """
    phantom = Phantom(row)
    noise_sd, offset_hu = float(row["noise_sd"]), float(row["hu_offset"])
    out = {"phases": {}}
    for phase in PHASES:
        with_mask = phase == row["mask_phase"]
        mean, mask, geometry = _render_phase(phantom, row, phase, with_mask)
        rng = np.random.default_rng([int(row["phantom_seed"]), 3, PHASES.index(phase)])
        hu = mean + rng.normal(0.0, noise_sd, mean.shape) + offset_hu
        out["phases"][phase] = {"array": np.clip(np.round(hu), -1024, 3071).astype(np.int16), **geometry}
        if with_mask:
            out["mask"] = {"array": mask, **geometry}
    return out


def _to_image(array, geometry) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(s) for s in geometry["spacing"]])
    image.SetOrigin([float(o) for o in geometry["origin"]])
    return image


def _analysis_grid(native_image: sitk.Image, analysis_spacing) -> tuple[sitk.Image, list]:
    """The grid the imaging stage resamples to, and its voxel-centre axes (x, y, z)."""
    reference = grid.reference_like(native_image, analysis_spacing)
    spacing, origin, size = reference.GetSpacing(), reference.GetOrigin(), reference.GetSize()
    return reference, [_axis(origin[i], spacing[i], size[i]) for i in range(3)]


def _on_grid(array, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.CopyInformation(reference)
    return image


def truth_habitats(row, native_image: sitk.Image, analysis_spacing=(1.0, 1.0, 1.0)) -> sitk.Image:
    """Planted habitat labels (0 outside, 1..3) on grid.reference_like(native, analysis_spacing)."""
    reference, axes = _analysis_grid(native_image, analysis_spacing)
    _, _, _, habitat = Phantom(row).sample(*axes)
    return _on_grid(habitat, reference)


def truth_kidney(row, native_image: sitk.Image, analysis_spacing=(1.0, 1.0, 1.0)) -> sitk.Image:
    """The planted kidney outside the tumour (0/1) on the grid of ``truth_habitats``.

    The reference kidney label a segmentation model (nnU-Net: kidney + tumour) trains on.
    """
    reference, axes = _analysis_grid(native_image, analysis_spacing)
    return _on_grid(Phantom(row).kidney(*axes), reference)


def _write_image(image: sitk.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def _uid(*parts) -> str:
    """Deterministic DICOM UID under the 2.25 (UUID-derived) root."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()
    return "2.25." + str(int(digest[:30], 16))


def write_dicom_series(array, geometry, folder: Path, patient_id: str, phase: str) -> None:
    """One single-frame CT Image Storage file per slice (stored unsigned, intercept -1024)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spacing, origin = geometry["spacing"], geometry["origin"]
    study_uid = _uid(patient_id, "study")
    series_uid = _uid(patient_id, "series", phase)
    frame_uid = _uid(patient_id, "frame")
    stored = (array.astype(np.int32) + 1024).astype(np.uint16)
    series_number = PHASES.index(phase) + 2
    for k in range(array.shape[0]):
        sop_uid = _uid(patient_id, phase, k)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.PatientID = patient_id
        ds.PatientName = patient_id
        ds.StudyDate = ds.SeriesDate = "20200101"
        ds.Modality = "CT"
        ds.Manufacturer = "radiogenomics synthetic phantom"
        ds.SeriesDescription = f"{phase} phase"
        ds.ContrastBolusAgent = "iodinated contrast"
        ds.SeriesNumber = series_number
        ds.InstanceNumber = k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [
            f"{origin[0]:.6f}",
            f"{origin[1]:.6f}",
            f"{origin[2] + k * spacing[2]:.6f}",
        ]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]  # row (y), column (x)
        ds.SliceThickness = f"{spacing[2]:.6f}"
        ds.SpacingBetweenSlices = f"{spacing[2]:.6f}"
        ds.SliceLocation = f"{origin[2] + k * spacing[2]:.6f}"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = array.shape[1], array.shape[2]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.PixelData = stored[k].tobytes()
        with atomic_path(folder / f"{phase}_{k + 1:04d}.dcm") as tmp:
            ds.save_as(tmp, enforce_file_format=True)


def _corrupt(path: Path) -> None:
    """Keep the first 40 bytes, then garbage: the file exists but its header cannot be decoded.

    (ITK silently reads a .nii.gz truncated after its header, so the header itself is cut.)
    """
    data = path.read_bytes()
    path.write_bytes(data[:40] + b"\xde\xad\xbe\xef" * 64)


def write_phantom(phantom_row, patient_dir, truth_patient_dir, analysis_spacing=(1.0, 1.0, 1.0)):
    """Write one patient's CT phases, reference mask and planted habitat and kidney truth.

    Returns the manifest row: patient_id, site, format, arterial, venous, mask (paths; empty
    string for a missing phase).
    """
    row = pd.Series(phantom_row) if isinstance(phantom_row, dict) else phantom_row
    patient_dir, truth_patient_dir = Path(patient_dir), Path(truth_patient_dir)
    patient_id, defect = str(row["patient_id"]), str(row.get("defect", "") or "")
    if defect == "nan":
        defect = ""
    volumes = render_native(row)
    phases = [p for p in str(row["phases"]).split(",") if p]
    manifest = {"patient_id": patient_id, "site": row["site"], "format": row["format"]}
    for phase in PHASES:
        if phase not in phases:
            manifest[phase] = ""
            continue
        volume = volumes["phases"][phase]
        if row["format"] == "dicom":
            folder = patient_dir / phase
            write_dicom_series(volume["array"], volume, folder, patient_id, phase)
            manifest[phase] = str(folder)
            if defect == "unreadable" and phase == phases[0]:
                for path in sorted(folder.glob("*.dcm")):
                    _corrupt(path)
        else:
            path = patient_dir / f"{phase}.nii.gz"
            _write_image(_to_image(volume["array"], volume), path)
            manifest[phase] = str(path)
            if defect == "unreadable" and phase == phases[0]:
                _corrupt(path)
    mask_path = patient_dir / "mask.nii.gz"
    mask = volumes["mask"]
    if defect == "off_grid_mask":
        write_label_map(_off_grid_mask(row, mask), mask_path)
    else:
        array = mask["array"] if defect != "empty_mask" else np.zeros_like(mask["array"])
        write_label_map(_to_image(array, mask), mask_path)
    manifest["mask"] = str(mask_path)
    manifest["mask_phase"] = str(row["mask_phase"])
    reference = volumes["phases"][str(row["reference_phase"])]
    reference_grid = _to_image(reference["array"], reference)
    write_label_map(
        truth_habitats(row, reference_grid, analysis_spacing),
        truth_patient_dir / "habitats.nii.gz",
    )
    write_label_map(
        truth_kidney(row, reference_grid, analysis_spacing), truth_patient_dir / "kidney.nii.gz"
    )
    return manifest


def _off_grid_mask(row, mask) -> sitk.Image:
    """The tumour sampled on a coarser in-plane grid than its phase (a mask from another series)."""
    geometry = {
        "spacing": mask["spacing"] * np.array([1.5, 1.5, 1.0]),
        "origin": mask["origin"],
    }
    size = np.maximum(1, np.round(mask["size"] / np.array([1.5, 1.5, 1.0]))).astype(int)
    axes = [_axis(geometry["origin"][i], geometry["spacing"][i], size[i]) for i in range(3)]
    zz, yy, xx = np.meshgrid(*axes[::-1], indexing="ij")
    points = to_anatomy(np.stack([xx, yy, zz], axis=-1), phase_transform(row, str(row["mask_phase"])))
    _, _, tumour, _ = Phantom(row).sample_points(points)
    return _to_image(tumour.astype(np.uint8), geometry)
