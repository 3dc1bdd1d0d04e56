"""Imaging regions: body mask, peritumoral shell and population-level GMM habitats.

Arrays are numpy views of SimpleITK images, i.e. indexed (z, y, x); every spacing argument here
is therefore in (z, y, x) order (``ct.GetSpacing()[::-1]``).

Habitat model in short: per-voxel features (intensity per phase after light in-tumour smoothing,
plus log local standard deviation of the high-pass residual per phase) from TRAINING tumours are z-scored and clustered with a
full-covariance Gaussian mixture; K is chosen by BIC (with an elbow tolerance, see
HabitatModel) on a fixed-size, per-patient-balanced voxel sample; components are ordered by their mean of the first feature (ascending), so ``sub1`` is
always the lowest-attenuation habitat of the first phase (alphabetically: arterial before venous).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

ORDERING_RULE = (
    "components sorted by mean of feature 0 (first phase intensity), ascending; label = rank + 1"
)


def body_mask(ct: sitk.Image, threshold_hu: float = -500) -> np.ndarray:
    """Largest connected component above ``threshold_hu``, with holes filled (bool, z-y-x)."""
    above = sitk.GetArrayFromImage(ct) > threshold_hu
    labels, n_components = ndimage.label(above)
    if n_components == 0:
        return np.zeros_like(above, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    body = ndimage.binary_fill_holes(body)
    # Gas in lungs or bowel that touches the top/bottom slice is not enclosed in 3D; filling each
    # axial slice as well closes it.
    for z in range(body.shape[0]):
        body[z] = ndimage.binary_fill_holes(body[z])
    return body


def peritumoral_shell(
    tumor: np.ndarray, spacing_zyx, body: np.ndarray, margin_mm: float = 3.0
) -> np.ndarray:
    """Voxels outside the tumour whose centre lies within ``margin_mm`` (physical, Euclidean) of
    the nearest tumour-voxel centre, restricted to ``body``."""
    tumor = np.asarray(tumor, dtype=bool)
    body = np.asarray(body, dtype=bool)
    if tumor.shape != body.shape:
        raise ValueError(f"tumour shape {tumor.shape} differs from body shape {body.shape}")
    if not tumor.any():
        return np.zeros_like(tumor)
    spacing = np.asarray(spacing_zyx, dtype=float)
    # Only the tumour's bounding box plus the margin can hold shell voxels; the distance
    # transform on that box is exact because every tumour voxel lies inside it.
    pad = np.ceil(margin_mm / spacing).astype(int) + 1
    nonzero = np.nonzero(tumor)
    box = tuple(
        slice(max(0, int(idx.min()) - p), min(n, int(idx.max()) + p + 1))
        for idx, p, n in zip(nonzero, pad, tumor.shape)
    )
    distance = ndimage.distance_transform_edt(~tumor[box], sampling=spacing)
    shell = np.zeros_like(tumor)
    # A tiny tolerance keeps voxels at exactly margin_mm despite floating-point rounding.
    shell[box] = (~tumor[box]) & body[box] & (distance <= margin_mm + 1e-9)
    return shell


def ball_footprint(radius_mm: float, spacing_zyx) -> np.ndarray:
    """Boolean ellipsoid of voxels whose centre lies within ``radius_mm`` of the centre voxel."""
    spacing = np.asarray(spacing_zyx, dtype=float)
    half = np.floor(radius_mm / spacing).astype(int)
    grids = np.meshgrid(*[np.arange(-h, h + 1) * s for h, s in zip(half, spacing)], indexing="ij")
    return sum(g**2 for g in grids) <= radius_mm**2 + 1e-9


def _masked_mean(values: np.ndarray, mask: np.ndarray, weights_fn) -> np.ndarray:
    """Normalised convolution: average of ``values`` over the neighbourhood, counting only
    voxels inside ``mask`` (so surrounding tissue never leaks into a tumour voxel)."""
    inside = mask.astype(float)
    numerator = weights_fn(values * inside)
    denominator = weights_fn(inside)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1e-12), 0.0)


def voxel_feature_names(phases, texture: str = "local_std") -> list[str]:
    ordered = sorted(phases)
    names = [f"{phase}_intensity" for phase in ordered]
    if texture == "local_std":
        names += [f"{phase}_local_std" for phase in ordered]
    elif texture != "none":
        raise ValueError(f"unknown texture measure {texture!r}; use 'local_std' or 'none'")
    return names


def voxel_features(
    images: dict,
    tumor: np.ndarray,
    spacing,
    texture: str = "local_std",
    texture_radius_mm: float = 2.0,
    smooth_sigma_mm: float = 1.0,
    highpass_sigma_mm: float = 1.0,
) -> np.ndarray:
    """Per-tumour-voxel features, shape (n_tumour_voxels, n_features), rows in C order of the
    tumour voxels (``np.nonzero(tumor)``), columns as :func:`voxel_feature_names`.

    - intensity: Gaussian-smoothed inside the tumour only (sigma ``smooth_sigma_mm``, 0 = off),
      which damps voxel noise that would otherwise make BIC split habitats;
    - texture ``local_std``: log(1 + local standard deviation) over a ball of
      ``texture_radius_mm``, taken of the high-pass residual (image minus its in-tumour Gaussian
      smoothing at ``highpass_sigma_mm``) so that a step between two habitats (partial volume)
      is not read as texture; the log makes the skewed spread closer to Gaussian for the GMM.

    All neighbourhood averages count tumour voxels only (normalised convolution), so the
    surrounding tissue never leaks into a tumour voxel's features.
    """
    tumor = np.asarray(tumor, dtype=bool)
    names = voxel_feature_names(images, texture)
    if not tumor.any():
        return np.zeros((0, len(names)))
    spacing = np.asarray(spacing, dtype=float)
    # Work on the tumour bounding box plus a margin: neighbourhoods never reach further.
    reach = texture_radius_mm + 4 * max(smooth_sigma_mm, highpass_sigma_mm)
    pad = np.ceil(reach / spacing).astype(int) + 1
    nonzero = np.nonzero(tumor)
    box = tuple(
        slice(max(0, int(idx.min()) - p), min(n, int(idx.max()) + p + 1))
        for idx, p, n in zip(nonzero, pad, tumor.shape)
    )
    mask = tumor[box]
    footprint = ball_footprint(texture_radius_mm, spacing).astype(float)

    def ball_sum(values):
        return ndimage.convolve(values, footprint, mode="constant", cval=0.0)

    def gaussian_filter(sigma_mm):
        return lambda values: ndimage.gaussian_filter(
            values, sigma=sigma_mm / spacing, mode="constant"
        )

    intensity, local_std = [], []
    for phase in sorted(images):
        image = np.asarray(images[phase], dtype=float)
        if image.shape != tumor.shape:
            raise ValueError(
                f"phase {phase}: image shape {image.shape} != mask shape {tumor.shape}"
            )
        crop = image[box]
        if smooth_sigma_mm > 0:
            smoothed = _masked_mean(crop, mask, gaussian_filter(smooth_sigma_mm))
        else:
            smoothed = crop
        intensity.append(smoothed[mask])
        if texture == "local_std":
            residual = crop - _masked_mean(crop, mask, gaussian_filter(highpass_sigma_mm))
            local_std.append(np.log1p(local_standard_deviation(residual, mask, ball_sum))[mask])
    return np.column_stack(intensity + local_std)


def local_standard_deviation(values: np.ndarray, mask: np.ndarray, neighbourhood_sum) -> np.ndarray:
    """Population standard deviation of ``values`` over each voxel's neighbourhood ∩ mask."""
    mean = _masked_mean(values, mask, neighbourhood_sum)
    mean_sq = _masked_mean(values**2, mask, neighbourhood_sum)
    return np.sqrt(np.maximum(mean_sq - mean**2, 0.0))


def subsample_voxels(features: np.ndarray, max_voxels: int, rng: np.random.Generator) -> np.ndarray:
    if len(features) <= max_voxels:
        return features
    return features[np.sort(rng.choice(len(features), size=max_voxels, replace=False))]


class HabitatModel:
    """Population-level GMM habitats: fit on training tumours, apply frozen to everyone.

    Choosing K robustly. Plain BIC (argmin) assumes independent, exactly Gaussian voxels; real
    habitats are neither (partial volume at borders, texture, spatial correlation), and the
    likelihood gain from modelling that misfit with extra components grows with the number of
    voxels, so BIC keeps splitting. Three documented remedies:

    1. a fixed, seeded voxel sample per patient (``max_voxels_per_patient``): bounded n, and big
       tumours do not dominate the population model;
    2. in-tumour smoothing and a high-pass texture measure (see :func:`voxel_features`);
    3. an elbow rule on the BIC curve: K is the smallest K in ``k_range`` whose BIC is within
       ``bic_tolerance`` of the best, measured as a fraction of the best BIC improvement over a
       single Gaussian: (BIC(K) - min BIC) <= tol * (BIC(1) - min BIC). ``bic_tolerance=0``
       is the plain BIC minimum. The relative measure does not depend on the sample size.

    Patients whose voxels lie far from everyone else's (a CT stored without its rescale
    intercept, another modality) would get a component of their own and squeeze the others'
    habitats; :func:`screen_outlier_patients` leaves them out of the fit (``outlier_z``).
    """

    def __init__(
        self,
        n_init: int = 5,
        reg_covar: float = 1e-4,
        bic_tolerance: float = 0.15,
        outlier_z: float | None = None,
    ):
        self.n_init = n_init
        self.reg_covar = reg_covar
        self.bic_tolerance = bic_tolerance
        self.outlier_z = outlier_z

    def _fit_mixture(self, scaled: np.ndarray, k: int, seed: int):
        # Imported here: every per-patient job applies the frozen model, and importing
        # scikit-learn there would cost more than labelling the voxels.
        from sklearn.mixture import GaussianMixture

        return GaussianMixture(
            n_components=k,
            covariance_type="full",
            n_init=self.n_init,
            reg_covar=self.reg_covar,
            random_state=seed,
        ).fit(scaled)

    def fit(
        self,
        feature_arrays: list,
        k_range=(2, 3, 4),
        seed: int = 0,
        max_voxels_per_patient: int = 1000,
        feature_names=None,
        feature_settings: dict | None = None,
        patient_ids=None,
    ) -> "HabitatModel":
        """``feature_settings``: the voxel_features keyword arguments used (stored in the model so
        that every patient is described the same way by :func:`patient_regions`).
        ``patient_ids`` name the arrays in the record of screened-out patients."""
        self.feature_settings = dict(feature_settings or {})
        arrays = [np.asarray(f, dtype=float) for f in feature_arrays]
        ids = list(patient_ids) if patient_ids is not None else [str(i) for i in range(len(arrays))]
        self.screened_out_ = screen_outlier_patients(arrays, ids, self.outlier_z)
        outliers = {entry["patient_id"] for entry in self.screened_out_}
        rng = np.random.default_rng(seed)
        samples = [
            subsample_voxels(f, max_voxels_per_patient, rng)
            for f, patient in zip(arrays, ids, strict=True)
            if len(f) and patient not in outliers
        ]
        if not samples:
            raise ValueError("no tumour voxels to fit the habitat model on")
        pooled = np.vstack(samples)
        n_features = pooled.shape[1]
        self.feature_names = (
            list(feature_names)
            if feature_names is not None
            else [f"f{i}" for i in range(n_features)]
        )
        self.scaler_ = FrozenScaler(pooled.mean(axis=0), _scale(pooled.std(axis=0)))
        scaled = self.scaler_.transform(pooled)
        self.bic_single_gaussian_ = float(self._fit_mixture(scaled, 1, seed).bic(scaled))
        self.bic_ = {}
        mixtures = {}
        for k in sorted(int(k) for k in k_range):
            if k > len(scaled):
                continue
            mixtures[k] = self._fit_mixture(scaled, k, seed)
            self.bic_[k] = float(mixtures[k].bic(scaled))
        self.k_ = choose_k(self.bic_, self.bic_single_gaussian_, self.bic_tolerance)
        fitted = mixtures[self.k_]
        self.mixture_ = FrozenMixture(
            fitted.weights_, fitted.means_, fitted.covariances_
        ).ordered()
        self.seed_ = seed
        self.max_voxels_per_patient_ = max_voxels_per_patient
        self.n_voxels_fit_ = int(len(scaled))
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Labels 1..K (ordered components) for each row of ``features``."""
        features = np.asarray(features, dtype=float)
        if len(features) == 0:
            return np.zeros(0, dtype=np.uint8)
        return (self.mixture_.predict(self.scaler_.transform(features)) + 1).astype(np.uint8)

    def label_volume(self, features: np.ndarray, tumor: np.ndarray) -> np.ndarray:
        """Habitat map: 0 outside the tumour, 1..K inside (``features`` from voxel_features)."""
        tumor = np.asarray(tumor, dtype=bool)
        labels = np.zeros(tumor.shape, dtype=np.uint8)
        labels[tumor] = self.predict(features)
        return labels

    def to_dict(self) -> dict:
        mixture = self.mixture_
        return {
            "k": int(self.k_),
            "bic": {str(k): v for k, v in self.bic_.items()},
            "feature_names": self.feature_names,
            "feature_settings": self.feature_settings,
            "ordering": ORDERING_RULE,
            "scaler": {"mean": self.scaler_.mean_.tolist(), "scale": self.scaler_.scale_.tolist()},
            "means_scaled": mixture.means_.tolist(),
            "means": self.scaler_.inverse_transform(mixture.means_).tolist(),
            "covariances_scaled": mixture.covariances_.tolist(),
            "weights": mixture.weights_.tolist(),
            "seed": int(self.seed_),
            "max_voxels_per_patient": int(self.max_voxels_per_patient_),
            "n_voxels_fit": self.n_voxels_fit_,
            "n_init": self.n_init,
            "reg_covar": self.reg_covar,
            "bic_tolerance": self.bic_tolerance,
            "outlier_z": self.outlier_z,
            "screened_out": self.screened_out_,
            "bic_single_gaussian": self.bic_single_gaussian_,
            "k_rule": "smallest K with BIC(K) - min BIC <= bic_tolerance * (BIC(1) - min BIC)",
        }

    @classmethod
    def from_dict(cls, data: dict) -> "HabitatModel":
        model = cls(
            n_init=int(data["n_init"]),
            reg_covar=float(data["reg_covar"]),
            bic_tolerance=float(data["bic_tolerance"]),
            outlier_z=data.get("outlier_z"),
        )
        model.screened_out_ = list(data.get("screened_out", []))
        model.bic_single_gaussian_ = float(data["bic_single_gaussian"])
        model.k_ = int(data["k"])
        model.bic_ = {int(k): float(v) for k, v in data["bic"].items()}
        model.feature_names = list(data["feature_names"])
        model.feature_settings = dict(data.get("feature_settings", {}))
        model.seed_ = int(data["seed"])
        model.max_voxels_per_patient_ = int(data["max_voxels_per_patient"])
        model.n_voxels_fit_ = int(data["n_voxels_fit"])
        model.scaler_ = FrozenScaler(
            np.asarray(data["scaler"]["mean"], dtype=float),
            np.asarray(data["scaler"]["scale"], dtype=float),
        )
        model.mixture_ = FrozenMixture(
            np.asarray(data["weights"], dtype=float),
            np.asarray(data["means_scaled"], dtype=float),
            np.asarray(data["covariances_scaled"], dtype=float),
        )
        return model


def patient_regions(
    images: dict,
    tumor: np.ndarray,
    model: HabitatModel,
    margin_mm: float = 3.0,
    body_phase: str | None = None,
    body_threshold_hu: float = -500,
) -> tuple[np.ndarray, dict]:
    """Habitat map (0 outside, 1..K inside the tumour) and the feature regions of one patient:
    ``whole``, ``sub1..subK`` (a habitat absent in this tumour gives an empty mask) and ``peri``.

    images: phase -> sitk.Image on the tumour's grid; the body mask comes from ``body_phase``
    (default: the first phase in sorted order).
    """
    tumor = np.asarray(tumor, dtype=bool)
    phases = sorted(images)
    reference = images[body_phase or phases[0]]
    spacing_zyx = reference.GetSpacing()[::-1]
    arrays = {phase: sitk.GetArrayFromImage(images[phase]) for phase in phases}
    settings = model.feature_settings
    names = voxel_feature_names(phases, settings.get("texture", "local_std"))
    if names != model.feature_names:
        raise ValueError(
            f"habitat model was fit on features {model.feature_names}, patient gives {names}"
        )
    features = voxel_features(arrays, tumor, spacing_zyx, **settings)
    habitats = model.label_volume(features, tumor)
    body = body_mask(reference, body_threshold_hu)
    regions = {"whole": tumor}
    for label in range(1, model.k_ + 1):
        regions[f"sub{label}"] = habitats == label
    regions["peri"] = peritumoral_shell(tumor, spacing_zyx, body, margin_mm)
    return habitats, regions


def screen_outlier_patients(arrays: list, patient_ids: list, outlier_z: float | None) -> list[dict]:
    """Patients whose voxel distribution lies far from the population's, to leave out of the fit.

    Per feature, each patient's median voxel value is compared with the median of the patients'
    medians, in units of the larger of 1.4826 x MAD of the medians and the median
    within-patient SD: patients differ in habitat mix (a mostly necrotic tumour has a low
    median) by about one within-patient SD, a CT on another intensity scale by many. A patient
    beyond ``outlier_z`` on any feature is an outlier. Screening needs
    at least 3 patients; median and MAD ignore up to half of them, so only a minority can be
    screened out (when half the scans are off, the per-scan HU inspection must catch them).
    Returns ``[{patient_id, robust_z}]`` (worst feature), empty when ``outlier_z`` is None.
    """
    present = [(a, p) for a, p in zip(arrays, patient_ids, strict=True) if len(a)]
    if outlier_z is None or len(present) < 3:
        return []
    medians = np.array([np.median(a, axis=0) for a, _ in present])
    within_sd = np.median([a.std(axis=0) for a, _ in present], axis=0)
    centre = np.median(medians, axis=0)
    spread = 1.4826 * np.median(np.abs(medians - centre), axis=0)
    scale = np.maximum(np.maximum(spread, within_sd), 1e-9)
    robust_z = (np.abs(medians - centre) / scale).max(axis=1)
    return [
        {"patient_id": str(patient), "robust_z": round(float(z), 2)}
        for (_, patient), z in zip(present, robust_z, strict=True)
        if z > outlier_z
    ]


def choose_k(bic: dict, bic_single_gaussian: float, tolerance: float) -> int:
    """Smallest K whose BIC lies within ``tolerance`` x (BIC(1) - best BIC) of the best BIC."""
    best = min(bic.values())
    allowed = tolerance * max(bic_single_gaussian - best, 0.0)
    return min(k for k, value in bic.items() if value - best <= allowed)


def _scale(sd: np.ndarray) -> np.ndarray:
    # as sklearn's StandardScaler: a constant feature keeps scale 1
    return np.where(sd > 10 * np.finfo(float).eps, sd, 1.0)


class FrozenScaler:
    """z-scoring with fitted means and scales (StandardScaler's transform)."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray):
        self.mean_ = np.asarray(mean, dtype=float)
        self.scale_ = np.asarray(scale, dtype=float)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=float) - self.mean_) / self.scale_

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=float) * self.scale_ + self.mean_


class FrozenMixture:
    """A fitted full-covariance Gaussian mixture, applied without scikit-learn.

    ``predict`` is the maximum a-posteriori component, as ``GaussianMixture.predict``:
    argmax_k log w_k + log N(x | mu_k, Sigma_k), from the Cholesky factor of each covariance
    (tests compare it with scikit-learn's).
    """

    def __init__(self, weights, means, covariances):
        self.weights_ = np.asarray(weights, dtype=float)
        self.means_ = np.asarray(means, dtype=float)
        self.covariances_ = np.asarray(covariances, dtype=float)
        self._cholesky = np.linalg.cholesky(self.covariances_)

    def ordered(self) -> "FrozenMixture":
        """Components sorted by the mean of the first feature (the ordering rule)."""
        order = np.argsort(self.means_[:, 0], kind="stable")
        return FrozenMixture(self.weights_[order], self.means_[order], self.covariances_[order])

    def log_joint(self, x: np.ndarray) -> np.ndarray:
        """log w_k + log N(x | mu_k, Sigma_k), shape (n_samples, K)."""
        x = np.asarray(x, dtype=float)
        n_features = x.shape[1]
        out = np.empty((len(x), len(self.weights_)))
        for k, (mean, chol) in enumerate(zip(self.means_, self._cholesky)):
            # solve L y = (x - mu): the Mahalanobis distance is |y|^2
            y = np.linalg.solve(chol, (x - mean).T)
            log_det = 2 * np.log(np.diag(chol)).sum()
            out[:, k] = -0.5 * (n_features * np.log(2 * np.pi) + log_det + (y**2).sum(axis=0))
        return out + np.log(self.weights_)

    def score_samples(self, x: np.ndarray) -> np.ndarray:
        """log p(x) under the mixture, per sample."""
        return np.logaddexp.reduce(self.log_joint(x), axis=1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.log_joint(x).argmax(axis=1)


def bic_figure(model_dict: dict, path_png, path_svg) -> None:
    """BIC against the number of habitats K, chosen K marked."""
    import matplotlib.pyplot as plt

    from radiogenomics.core.figure_writer import save_figure

    ks = sorted(int(k) for k in model_dict["bic"])
    bics = [model_dict["bic"][str(k)] for k in ks]
    chosen = int(model_dict["k"])
    fig, ax = plt.subplots(figsize=(4, 3))
    _draw_bic(ax, ks, bics, chosen, model_dict["bic"][str(chosen)])
    fig.tight_layout()
    # the writer's options that keep this figure's bytes as they were: matplotlib's software tag
    # (PNG) and creator (SVG) stay, no tight bounding box
    for path in (path_png, path_svg):
        is_svg = str(path).endswith(".svg")
        save_figure(fig, path, dpi=150, metadata={"Date": None} if is_svg else {}, bbox_inches=None)
    plt.close(fig)


def _draw_bic(ax, ks, bics, chosen, chosen_bic) -> None:
    ax.plot(ks, bics, marker="o", color="tab:blue")
    ax.plot(
        [chosen],
        [chosen_bic],
        marker="*",
        markersize=14,
        color="tab:red",
        linestyle="none",
        label=f"chosen K = {chosen}",
    )
    ax.set_xticks(ks)
    ax.set_xlabel("number of habitats K")
    ax.set_ylabel("BIC (lower is better)")
    ax.set_title("GMM habitat model selection")
    ax.legend(frameon=False)


def _read_arrays(phase_paths: dict, tumor_path):
    images = {phase: sitk.ReadImage(str(path)) for phase, path in phase_paths.items()}
    tumor = sitk.GetArrayFromImage(sitk.ReadImage(str(tumor_path))) > 0
    return images, tumor


def sample_patient_voxels(
    phase_paths: dict, tumor_path, texture: str, texture_radius_mm: float,
    smooth_sigma_mm: float, n_voxels: int, seed: int, patient_id: str,
) -> dict:
    """A seeded sample of one training patient's voxel features (the habitat model's input).

    The seed mixes the study seed with the patient id, so a patient's sample does not change
    when other patients join or leave the training set.
    """
    images, tumor = _read_arrays(phase_paths, tumor_path)
    phases = sorted(images)
    arrays = {phase: sitk.GetArrayFromImage(images[phase]) for phase in phases}
    spacing_zyx = images[phases[0]].GetSpacing()[::-1]
    settings = {
        "texture": texture,
        "texture_radius_mm": texture_radius_mm,
        "smooth_sigma_mm": smooth_sigma_mm,
    }
    features = voxel_features(arrays, tumor, spacing_zyx, **settings)
    rng = np.random.default_rng([seed, *patient_id.encode()])
    return {
        "features": subsample_voxels(features, n_voxels, rng),
        "feature_names": np.asarray(voxel_feature_names(phases, texture)),
        "texture": np.asarray(texture),
        "texture_radius_mm": np.asarray(texture_radius_mm),
        "smooth_sigma_mm": np.asarray(smooth_sigma_mm),
    }


def fit_habitat_model(
    voxel_paths: list, k_range, seed: int, bic_tolerance: float, outlier_z: float | None = None
) -> HabitatModel:
    """Fit the population model on the training patients' voxel samples
    (``results/regions/voxels/{patient}.npz``: the file name is the patient id)."""
    arrays, names, settings = [], None, None
    voxel_paths = sorted(voxel_paths)
    for path in voxel_paths:
        with np.load(path) as sample:
            arrays.append(sample["features"])
            names = list(sample["feature_names"])
            settings = {
                "texture": str(sample["texture"]),
                "texture_radius_mm": float(sample["texture_radius_mm"]),
                "smooth_sigma_mm": float(sample["smooth_sigma_mm"]),
            }
    model = HabitatModel(bic_tolerance=bic_tolerance, outlier_z=outlier_z)
    return model.fit(
        arrays, k_range=k_range, seed=seed, max_voxels_per_patient=max(len(a) for a in arrays),
        feature_names=names, feature_settings=settings,
        patient_ids=[Path(path).name.removesuffix(".npz") for path in voxel_paths],
    )


def patient_region_images(model_path, phase_paths: dict, tumor_path, margin_mm, body_threshold_hu):
    """Habitat map (frozen model) and peritumoral shell of one patient, as uint8 images."""
    model = HabitatModel.from_dict(json.loads(Path(model_path).read_text()))
    images, tumor = _read_arrays(phase_paths, tumor_path)
    habitats, regions = patient_regions(
        images, tumor, model, margin_mm=margin_mm, body_threshold_hu=body_threshold_hu
    )
    reference = next(iter(images.values()))
    return _as_image(habitats, reference), _as_image(regions["peri"], reference)


# Habitat colours, lowest to highest attenuation of the ordering feature: blue, green,
# orange, red (ColorBrewer "Spectral" ends), interpolated for K habitats.
HABITAT_COLOUR_ANCHORS = ((43, 131, 186), (171, 221, 164), (253, 174, 97), (215, 25, 28))
PERI_COLOUR = (255, 0, 255)
BACKGROUND = (0, "Background", (0, 0, 0, 0))


def habitat_color_table(model: HabitatModel) -> tuple[list, list[str]]:
    """Entries and comment lines of the habitat map's colour table (radiogenomics.core.io
    ``write_color_table``): label k is ``sub{k}`` (the feature regions' name) with the mean of the
    ordering feature in the component, e.g. ``sub1_arterial_31HU``; colours run from blue
    (lowest) to red (highest)."""
    feature = model.feature_names[0]
    phase = feature.removesuffix("_intensity")
    unit = "HU" if feature.endswith("_intensity") else ""
    means = model.scaler_.inverse_transform(model.mixture_.means_)[:, 0]
    entries = [BACKGROUND]
    for k, mean in enumerate(means, start=1):
        entries.append((k, f"sub{k}_{phase}_{int(np.round(mean))}{unit}", (*_ramp(k, len(means)), 255)))
    comments = [
        "radiogenomics habitat map: 0 outside the tumour, 1..K the population GMM habitats "
        "(results/regions/habitat_model.json)",
        f"sub1..sub{len(means)}: {ORDERING_RULE}; the name ends with that component's mean "
        f"{feature}",
    ]
    return entries, comments


def peri_color_table(margin_mm: float) -> tuple[list, list[str]]:
    """Entries and comment lines of the peritumoral shell's colour table."""
    entries = [BACKGROUND, (1, f"peritumoral_shell_{margin_mm:g}mm", (*PERI_COLOUR, 255))]
    comments = [f"radiogenomics peritumoral shell: voxels outside the tumour within {margin_mm:g} mm"]
    return entries, comments


def region_color_tables(model_path, margin_mm: float) -> dict:
    """``{"habitats": (entries, comments), "peri": (entries, comments)}`` for one study."""
    model = HabitatModel.from_dict(json.loads(Path(model_path).read_text()))
    return {"habitats": habitat_color_table(model), "peri": peri_color_table(margin_mm)}


def _ramp(k: int, n: int) -> tuple[int, int, int]:
    """Colour of label k of n along HABITAT_COLOUR_ANCHORS (piecewise linear, rounded)."""
    anchors = np.asarray(HABITAT_COLOUR_ANCHORS, dtype=float)
    position = (k - 1) / (n - 1) * (len(anchors) - 1) if n > 1 else len(anchors) - 1
    low = min(int(np.floor(position)), len(anchors) - 2)
    colour = anchors[low] + (position - low) * (anchors[low + 1] - anchors[low])
    return tuple(int(c) for c in np.round(colour))


def _as_image(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(np.asarray(array, dtype=np.uint8))
    image.CopyInformation(reference)
    return image


def bic_table(model: HabitatModel) -> "pd.DataFrame":
    """BIC per candidate K (K = 1 for reference) and which K the rule chose."""
    import pandas as pd

    rows = [{"k": 1, "bic": model.bic_single_gaussian_}]
    rows += [{"k": k, "bic": value} for k, value in sorted(model.bic_.items())]
    table = pd.DataFrame(rows)
    table["chosen"] = table["k"] == model.k_
    return table
