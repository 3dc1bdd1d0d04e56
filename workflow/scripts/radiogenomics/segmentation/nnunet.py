"""nnU-Net v2 through its own API: raw dataset, fingerprint, plans, preprocessing, training,
and prediction with ``nnUNetPredictor`` (the model loaded once, then applied case by case).

nnunetv2 reads its three folders from the environment when it is first imported, so
``configure_environment`` must run before anything here imports it (the functions import
nnunetv2 lazily for that reason).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.io import write_label_map
from .masks import on_grid
from .model import check_model_folder

log = logging.getLogger(__name__)

DATASET_ID = 501
PLANS = "nnUNetPlans"
FOLDERS = {"nnUNet_raw": "raw", "nnUNet_preprocessed": "preprocessed", "nnUNet_results": "results"}


def dataset_name(name: str = "ccRCC") -> str:
    return f"Dataset{DATASET_ID:03d}_{name}"


def configure_environment(root: str | Path, threads: int) -> dict[str, str]:
    """Point nnU-Net's folders at ``root``/{raw,preprocessed,results}; limit torch to ``threads``.

    nnUNet_n_proc_DA (nnU-Net's worker count, also its planner's torch threads) is ``threads``;
    ``train_model`` sets it to 0 for training, whose augmentation then runs in the training
    process itself, so a job uses the cores Snakemake gave it and no more. torch.compile
    stays off (CPU, short runs).
    """
    paths = {name: str(Path(root).resolve() / sub) for name, sub in FOLDERS.items()}
    loaded = sys.modules.get("nnunetv2.paths")
    if loaded is not None and loaded.nnUNet_raw not in (None, paths["nnUNet_raw"]):
        raise RuntimeError(
            f"nnunetv2 was already imported with nnUNet_raw={loaded.nnUNet_raw}; "
            "one process can use one set of nnU-Net folders"
        )
    for name, path in paths.items():
        Path(path).mkdir(parents=True, exist_ok=True)
        os.environ[name] = path
    os.environ["nnUNet_n_proc_DA"] = str(threads)
    os.environ.setdefault("nnUNet_compile", "false")
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    import torch

    torch.set_num_threads(threads)
    return paths


def resolve_device(device: str):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def training_labels(labels: dict) -> dict[str, int]:
    """dataset.json labels of a kidney + tumour model; nnU-Net needs them consecutive from 0."""
    wanted = {"background": 0, "kidney": int(labels["kidney"]), "tumor": int(labels["tumor"])}
    if sorted(wanted.values()) != list(range(len(wanted))):
        raise ValueError(
            f"segmentation.labels kidney={labels['kidney']}, tumor={labels['tumor']}: a model trained "
            "here needs consecutive labels 1 and 2 (nnU-Net's rule)"
        )
    return wanted


def label_map(tumor: sitk.Image, kidney: sitk.Image, labels: dict) -> sitk.Image:
    """One label image: kidney, and the tumour over it (a tumour voxel is never kidney)."""
    tumour = sitk.GetArrayFromImage(tumor) > 0
    out = np.where(sitk.GetArrayFromImage(kidney) > 0, int(labels["kidney"]), 0).astype(np.uint8)
    out[tumour] = int(labels["tumor"])
    image = sitk.GetImageFromArray(out)
    image.CopyInformation(tumor)
    return image


def write_raw_dataset(cases: list[dict], dataset_dir: str | Path, channels: list[str], labels: dict) -> int:
    """An nnU-Net raw dataset: imagesTr/{case}_{channel:04d}.nii.gz, labelsTr/{case}.nii.gz.

    ``cases``: dicts with ``case_id``, ``images`` (one path per channel, on one grid) and
    ``tumor`` and ``kidney`` (reference masks, resampled onto that grid by nearest neighbour).
    """
    from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json

    dataset_dir = Path(dataset_dir)
    for sub in ("imagesTr", "labelsTr"):
        (dataset_dir / sub).mkdir(parents=True, exist_ok=True)
    for case in cases:
        images = [sitk.ReadImage(str(path)) for path in case["images"]]
        for index, image in enumerate(images):
            sitk.WriteImage(image, str(dataset_dir / "imagesTr" / f"{case['case_id']}_{index:04d}.nii.gz"))
        tumour, kidney = (on_grid(sitk.ReadImage(str(case[key])), images[0]) for key in ("tumor", "kidney"))
        target = label_map(tumour, kidney, labels)
        write_label_map(target, dataset_dir / "labelsTr" / f"{case['case_id']}.nii.gz")
    generate_dataset_json(
        str(dataset_dir),
        channel_names={i: "CT" for i in range(len(channels))} if len(channels) == 1
        else {i: f"CT_{phase}" for i, phase in enumerate(channels)},
        labels=training_labels(labels),
        num_training_cases=len(cases),
        file_ending=".nii.gz",
        dataset_name=dataset_dir.name,
        description=f"training patients' reference masks; channels {', '.join(channels)}",
    )
    return len(cases)


def trainer_class(name: str):
    """The project's trainers first, then nnunetv2's (found by name as nnUNetv2_train does)."""
    from .trainer import PROJECT_TRAINERS

    if name in PROJECT_TRAINERS:
        return PROJECT_TRAINERS[name]
    import nnunetv2
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    found = recursive_find_python_class(
        str(Path(nnunetv2.__path__[0]) / "training" / "nnUNetTrainer"), name, "nnunetv2.training.nnUNetTrainer"
    )
    if found is None:
        raise ValueError(
            f"segmentation.train.trainer {name!r} is neither a project trainer "
            f"({', '.join(PROJECT_TRAINERS)}) nor an nnunetv2 trainer"
        )
    return found


def override_plans(plans_path: Path, configuration: str, settings: dict) -> None:
    """Smaller batches or patches, or a coarser spacing, than nnU-Net planned (CPU budgets),
    written into the plans file itself before preprocessing. ``spacing_mm`` is (x, y, z) like
    imaging.spacing_mm; a 2d configuration takes its in-plane part.

    A patch must stay divisible by the network's total stride per axis (the planned
    architecture is kept), so it is rounded down to a multiple of it.
    """
    plans = json.loads(plans_path.read_text())
    planned = plans["configurations"][configuration]
    if settings.get("batch_size"):
        planned["batch_size"] = int(settings["batch_size"])
    if settings.get("spacing_mm"):
        # nnU-Net resamples every case to this spacing and its prediction back to the input grid;
        # its axes are the array's (z, y, x), and a 2d configuration's are the in-plane (y, x)
        spacing = [float(s) for s in settings["spacing_mm"]][::-1]
        planned["spacing"] = spacing[-len(planned["spacing"]) :]
    if settings.get("patch_size"):
        strides = np.prod(np.asarray(planned["architecture"]["arch_kwargs"]["strides"]), axis=0)
        wanted = np.asarray(settings["patch_size"], int)
        if len(wanted) != len(strides):
            raise ValueError(
                f"segmentation.train.patch_size {wanted.tolist()} has {len(wanted)} axes; "
                f"configuration {configuration} needs {len(strides)}"
            )
        planned["patch_size"] = [int(max(s, (w // s) * s)) for w, s in zip(wanted, strides, strict=True)]
    plans_path.write_text(json.dumps(plans, indent=2))


def train_model(
    cases: list[dict], channels: list[str], labels: dict, settings: dict, threads: int,
    device: str = "auto", seed: int = 0,
) -> Path:  # fmt: skip
    """Raw dataset -> fingerprint -> plans -> preprocessing -> training; the model folder.

    ``settings``: ``configuration``, ``trainer``, ``epochs`` and ``iterations_per_epoch``
    (null: the trainer's own), ``batch_size``, ``patch_size``, ``spacing_mm`` (null: as planned), ``fold``
    (an int or ``all``), ``pretrained_weights`` (a checkpoint to fine-tune from, e.g. a KiTS
    model; null trains from scratch).
    Needs ``configure_environment`` first.
    """
    import torch
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprints,
        plan_experiments,
        preprocess,
    )
    from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw
    from nnunetv2.run.load_pretrained_weights import load_pretrained_weights

    name = dataset_name()
    write_raw_dataset(cases, Path(nnUNet_raw) / name, channels, labels)
    configuration = settings["configuration"]
    extract_fingerprints([DATASET_ID], num_processes=threads, check_dataset_integrity=True,
                         verbose=False, show_progress_bar=False)  # fmt: skip
    plan_experiments([DATASET_ID])
    override_plans(Path(nnUNet_preprocessed) / name / f"{PLANS}.json", configuration, settings)
    preprocess([DATASET_ID], PLANS, [configuration], [threads], verbose=False, show_progress_bar=False)

    # nnU-Net's augmentation draws from the global generators (in-process: nnUNet_n_proc_DA=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    preprocessed = Path(nnUNet_preprocessed) / name
    plans = json.loads((preprocessed / f"{PLANS}.json").read_text())
    plans["continue_training"] = False  # read (and removed) by nnUNetTrainer, as nnUNetv2_train sets it
    dataset_json = json.loads((preprocessed / "dataset.json").read_text())
    fold = settings["fold"]
    os.environ["nnUNet_n_proc_DA"] = "0"
    trainer = trainer_class(settings["trainer"])(
        plans=plans, configuration=configuration, fold=fold, dataset_json=dataset_json,
        device=resolve_device(device),
    )  # fmt: skip
    if settings.get("epochs"):
        trainer.num_epochs = int(settings["epochs"])
    if settings.get("iterations_per_epoch"):
        trainer.num_iterations_per_epoch = int(settings["iterations_per_epoch"])
    if settings.get("pretrained_weights"):
        trainer.initialize()
        load_pretrained_weights(trainer.network, str(settings["pretrained_weights"]), verbose=True)
    trainer.run_training()
    log.info("trained %s (%d cases) in %s", settings["trainer"], len(cases), trainer.output_folder_base)
    return Path(trainer.output_folder_base)


def load_predictor(model_dir: str | Path, folds: list, checkpoint: str, device: str = "auto",
                   tta: bool = True, n_channels: int = 1, tile_step_size: float = 0.5):  # fmt: skip
    """An ``nnUNetPredictor`` holding the model's folds (loaded once for many cases).

    nnU-Net finds a model's trainer class by name inside its own package only; a model trained
    with a project trainer is therefore assembled here the way
    ``initialize_from_trained_model_folder`` does, with ``trainer_class`` for the lookup.
    """
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    model_dir = Path(model_dir)
    dataset_json = check_model_folder(model_dir, n_channels, {}, folds, checkpoint)
    plans_manager = PlansManager(json.loads((model_dir / "plans.json").read_text()))
    torch_device = resolve_device(device)
    parameters, trainer_name, configuration, mirroring = [], None, None, None
    for fold in folds:
        state = torch.load(model_dir / f"fold_{fold}" / checkpoint, map_location="cpu", weights_only=False)
        if trainer_name is None:
            trainer_name = state["trainer_name"]
            configuration = state["init_args"]["configuration"]
            mirroring = state.get("inference_allowed_mirroring_axes")
        parameters.append(state["network_weights"])
    configuration_manager = plans_manager.get_configuration(configuration)
    network = trainer_class(trainer_name).build_network_architecture(
        plans_manager, configuration_manager,
        determine_num_input_channels(plans_manager, configuration_manager, dataset_json),
        plans_manager.get_label_manager(dataset_json).num_segmentation_heads,
        enable_deep_supervision=False,
    )  # fmt: skip
    network.load_state_dict(parameters[0])
    predictor = nnUNetPredictor(
        tile_step_size=tile_step_size, use_gaussian=True, use_mirroring=tta,
        perform_everything_on_device=torch_device.type == "cuda", device=torch_device,
        verbose=False, allow_tqdm=False,
    )  # fmt: skip
    predictor.manual_initialization(
        network, plans_manager, configuration_manager, parameters, dataset_json, trainer_name, mirroring
    )
    return predictor


def predict_label_map(predictor, image_paths: list[str | Path]) -> sitk.Image:
    """The predicted label map of one case (one image file per channel, on one grid), on that grid.

    Read with nnU-Net's own SimpleITK reader, so axes and spacing are what the model trained on.
    """
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    data, properties = SimpleITKIO().read_images([str(path) for path in image_paths])
    seg = predictor.predict_single_npy_array(data, properties, None, None, False)
    out = sitk.GetImageFromArray(np.asarray(seg, dtype=np.uint8))
    out.CopyInformation(sitk.ReadImage(str(image_paths[0])))
    return out


def build_model(
    cases: list[dict], model_dir: str | Path, work_dir: str | Path, channels: list[str], labels: dict,
    settings: dict, threads: int, device: str = "auto", seed: int = 0,
) -> dict:  # fmt: skip
    """Train in ``work_dir`` (nnU-Net's three folders) and move the model folder to ``model_dir``.

    The raw and preprocessed copies are deleted afterwards (they are rebuilt from the images).
    Returns the training record written beside the model (cases, seconds, settings).
    """
    work_dir, model_dir = Path(work_dir), Path(model_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    configure_environment(work_dir, threads)
    start = time.perf_counter()
    trained = train_model(cases, channels, labels, settings, threads, device, seed)
    record = {
        "cases": [case["case_id"] for case in cases],
        "train_seconds": round(time.perf_counter() - start, 1),
        "threads": threads,
        "device": str(resolve_device(device)),
        "channels": channels,
        "settings": settings,
    }
    (trained / "training.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(trained), str(model_dir))
    shutil.rmtree(work_dir, ignore_errors=True)
    return record


def predict_cases(
    model_dir: str | Path, cases: dict[str, list[str]], out_dir: str | Path, folds: list,
    checkpoint: str, threads: int, device: str = "auto", tta: bool = True,
    tile_step_size: float = 0.5,
) -> dict:  # fmt: skip
    """Label maps ``out_dir/{patient}.nii.gz`` for every case (patient -> channel image paths),
    with the model loaded once; ``out_dir/timing.json`` holds load and per-case seconds.

    ``tile_step_size`` is nnU-Net's sliding-window step as a fraction of the patch (0.5, its
    default, overlaps tiles by half; 1.0 does not overlap and needs about 4x fewer 2d tiles)."""
    import torch

    torch.set_num_threads(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    n_channels = len(next(iter(cases.values()))) if cases else 1
    predictor = load_predictor(model_dir, folds, checkpoint, device, tta, n_channels, tile_step_size)
    timing = {"load_seconds": round(time.perf_counter() - start, 2), "threads": threads,
              "tile_step_size": tile_step_size,
              "device": str(resolve_device(device)), "case_seconds": {}}  # fmt: skip
    for patient, paths in sorted(cases.items()):
        start = time.perf_counter()
        prediction = predict_label_map(predictor, paths)
        write_label_map(prediction, out_dir / f"{patient}.nii.gz")
        timing["case_seconds"][patient] = round(time.perf_counter() - start, 2)
        log.info("%s: %.1f s", patient, timing["case_seconds"][patient])
    (out_dir / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    return timing
