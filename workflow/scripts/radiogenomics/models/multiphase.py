"""Multi-phase CT classifier (S5, Xiong et al. 2025): one ResNet-18 branch per phase, late
fusion by cross-attention, trained end to end for a binary task; a separate model per phase
subset so patients missing a phase are scored by the single- or dual-phase variant; Grad-CAM.

Inputs are network slices (3, H, W) of the largest axial tumour slice, from one of two crops:
- by default the tumour's bounding box plus a margin, resized to ``size``
  (:func:`radiogenomics.features.deep.prepare_slice`);
- S5's: a fixed VOI (``voi_mm``, S5 14 x 14 x 16 cm) centred on the tumour's centre of mass,
  the largest tumour slice within it resampled in the plane to ``slice_spacing_mm`` (S5
  0.625 mm: 140 mm -> 224 px) (:func:`voi_planes`). The phases are registered to the reference
  phase and lie on one analysis grid, so one VOI from the tumour mask crops every phase at the
  same anatomy.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import SimpleITK as sitk  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from torch import nn  # noqa: E402

from radiogenomics.features import deep  # noqa: E402


class MultiPhaseNet(nn.Module):
    """Per-phase CNN branches; each phase's pooled token queries the spatial tokens of the
    other phases (cross-attention), residual + LayerNorm, mean over phases, one logit.

    With a single phase there is nothing to attend to, so the logit is a linear read-out of the
    pooled token (which makes Grad-CAM equal to CAM there, a property the tests use).
    """

    def __init__(
        self,
        phases: Sequence[str],
        backbone: str = "resnet18",
        pretrained: str = "none",
        embed_dim: int = 128,
        heads: int = 4,
        dropout: float = 0.1,
        seed: int = 0,
    ):
        super().__init__()
        self.phases = tuple(phases)
        if not self.phases:
            raise ValueError("MultiPhaseNet needs at least one phase")
        branches, records = {}, {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for i, phase in enumerate(self.phases):
                branch, records[phase] = deep.build_backbone(backbone, pretrained, "avg", seed + i)
                branch.reset_classifier(0, global_pool="")  # keep the maps for attention/CAM
                branches[phase] = branch
            self.branches = nn.ModuleDict(branches)
            width = next(iter(branches.values())).num_features
            self.project = nn.Linear(width, embed_dim)
            self.attention = nn.MultiheadAttention(embed_dim, heads, batch_first=True)
            self.norm = nn.LayerNorm(embed_dim)
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(embed_dim, 1)
        self.weights_record = records

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) != len(self.phases):
            raise ValueError(f"expected {len(self.phases)} phase inputs {self.phases}")
        maps = [self.branches[p](x) for p, x in zip(self.phases, inputs, strict=True)]
        pooled = [self.project(m.mean(dim=(2, 3))) for m in maps]
        if len(maps) == 1:
            return self.head(self.dropout(pooled[0])).reshape(-1)
        spatial = [self.project(m.flatten(2).transpose(1, 2)) for m in maps]
        fused = []
        for i, query in enumerate(pooled):
            others = torch.cat([s for j, s in enumerate(spatial) if j != i], dim=1)
            attended, _ = self.attention(query[:, None], others, others, need_weights=False)
            fused.append(self.norm(query + attended[:, 0]))
        return self.head(self.dropout(torch.stack(fused).mean(dim=0))).reshape(-1)


def variant_name(phases: Sequence[str]) -> str:
    return "multiphase[" + "+".join(phases) + "]"


def train_multiphase(
    slices: Mapping[str, np.ndarray],
    labels: np.ndarray,
    phases: Sequence[str],
    *,
    seed: int = 0,
    backbone: str = "resnet18",
    pretrained: str = "none",
    embed_dim: int = 128,
    heads: int = 4,
    dropout: float = 0.1,
    **train,
) -> tuple[MultiPhaseNet, pd.DataFrame]:
    """Train one phase-subset model end to end; ``slices[phase]`` is (N, 3, H, W), rows aligned
    with ``labels``; ``train`` goes to :func:`radiogenomics.features.deep.train_binary` (Adam, early
    stopping on a validation split of these training samples)."""
    model = MultiPhaseNet(phases, backbone, pretrained, embed_dim, heads, dropout, seed)
    return deep.train_binary(model, [slices[p] for p in phases], labels, seed=seed, **train)


def phase_subsets(phases: Sequence[str]) -> list[tuple[str, ...]]:
    """All non-empty subsets, largest first (the full model, then dual, then single phase)."""
    return [
        combo
        for size in range(len(phases), 0, -1)
        for combo in itertools.combinations(phases, size)
    ]


def fit_phase_variants(
    cases: Mapping[str, Mapping[str, np.ndarray]],
    labels: Mapping[str, int],
    phases: Sequence[str] = ("arterial", "venous"),
    subsets: Sequence[Sequence[str]] | None = None,
    **kwargs,
) -> dict[tuple[str, ...], tuple[MultiPhaseNet, pd.DataFrame]]:
    """One model per phase subset, each trained on every labelled (training) patient who has
    those phases. ``cases[patient][phase]`` is a (3, H, W) slice; absent key = missing phase."""
    variants = {}
    for subset in [tuple(s) for s in (subsets or phase_subsets(phases))]:
        train = sorted(p for p in labels if all(ph in cases.get(p, {}) for ph in subset))
        if len(train) < 4:
            raise ValueError(f"too few training patients with phases {subset}: {len(train)}")
        slices = {ph: np.stack([cases[p][ph] for p in train]) for ph in subset}
        y = np.array([labels[p] for p in train], dtype=np.float32)
        variants[subset] = train_multiphase(slices, y, subset, **kwargs)
    return variants


def predict_variants(
    variants: Mapping[tuple[str, ...], tuple[MultiPhaseNet, pd.DataFrame]],
    cases: Mapping[str, Mapping[str, np.ndarray]],
    device: str = "auto",
    batch_size: int = 32,
) -> pd.DataFrame:
    """Probabilities from every variant a patient has the phases for, plus the routed model
    ``multiphase`` (the variant using the most phases the patient has).

    Columns: patient_id, model, phases, prediction."""
    device = deep.select_device(device)
    rows = []
    for subset, (model, _) in variants.items():
        patients = sorted(p for p in cases if all(ph in cases[p] for ph in subset))
        if not patients:
            continue
        model = model.to(device).eval()
        probs = []
        with torch.no_grad():
            for start in range(0, len(patients), batch_size):
                chunk = patients[start : start + batch_size]
                xs = [
                    torch.from_numpy(np.stack([cases[p][ph] for p in chunk])).to(device)
                    for ph in subset
                ]
                probs.append(torch.sigmoid(model(*xs)).cpu().numpy())
        for patient, prob in zip(patients, np.concatenate(probs), strict=True):
            rows.append(
                {
                    "patient_id": patient,
                    "model": variant_name(subset),
                    "phases": "+".join(subset),
                    "n_phases": len(subset),
                    "prediction": float(prob),
                }
            )
    table = pd.DataFrame(rows)
    routed = (
        table.sort_values(["patient_id", "n_phases"], ascending=[True, False], kind="stable")
        .groupby("patient_id", sort=True)
        .head(1)
        .assign(model="multiphase")
    )
    return pd.concat([table, routed], ignore_index=True).drop(columns="n_phases")


def compare_variants(
    predictions: pd.DataFrame, labels: Mapping[str, int], cohorts: Mapping[str, str]
) -> pd.DataFrame:
    """AUC per model and cohort (model, cohort, metric, value, n): the table that sets the
    multi-phase model against the single-phase ones."""
    rows = []
    frame = predictions.assign(
        cohort=predictions["patient_id"].map(cohorts), label=predictions["patient_id"].map(labels)
    ).dropna(subset=["cohort", "label"])
    for (model, cohort), group in frame.groupby(["model", "cohort"], sort=True):
        y = group["label"].astype(int)
        value = roc_auc_score(y, group["prediction"]) if y.nunique() == 2 else np.nan
        rows.append(
            {"model": model, "cohort": cohort, "metric": "auc", "value": value, "n": len(group)}
        )
    return pd.DataFrame(rows)


def grad_cam(model: MultiPhaseNet, inputs: Sequence[torch.Tensor], phase: str) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) of the logit w.r.t. the last feature maps of one phase
    branch: ReLU(sum_k mean(dlogit/dA_k) A_k), upsampled to the input size, scaled to [0, 1]."""
    captured = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured["maps"] = output

    model.eval()
    handle = model.branches[phase].register_forward_hook(keep)
    try:
        xs = [torch.as_tensor(x).clone().requires_grad_(False) for x in inputs]
        with torch.enable_grad():
            logits = model(*xs)
            model.zero_grad(set_to_none=True)
            logits.sum().backward()
    finally:
        handle.remove()
    maps, grads = captured["maps"].detach(), captured["maps"].grad
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * maps).sum(dim=1, keepdim=True))
    size = xs[model.phases.index(phase)].shape[-2:]
    cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)[:, 0]
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak.clamp_min(1e-12), cam).numpy()


def gradcam_figure(
    model: MultiPhaseNet,
    cases: Mapping[str, Mapping[str, np.ndarray]],
    patients: Sequence[str],
    title: str = "Grad-CAM",
):
    """One row per patient, one column per phase: the windowed slice with the CAM overlaid."""
    fig, axes = plt.subplots(
        len(patients),
        len(model.phases),
        figsize=(3 * len(model.phases), 3 * len(patients)),
        squeeze=False,
    )
    for row, patient in enumerate(patients):
        xs = [torch.from_numpy(cases[patient][ph][None]) for ph in model.phases]
        for col, phase in enumerate(model.phases):
            cam = grad_cam(model, xs, phase)[0]
            slice_ = cases[patient][phase][1] * deep.IMAGENET_STD[1] + deep.IMAGENET_MEAN[1]
            ax = axes[row, col]
            ax.imshow(slice_, cmap="gray", vmin=0, vmax=1)
            ax.imshow(cam, cmap="jet", alpha=0.4, vmin=0, vmax=1)
            ax.set_title(f"{patient} {phase}", fontsize=9)
            ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class VoiPlane:
    """Where a VOI slice came from: axial index of the largest tumour slice within the VOI,
    the tumour's centre of mass (physical mm, x y z) and the slice's pixel spacing (x, y)."""

    z: int
    centre_mm: tuple[float, float, float]
    spacing_mm: tuple[float, float]


def voi_planes(
    image: sitk.Image,
    mask: sitk.Image,
    voi_mm: Sequence[float],
    slice_spacing_mm: float | None = None,
    channels: str = "repeat",
) -> tuple[np.ndarray, VoiPlane]:
    """HU planes (3, rows y, columns x) of S5's input: the fixed VOI ``voi_mm`` (x, y, z) centred
    on the tumour's centre of mass, at the axial slice of largest tumour area within the VOI's z
    range, resampled (linear) to ``slice_spacing_mm`` in the plane (None: the image's own in-plane
    spacing). Columns = round(voi_x / spacing): 140 mm at 0.625 mm is 224 pixels.

    The planes keep the image's axes (its direction) and lie exactly on the image's slices (no
    interpolation across z). Where the VOI reaches past the scan (a tumour near the edge of the
    field of view) the pixels are air, -1024 HU, as in :func:`radiogenomics.features.deep.prepare_slice`.
    ``channels``: ``repeat`` (the slice three times) or ``neighbours`` (slices z-1, z, z+1,
    clamped at the volume edge).
    """
    if channels not in ("repeat", "neighbours"):
        raise ValueError(f"channels must be 'repeat' or 'neighbours', not {channels!r}")
    tumour = sitk.GetArrayViewFromImage(mask) > 0
    if not tumour.any():
        raise ValueError("empty mask")
    spacing = np.asarray(image.GetSpacing(), float)
    centre_index = np.argwhere(tumour)[:, ::-1].mean(axis=0)  # continuous (x, y, z) index
    areas = tumour.sum(axis=(1, 2))
    within = np.abs(np.arange(len(areas)) - centre_index[2]) <= float(voi_mm[2]) / 2.0 / spacing[2]
    within[int(round(centre_index[2]))] = True  # a VOI thinner than a slice still holds one
    z = int(np.argmax(np.where(within, areas, -1)))  # the lowest index wins a tie
    pixel = spacing[:2] if slice_spacing_mm is None else np.full(2, float(slice_spacing_mm))
    columns, rows = (max(1, int(round(float(extent) / step))) for extent, step in zip(voi_mm[:2], pixel))
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint([*map(float, centre_index[:2]), float(z)]))
    # first pixel centre half a pixel inside the VOI's outer face: the VOI is centred on the tumour
    corner = centre - direction @ np.array([(columns - 1) / 2 * pixel[0], (rows - 1) / 2 * pixel[1], 0.0])
    slices = [z, z, z] if channels == "repeat" else [max(z - 1, 0), z, min(z + 1, len(areas) - 1)]
    source = sitk.Cast(image, sitk.sitkFloat32)
    planes = []
    for k in slices:
        origin = corner + direction @ np.array([0.0, 0.0, (k - z) * spacing[2]])
        plane = sitk.Resample(
            source, [columns, rows, 1], sitk.Transform(), sitk.sitkLinear, origin.tolist(),
            [float(pixel[0]), float(pixel[1]), float(spacing[2])], direction.ravel().tolist(),
            float(deep.AIR_HU), sitk.sitkFloat32,
        )  # fmt: skip
        planes.append(sitk.GetArrayFromImage(plane)[0])
    centre_mm = np.asarray(image.TransformContinuousIndexToPhysicalPoint(list(map(float, centre_index))))
    return np.stack(planes).astype(np.float32), VoiPlane(z, tuple(centre_mm.tolist()), tuple(pixel.tolist()))


def voi_slice(
    image: sitk.Image,
    mask: sitk.Image,
    voi_mm: Sequence[float],
    slice_spacing_mm: float | None = None,
    size: int = 96,
    channels: str = "repeat",
    window: tuple[float, float] = (350.0, 50.0),
) -> tuple[np.ndarray, VoiPlane]:
    """Network input (3, H, W) from :func:`voi_planes`: soft-tissue window, ImageNet
    normalisation. With ``slice_spacing_mm`` the slice keeps its pixel count (S5: 224 x 224);
    without, it is resized to ``size`` x ``size`` like the default crop."""
    planes, where = voi_planes(image, mask, voi_mm, slice_spacing_mm, channels)
    scaled = deep.window_to_uint8_range(planes, *window)
    if slice_spacing_mm is None:
        scaled = F.interpolate(
            torch.from_numpy(scaled)[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )[0].numpy()
    return deep.imagenet_normalised(scaled), where


def case_slices(
    images: Mapping[str, Mapping[str, object]],
    masks: Mapping[str, object],
    phases: Sequence[str],
    voi_mm: Sequence[float] | None = None,
    slice_spacing_mm: float | None = None,
    **prepare,
) -> dict[str, dict[str, np.ndarray]]:
    """Network slices per patient for the phases each patient has (a phase whose image is
    absent or None is missing and routes the patient to a smaller variant).

    ``voi_mm`` (x, y, z) null: the default crop (``prepare``: margin_mm, size, channels of
    :func:`radiogenomics.features.deep.prepare_slice`); else S5's fixed VOI (:func:`voi_slice`; the margin
    does not apply)."""
    if slice_spacing_mm is not None and voi_mm is None:
        raise ValueError(
            "models.multiphase.slice_spacing_mm resamples the fixed VOI: set models.multiphase.voi_mm "
            "too (S5: [140, 140, 160]), or leave slice_spacing_mm null"
        )
    cases = {}
    for patient in sorted(masks):
        present = [ph for ph in phases if images.get(patient, {}).get(ph) is not None]
        if not present:
            continue
        if voi_mm is None:
            prepared = deep.patient_slices(patient, images[patient], masks[patient], present, **prepare)
            cases[patient] = {ph: prepared[ph][0] for ph in present}
            continue
        mask, phase_images = deep.patient_images(patient, images[patient], masks[patient], present)
        options = {k: prepare[k] for k in ("size", "channels") if k in prepare}
        cases[patient] = {
            ph: voi_slice(image, mask, voi_mm, slice_spacing_mm, **options)[0] for ph, image in phase_images.items()
        }
    return cases


def multiphase_study(
    images: Mapping[str, Mapping[str, object]],
    masks: Mapping[str, object],
    labels: Mapping[str, int],
    cohorts: Mapping[str, str],
    phases: Sequence[str] = ("arterial", "venous"),
    *,
    slice_options: Mapping | None = None,
    seed: int = 0,
    device: str = "auto",
    **train,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """S5 end to end: slices, every phase-subset model trained on ``train``-cohort patients,
    predictions for all patients (routed ``multiphase`` plus each variant), and the AUC table
    comparing the multi-phase model with the single-phase ones per cohort.

    Returns (predictions with a ``cohort`` column, metrics, variants)."""
    cases = case_slices(images, masks, phases, **dict(slice_options or {}))
    train_labels = {p: y for p, y in labels.items() if cohorts.get(p) == "train" and p in cases}
    variants = fit_phase_variants(cases, train_labels, phases, seed=seed, device=device, **train)
    predictions = predict_variants(variants, cases, device=device)
    predictions.insert(1, "cohort", predictions["patient_id"].map(cohorts))
    return predictions, compare_variants(predictions, labels, cohorts), variants
