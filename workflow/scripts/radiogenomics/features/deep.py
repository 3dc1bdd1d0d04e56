"""Deep radiomics (S1, S4): CNN features from the largest axial tumour slice per phase.

Slice -> square crop around the tumour -> soft-tissue window (W350/L50) to [0, 255] -> resize
-> 3 channels -> ImageNet normalisation -> timm backbone without classifier (global avg or max
pooling). Optional fine-tuning on a binary endpoint (S1) before extraction. Weights are never
fetched at run time: ``pretrained`` is ``none`` (seeded random init), a local checkpoint file,
or ``imagenet`` resolved from the local Hugging Face cache only.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch
import torch.nn.functional as F
from torch import nn

from radiogenomics.core.cases import BadCase

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
AIR_HU = -1024


@dataclass(frozen=True)
class SliceBox:
    """Where the crop came from: axial index and the square (row, column) window."""

    z: int
    row0: int
    col0: int
    side: int

    @property
    def centre(self) -> tuple[float, float]:
        return (self.row0 + (self.side - 1) / 2, self.col0 + (self.side - 1) / 2)


def largest_slice_index(mask: np.ndarray) -> int:
    """Axial index (numpy axis 0 of a SimpleITK array) with the largest tumour area; the
    lowest index wins a tie so the choice is deterministic."""
    areas = (np.asarray(mask) > 0).sum(axis=(1, 2))
    if areas.max() == 0:
        raise ValueError("empty mask")
    return int(np.argmax(areas))


def square_box(mask_slice: np.ndarray, margin_px: int) -> tuple[int, int, int]:
    """Square window centred on the tumour's bounding box in this slice, side = longer edge +
    2 x margin; returns (row0, col0, side), which may extend past the image (padded later)."""
    rows, cols = np.nonzero(mask_slice > 0)
    r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
    side = int(max(r1 - r0, c1 - c0) + 1 + 2 * margin_px)
    # Centre of the box in doubled coordinates keeps odd/even extents exact.
    row0 = (int(r0 + r1) + 1 - side) // 2
    col0 = (int(c0 + c1) + 1 - side) // 2
    return row0, col0, side


def _crop_padded(plane: np.ndarray, row0: int, col0: int, side: int, fill: float) -> np.ndarray:
    out = np.full((side, side), fill, dtype=np.float32)
    r_lo, c_lo = max(row0, 0), max(col0, 0)
    r_hi, c_hi = min(row0 + side, plane.shape[0]), min(col0 + side, plane.shape[1])
    out[r_lo - row0 : r_hi - row0, c_lo - col0 : c_hi - col0] = plane[r_lo:r_hi, c_lo:c_hi]
    return out


def window_to_uint8_range(hu: np.ndarray, width: float = 350.0, level: float = 50.0) -> np.ndarray:
    """Linear soft-tissue window: [level - width/2, level + width/2] HU -> [0, 255], clipped."""
    low = level - width / 2
    return (np.clip((np.asarray(hu, np.float32) - low) / width, 0.0, 1.0) * 255.0).astype(
        np.float32
    )


def prepare_slice(
    image: np.ndarray,
    mask: np.ndarray,
    margin_mm: float = 10.0,
    spacing_mm: float = 1.0,
    size: int = 224,
    channels: str = "repeat",
    window: tuple[float, float] = (350.0, 50.0),
    z: int | None = None,
) -> tuple[np.ndarray, SliceBox]:
    """Network input (3, size, size) float32, ImageNet-normalised, from HU volume and mask
    arrays (z, y, x). ``channels``: ``repeat`` (the slice three times) or ``neighbours``
    (slices z-1, z, z+1, clamped at the volume edge)."""
    if channels not in ("repeat", "neighbours"):
        raise ValueError(f"channels must be 'repeat' or 'neighbours', not {channels!r}")
    z = largest_slice_index(mask) if z is None else z
    row0, col0, side = square_box(mask[z], int(round(margin_mm / spacing_mm)))
    zs = [z, z, z] if channels == "repeat" else [max(z - 1, 0), z, min(z + 1, image.shape[0] - 1)]
    planes = np.stack([_crop_padded(image[k], row0, col0, side, AIR_HU) for k in zs])
    scaled = window_to_uint8_range(planes, *window)
    resized = F.interpolate(
        torch.from_numpy(scaled)[None],
        size=(size, size),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )[0].numpy()
    return imagenet_normalised(resized), SliceBox(z, row0, col0, side)


def imagenet_normalised(scaled: np.ndarray) -> np.ndarray:
    """(3, H, W) windowed intensities in [0, 255] -> ImageNet-normalised float32."""
    normalised = (scaled / 255.0 - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]
    return normalised.astype(np.float32)


def select_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def set_deterministic(device: torch.device) -> None:
    """Deterministic kernels (process-wide torch setting). Strict on CPU; on CUDA some
    backward kernels (pooling) have no deterministic version, so torch only warns there."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def state_dict_sha256(module: nn.Module) -> str:
    """Hash of the parameters and buffers in key order: names weights made in memory."""
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _read_checkpoint(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    return {k.removeprefix("module."): v for k, v in state.items()}


def _imagenet_cache_file(backbone: str) -> Path | None:
    """The timm ImageNet weights in the local Hugging Face cache, found without any network."""
    from huggingface_hub import try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(backbone)
    if cfg is None or not cfg.hf_hub_id:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(cfg.hf_hub_id, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def build_backbone(
    backbone: str = "resnet50", pretrained: str = "none", pooling: str = "avg", seed: int = 0
) -> tuple[nn.Module, dict]:
    """timm model without classifier (``num_classes=0``), built once; returns the model and a
    provenance record naming the weights (sha256 of the file, or the random-init seed)."""
    import timm

    if pooling not in ("avg", "max"):
        raise ValueError(f"pooling must be 'avg' or 'max', not {pooling!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model(backbone, pretrained=False, num_classes=0, global_pool=pooling)
    record = {"backbone": backbone, "pooling": pooling, "pretrained": str(pretrained)}
    if pretrained in ("none", None, ""):
        record["weights"] = f"random-init seed {seed}"
        return model.eval(), record
    if pretrained == "imagenet":
        path = _imagenet_cache_file(backbone)
        if path is None:
            raise RuntimeError(
                f"ImageNet weights for {backbone} are not available offline (this workflow never "
                "downloads at run time; HF_HUB_OFFLINE=1 semantics). Provide a file: on a machine "
                f"with internet run `python -c \"import timm; timm.create_model('{backbone}', "
                'pretrained=True)"` to fill the Hugging Face cache (copy ~/.cache/huggingface '
                "here), or save the state_dict with torch.save(model.state_dict(), "
                f"'resources/weights/{backbone}.pth') and set `pretrained: "
                f"resources/weights/{backbone}.pth` in the config."
            )
    else:
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(
                f"checkpoint {path} not found; set `pretrained` to an existing .pth/.safetensors "
                "file, `imagenet` (from the local cache) or `none`"
            )
    state = _read_checkpoint(path)
    classifier = model.default_cfg.get("classifier", "fc")
    state = {k: v for k, v in state.items() if not k.startswith(f"{classifier}.")}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # tensor shapes differ: another architecture
        raise ValueError(f"checkpoint {path} does not fit {backbone}: {error}") from None
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {path} does not fit {backbone}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    record["weights"] = f"sha256:{sha256_file(path)}"
    record["weights_file"] = str(path)
    return model.eval(), record


def extract(
    model: nn.Module, slices: np.ndarray, batch_size: int = 32, device: str | torch.device = "auto"
) -> np.ndarray:
    """Pooled features (N, n_features) of (N, 3, H, W) inputs, in batches, eval mode."""
    device = select_device(device) if isinstance(device, str) else device
    set_deterministic(device)
    model = model.to(device).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(slices), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(slices[start : start + batch_size]))
            out.append(model(batch.to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.num_features), np.float32)


def validation_split(labels, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, validation) of a seeded hold-out from the training samples, stratified by
    label when each class has at least two members."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    stratify = labels if np.bincount(labels.astype(int), minlength=2).min() >= 2 else None
    return train_test_split(
        np.arange(len(labels)), test_size=val_fraction, random_state=seed, stratify=stratify
    )


class EarlyStopping:
    """Keeps the weights of the best validation loss and says when to stop: after ``patience``
    checks in a row that did not improve it by more than 1e-6. A non-finite validation loss
    stops training with an error that names the step and ``fix``."""

    def __init__(self, model: nn.Module, patience: int, fix: str):
        self.model, self.patience, self.fix = model, patience, fix
        self.best_loss, self.stale = np.inf, 0
        self.best_state = copy.deepcopy(model.state_dict())

    def should_stop(self, val_loss: float, step: str) -> bool:
        if not np.isfinite(val_loss):
            raise FloatingPointError(
                f"training diverged at {step} (validation loss {val_loss}); {self.fix}"
            )
        if val_loss < self.best_loss - 1e-6:
            self.best_loss, self.stale = val_loss, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
            return False
        self.stale += 1
        return self.stale >= self.patience

    def best_model(self) -> nn.Module:
        """The model with the best validation weights restored, in eval mode."""
        self.model.load_state_dict(self.best_state)
        return self.model.eval()


def train_binary(
    model: nn.Module,
    inputs: Sequence[np.ndarray],
    labels: np.ndarray,
    *,
    seed: int = 0,
    lr: float = 1e-4,
    epochs: int = 100,
    patience: int = 10,
    val_fraction: float = 0.2,
    batch_size: int = 16,
    weight_decay: float = 0.0,
    device: str | torch.device = "auto",
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
) -> tuple[nn.Module, pd.DataFrame]:
    """Train ``model(*inputs) -> logit`` with Adam on a sigmoid/BCE loss; early stopping on a
    stratified validation split drawn from the given (training) samples; the best-validation
    weights are restored. Seeded: same seed, same data, same CPU -> identical weights.

    Returns the model (eval mode) and the per-epoch history (epoch, train_loss, val_loss).
    """
    if epochs < 1:
        raise ValueError("epochs must be at least 1")
    device = select_device(device) if isinstance(device, str) else device
    set_deterministic(device)
    labels = np.asarray(labels, dtype=np.float32)
    fit_idx, val_idx = validation_split(labels, val_fraction, seed)
    tensors = [torch.from_numpy(np.ascontiguousarray(x)) for x in inputs]
    target = torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout and any lazily initialised layers
        model = model.to(device)
        optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        loss_fn = nn.BCEWithLogitsLoss()
        stopping, history = EarlyStopping(model, patience, "lower the learning rate"), []
        for epoch in range(epochs):
            model.train()
            order = torch.from_numpy(fit_idx)[torch.randperm(len(fit_idx), generator=generator)]
            losses = []
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                if len(batch) < 2:  # BatchNorm cannot train on a single sample
                    continue
                xs = [t[batch].to(device) for t in tensors]
                if augment is not None:
                    xs = [augment(x, generator) for x in xs]
                optimiser.zero_grad()
                loss = loss_fn(model(*xs).reshape(-1), target[batch].to(device))
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
            val_loss = _loss(model, tensors, target, val_idx, loss_fn, batch_size, device)
            history.append(
                {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss}
            )
            if stopping.should_stop(val_loss, f"epoch {epoch}"):
                break
    return stopping.best_model(), pd.DataFrame(history)


def _loss(model, tensors, target, idx, loss_fn, batch_size, device) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(idx), batch_size):
            batch = torch.from_numpy(idx[start : start + batch_size])
            logits = model(*[t[batch].to(device) for t in tensors]).reshape(-1)
            total += loss_fn(logits, target[batch].to(device)).item() * len(batch)
    return total / len(idx)


class BinaryHead(nn.Module):
    """Backbone + one logit (sigmoid output in the loss), the S1 fine-tuning network."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def endpoint_labels(
    clinical: pd.DataFrame,
    endpoint: str,
    horizon_months: float | None = None,
    cohort: str | None = "train",
) -> dict[str, int]:
    """Binary labels {patient_id: 0/1} for fine-tuning or the multi-phase task, from the
    clinical table of the output contract; only ``cohort`` patients (train by default).

    ``death_before_horizon`` / ``dfs_event_before_horizon``: 1 if the event happened by the
    horizon, 0 if followed up beyond it; patients censored earlier are left out (unknown).
    ``high_t_stage``: ``t_group == "high"`` (T3-T4). ``aggressive`` (S5, synthetic study):
    WHO/ISUP grade 3-4, necrosis, or T3+.
    """
    table = clinical if cohort is None else clinical[clinical["cohort"] == cohort]
    table = table.set_index("patient_id")
    if endpoint in ("death_before_horizon", "dfs_event_before_horizon"):
        if horizon_months is None:
            raise ValueError(f"endpoint {endpoint} needs horizon_months")
        prefix = "os" if endpoint.startswith("death") else "dfs"
        time, event = table[f"{prefix}_months"], table[f"{prefix}_event"].astype(bool)
        label = pd.Series(np.nan, index=table.index)
        label[event & (time <= horizon_months)] = 1
        label[time > horizon_months] = 0
    elif endpoint == "high_t_stage":
        label = (table["t_group"] == "high").astype(float)
    elif endpoint == "aggressive":
        stage = table["t_stage"].astype(str).str.extract(r"T?(\d)")[0].astype(float)
        label = (
            (pd.to_numeric(table["grade"], errors="coerce") >= 3)
            | table["necrosis"].astype(bool)
            | (stage >= 3)
        ).astype(float)
    else:
        raise ValueError(
            f"unknown endpoint {endpoint!r}; use death_before_horizon, "
            "dfs_event_before_horizon, high_t_stage or aggressive"
        )
    label = label.dropna()
    return {str(p): int(v) for p, v in label.items()}


def fine_tune_backbone(
    backbone: nn.Module, slices: np.ndarray, labels: np.ndarray, *, seed: int = 0, **train
) -> tuple[nn.Module, pd.DataFrame]:
    """Fine-tune a copy of ``backbone`` for a binary endpoint; the original stays untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = BinaryHead(copy.deepcopy(backbone))
    network, history = train_binary(network, [slices], labels, seed=seed, **train)
    return network.backbone.eval(), history


def _read_image(patient_id: str, source, what: str) -> sitk.Image:
    if isinstance(source, sitk.Image):
        return source
    if source is None or (isinstance(source, float) and np.isnan(source)):
        raise BadCase(
            patient_id,
            what,
            f"{what} is missing",
            f"provide the {what} or drop the phase from deep_features.phases",
            stage="features",
        )
    try:
        return sitk.ReadImage(str(source))
    except RuntimeError as error:
        raise BadCase(
            patient_id,
            str(source),
            f"unreadable {what}: {error}".splitlines()[0],
            "re-run the imaging stage for this patient",
            stage="features",
        ) from None


def patient_images(
    patient_id: str,
    images: Mapping[str, sitk.Image | str | os.PathLike],
    mask: sitk.Image | str | os.PathLike,
    phases: Sequence[str],
) -> tuple[sitk.Image, dict[str, sitk.Image]]:
    """One patient's tumour mask and phase images; BadCase when the mask is empty or a phase
    is missing, unreadable or off the mask's grid."""
    mask_image = _read_image(patient_id, mask, "tumour mask")
    if not np.any(sitk.GetArrayViewFromImage(mask_image)):
        raise BadCase(
            patient_id,
            str(mask),
            "tumour mask is empty",
            "check the segmentation for this patient",
            stage="features",
        )
    out = {}
    for phase in phases:
        image = _read_image(patient_id, images.get(phase), f"{phase} phase image")
        if (
            image.GetSize() != mask_image.GetSize()
            or not np.allclose(image.GetSpacing(), mask_image.GetSpacing(), atol=1e-4)
            or not np.allclose(image.GetOrigin(), mask_image.GetOrigin(), atol=1e-3)
        ):
            raise BadCase(
                patient_id,
                str(images.get(phase)),
                f"{phase} image and tumour mask are on different grids",
                "resample both with the imaging stage",
                stage="features",
            )
        out[phase] = image
    return mask_image, out


def patient_slices(
    patient_id: str,
    images: Mapping[str, sitk.Image | str | os.PathLike],
    mask: sitk.Image | str | os.PathLike,
    phases: Sequence[str],
    **prepare,
) -> dict[str, tuple[np.ndarray, SliceBox]]:
    """Network inputs per phase for one patient; every phase must sit on the mask's grid."""
    mask_image, phase_images = patient_images(patient_id, images, mask, phases)
    mask_array = sitk.GetArrayFromImage(mask_image) > 0
    out = {}
    for phase, image in phase_images.items():
        spacing_xy = float(np.mean(image.GetSpacing()[:2]))
        out[phase] = prepare_slice(
            sitk.GetArrayFromImage(image).astype(np.float32),
            mask_array,
            spacing_mm=spacing_xy,
            **prepare,
        )
    return out


def deep_features_table(
    images: Mapping[str, Mapping[str, sitk.Image | str | os.PathLike]],
    masks: Mapping[str, sitk.Image | str | os.PathLike],
    **options,
) -> pd.DataFrame:
    """One row per patient (``patient_id`` then ``{phase}_{backbone}_{i:04d}``).

    ``images[patient][phase]`` and ``masks[patient]`` are SimpleITK images or paths on one grid;
    ``options`` are those of :func:`deep_features_tables`. The weights used per phase are in
    ``table.attrs["weights"]``, the crop of every slice in ``table.attrs["slices"]``.
    """
    return deep_features_tables(images, {"reference": masks}, **options)["reference"]


def deep_features_tables(
    images: Mapping[str, Mapping[str, sitk.Image | str | os.PathLike]],
    masks_by_reader: Mapping[str, Mapping[str, sitk.Image | str | os.PathLike]],
    *,
    phases: Sequence[str] = ("arterial", "venous"),
    backbone: str = "resnet50",
    pretrained: str = "none",
    pooling: str = "avg",
    margin_mm: float = 10.0,
    size: int = 224,
    channels: str = "repeat",
    window: tuple[float, float] = (350.0, 50.0),
    batch_size: int = 32,
    seed: int = 0,
    device: str = "auto",
    fine_tune_labels: Mapping[str, int] | None = None,
    fine_tune: Mapping | None = None,
) -> dict[str, pd.DataFrame]:
    """Deep-feature tables for several mask sets (readers or perturbations) of one cohort with
    one set of networks: the backbone is built once and, with ``fine_tune_labels``
    ({patient_id: 0/1}, training patients only), fine-tuned once per phase on the slices of the
    first mask set (``fine_tune`` = keyword arguments of :func:`train_binary`)."""
    readers = list(masks_by_reader)
    prepared = {
        reader: {
            p: patient_slices(
                p,
                images.get(p, {}),
                masks[p],
                phases,
                margin_mm=margin_mm,
                size=size,
                channels=channels,
                window=window,
            )
            for p in sorted(masks)
        }
        for reader, masks in masks_by_reader.items()
    }
    base, record = build_backbone(backbone, pretrained, pooling, seed)
    models, weights = {}, {}
    for phase in phases:
        models[phase], weights[phase] = base, dict(record)
        if fine_tune_labels:
            reference = prepared[readers[0]]
            train = sorted(p for p in reference if p in fine_tune_labels)
            slices = np.stack([reference[p][phase][0] for p in train])
            labels = np.array([fine_tune_labels[p] for p in train], dtype=np.float32)
            models[phase], history = fine_tune_backbone(
                base, slices, labels, seed=seed, device=device, **dict(fine_tune or {})
            )
            weights[phase].update(
                fine_tuned_from=record["weights"],
                weights=f"fine-tuned sha256:{state_dict_sha256(models[phase])}",
                fine_tune_epochs=int(len(history)),
                fine_tune_best_val_loss=float(history["val_loss"].min()),
                fine_tune_patients=len(train),
            )
    tables = {}
    for reader in readers:
        patients = sorted(prepared[reader])
        blocks = [pd.DataFrame({"patient_id": patients})]
        for phase in phases:
            slices = np.stack([prepared[reader][p][phase][0] for p in patients])
            features = extract(models[phase], slices, batch_size=batch_size, device=device)
            names = [f"{phase}_{backbone}_{i:04d}" for i in range(features.shape[1])]
            blocks.append(pd.DataFrame(features, columns=names))
        table = pd.concat(blocks, axis=1)
        table.attrs["weights"] = weights
        table.attrs["slices"] = {
            p: {ph: vars(prepared[reader][p][ph][1]) for ph in phases} for p in patients
        }
        tables[reader] = table
    return tables
