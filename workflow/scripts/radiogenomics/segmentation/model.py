"""Checks on an nnU-Net v2 model folder that read JSON only, so they can run at DAG build."""

from __future__ import annotations

import json
from pathlib import Path


class ModelFolderError(ValueError):
    """A model folder that prediction cannot use; the message names the file and the fix."""


def label_values(dataset_json: dict) -> set[int]:
    """Integer labels a model's predicted label map can hold (label-based or region-based)."""
    values = set()
    for value in dataset_json.get("labels", {}).values():
        values.update(value if isinstance(value, list) else [value])
    values.update(dataset_json.get("regions_class_order") or [])
    return {int(v) for v in values} - {0}


def check_model_folder(
    model_dir: str | Path, n_channels: int, labels: dict, folds: list, checkpoint: str,
    configuration: str | None = None,
) -> dict:  # fmt: skip
    """Raise ModelFolderError unless ``model_dir`` is a trained nnU-Net model prediction can use.

    It must hold dataset.json (with ``n_channels`` input channels and every label of ``labels``
    that is not null), plans.json (defining ``configuration`` when given) and
    ``fold_{f}/{checkpoint}`` for each fold. Returns the dataset.json.
    """
    folder = Path(model_dir)
    fix_folder = (
        "point segmentation.model_dir at the folder nnUNetv2_train wrote "
        "(nnUNet_results/DatasetXXX_Name/<trainer>__<plans>__<configuration>), or set it to null "
        "to train one on the study's training patients"
    )
    if not folder.is_dir():
        raise ModelFolderError(f"segmentation.model_dir {folder} does not exist. Fix: {fix_folder}")
    for name in ("dataset.json", "plans.json"):
        if not (folder / name).is_file():
            raise ModelFolderError(f"{folder / name} is missing: not an nnU-Net model folder. Fix: {fix_folder}")
    try:
        dataset = json.loads((folder / "dataset.json").read_text())
        plans = json.loads((folder / "plans.json").read_text())
    except json.JSONDecodeError as error:
        raise ModelFolderError(f"{folder} holds a JSON file that cannot be read ({error}). Fix: {fix_folder}") from None
    channels = dataset.get("channel_names") or dataset.get("modality") or {}
    if len(channels) != n_channels:
        raise ModelFolderError(
            f"{folder / 'dataset.json'}: the model takes {len(channels)} input channel(s) "
            f"({', '.join(map(str, channels.values()))}) but segmentation.channels gives {n_channels}. "
            "Fix: list as many imaging phases in segmentation.channels as the model was trained on, in its order"
        )
    known = label_values(dataset)
    missing = {name: value for name, value in labels.items() if value is not None and int(value) not in known}
    if missing:
        raise ModelFolderError(
            f"{folder / 'dataset.json'}: the model predicts labels {sorted(known)}, not "
            + ", ".join(f"{name}={value}" for name, value in missing.items())
            + ". Fix: set segmentation.labels to the model's label values (dataset.json 'labels'), "
            "or null for a structure it does not segment"
        )
    configurations = sorted(plans.get("configurations", {}))
    if configuration is not None and configuration not in configurations:
        raise ModelFolderError(
            f"{folder / 'plans.json'} has no configuration {configuration!r} ({', '.join(configurations)}). "
            "Fix: set segmentation.configuration to the one the model was trained with"
        )
    for fold in folds:
        path = folder / f"fold_{fold}" / checkpoint
        if not path.is_file():
            raise ModelFolderError(
                f"{path} is missing. Fix: list in segmentation.folds only folds that were trained, "
                "or set segmentation.checkpoint to a checkpoint that exists (checkpoint_final.pth, checkpoint_best.pth)"
            )
    return dataset
