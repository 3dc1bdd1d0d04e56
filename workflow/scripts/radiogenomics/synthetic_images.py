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

from . import grid
from .io import atomic_path

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
        """Arterial HU, venous HU, tumour indicator and habitat label on the grid xs x ys x zs.

        Arrays are shaped (z, y, x) like SimpleITK's numpy view. No noise or offset here.
        """
        shape = (len(zs), len(ys), len(xs))
        kidney_q = self._kidney_q(xs, ys, zs)
        tissue = np.zeros(shape, np.int8)  # 0 fat
        wall = (ys > self.fov_high[1] - BODY_WALL_MM)[None, :, None] | (
            xs < self.fov_low[0] + BODY_WALL_MM
        )[None, None, :]
        tissue[np.broadcast_to(wall, shape)] = 1
        tissue[kidney_q < 1.0] = 3
        tissue[(kidney_q < 1.0) & (kidney_q > 0.7)] = 2
        lut = np.array(
            [TISSUE_HU[k] for k in ("fat", "soft_tissue", "kidney_cortex", "kidney_medulla")]
        )
        arterial = np.take(lut[:, 0], tissue)
        venous = np.take(lut[:, 1], tissue)
        habitat = np.zeros(shape, np.uint8)

        # Tumour work only inside its bounding box (+ stranding depth).
        reach = self.r_max + STRANDING_DEPTH_MM + 1.0
        box = [
            np.flatnonzero(np.abs(axis - c) <= reach)
            for axis, c in zip((zs, ys, xs), self.centre[::-1], strict=True)
        ]
        if any(len(b) == 0 for b in box):
            return arterial, venous, habitat > 0, habitat
        sl = tuple(slice(b[0], b[-1] + 1) for b in box)
        bz, by, bx = (zs[sl[0]], ys[sl[1]], xs[sl[2]])
        d = np.stack(
            np.broadcast_arrays(
                (bx - self.centre[0])[None, None, :],
                (by - self.centre[1])[:, None][None],
                (bz - self.centre[2])[:, None, None],
            ),
            axis=-1,
        )
        r = np.linalg.norm(d, axis=-1)
        unit = d / np.maximum(r, 1e-9)[..., None]
        surface = self.radius * radial_factor(unit, self.lobulation_seed)
        inside = r < surface
        sub_habitat = np.where(inside, 1, 0).astype(np.uint8)
        points = d + self.centre
        in_blob = np.zeros(inside.shape, bool)
        for centre in self.blob_centres:
            in_blob |= np.sum((points - centre) ** 2, axis=-1) < self.blob_radius**2
        sub_habitat[inside & in_blob] = 3
        sub_habitat[inside & (r < self.necrotic_scale * surface)] = 2
        habitat[sl] = sub_habitat

        sub_art, sub_ven = arterial[sl], venous[sl]
        if self.stranding_strength > 0:
            depth_out = r - surface
            shell = (depth_out > 0) & (depth_out < STRANDING_DEPTH_MM) & (tissue[sl] == 0)
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
            lattice = (points[inside] - self.texture_origin)[:, ::-1].T
            texture = ndimage.map_coordinates(self.texture, lattice, order=1, mode="nearest")
            # Necrosis is liquefied: half the texture amplitude.
            texture = texture * self.texture_hu * np.where(labels == 2, 0.5, 1.0)
            sub_art[inside] = habitat_lut[labels, 0] + texture
            sub_ven[inside] = habitat_lut[labels, 1] + texture
        return arterial, venous, habitat > 0, habitat


def _axis(origin, spacing, n):
    return origin + spacing * np.arange(n)


def render_native(row) -> dict:
    """Native-grid volumes (int16 HU per phase) and the uint8 reference mask, as numpy (z, y, x).

    Thick slices average sub-samples spread over the slice thickness (partial volume along z).
    """
    phantom = Phantom(row)
    geometry = native_geometry(row)
    spacing, size, origin = geometry["spacing"], geometry["size"], geometry["origin"]
    xs, ys = _axis(origin[0], spacing[0], size[0]), _axis(origin[1], spacing[1], size[1])
    z_centres = _axis(origin[2], spacing[2], size[2])
    n_sub = max(1, int(np.ceil(spacing[2] / 1.0 - 1e-9)))
    offsets = ((np.arange(n_sub) + 0.5) / n_sub - 0.5) * spacing[2]
    shape = (size[2], size[1], size[0])
    arterial = np.zeros(shape)
    venous = np.zeros(shape)
    tumour = np.zeros(shape)
    for start in range(0, size[2], SLICE_CHUNK):
        stop = min(start + SLICE_CHUNK, size[2])
        for offset in offsets:
            a, v, t, _ = phantom.sample(xs, ys, z_centres[start:stop] + offset)
            arterial[start:stop] += a
            venous[start:stop] += v
            tumour[start:stop] += t
    rng = np.random.default_rng([int(row["phantom_seed"]), 3])
    noise_sd, offset_hu = float(row["noise_sd"]), float(row["hu_offset"])
    volumes = {}
    for name, mean in (("arterial", arterial), ("venous", venous)):
        hu = mean / n_sub + rng.normal(0.0, noise_sd, shape) + offset_hu
        volumes[name] = np.clip(np.round(hu), -1024, 3071).astype(np.int16)
    volumes["mask"] = (tumour / n_sub >= 0.5).astype(np.uint8)
    volumes.update(geometry)
    return volumes


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
    reference_image = _to_image(volumes["venous"], volumes)
    phases = [p for p in str(row["phases"]).split(",") if p]
    manifest = {"patient_id": patient_id, "site": row["site"], "format": row["format"]}
    for phase in PHASES:
        if phase not in phases:
            manifest[phase] = ""
            continue
        if row["format"] == "dicom":
            folder = patient_dir / phase
            write_dicom_series(volumes[phase], volumes, folder, patient_id, phase)
            manifest[phase] = str(folder)
            if defect == "unreadable" and phase == phases[0]:
                for path in sorted(folder.glob("*.dcm")):
                    _corrupt(path)
        else:
            path = patient_dir / f"{phase}.nii.gz"
            _write_image(_to_image(volumes[phase], volumes), path)
            manifest[phase] = str(path)
            if defect == "unreadable" and phase == phases[0]:
                _corrupt(path)
    mask_path = patient_dir / "mask.nii.gz"
    if defect == "off_grid_mask":
        _write_image(_off_grid_mask(row, volumes), mask_path)
    else:
        mask = volumes["mask"] if defect != "empty_mask" else np.zeros_like(volumes["mask"])
        _write_image(_to_image(mask, volumes), mask_path)
    manifest["mask"] = str(mask_path)
    _write_image(
        truth_habitats(row, reference_image, analysis_spacing),
        truth_patient_dir / "habitats.nii.gz",
    )
    _write_image(
        truth_kidney(row, reference_image, analysis_spacing), truth_patient_dir / "kidney.nii.gz"
    )
    return manifest


def _off_grid_mask(row, volumes) -> sitk.Image:
    """The tumour sampled on a coarser in-plane grid than the image (a mask from another series)."""
    geometry = {
        "spacing": volumes["spacing"] * np.array([1.5, 1.5, 1.0]),
        "origin": volumes["origin"],
    }
    size = np.maximum(1, np.round(volumes["size"] / np.array([1.5, 1.5, 1.0]))).astype(int)
    axes = [_axis(geometry["origin"][i], geometry["spacing"][i], size[i]) for i in range(3)]
    _, _, tumour, _ = Phantom(row).sample(*axes)
    return _to_image(tumour.astype(np.uint8), geometry)
