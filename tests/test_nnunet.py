"""nnU-Net v2 for real on CPU: train a tiny 2d model on synthetic patients, predict held-out ones.

No mocks: nnunetv2's fingerprint extraction, planning, preprocessing, the project's short
trainer and ``nnUNetPredictor``. Cases are resampled to 2 mm so a CPU trains in minutes.
"""

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from synthetic_cases import write_cases

from radiogenomics.segmentation import nnunet
from radiogenomics.segmentation.masks import split_label_map
from radiogenomics.segmentation.model import check_model_folder
from radiogenomics.segmentation.qc import agreement

pytestmark = pytest.mark.slow
LABELS = {"kidney": 1, "tumor": 2, "cyst": None}
SETTINGS = {"configuration": "2d", "trainer": "nnUNetTrainerShort", "epochs": 4, "iterations_per_epoch": 10,
            "batch_size": 8, "patch_size": [64, 64], "fold": "all", "pretrained_weights": None}  # fmt: skip
N_TRAIN = 8


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("nnunet")
    cases = write_cases(root / "cases", N_TRAIN + 3, seed=11, spacing=(2.0, 2.0, 2.0))
    train = [{"case_id": c["case_id"], "images": [c["venous"]], "tumor": c["tumor"], "kidney": c["kidney"]}
             for c in cases[:N_TRAIN]]  # fmt: skip
    record = nnunet.build_model(train, root / "model", root / "work", ["venous"], LABELS, SETTINGS,
                                threads=2, device="cpu", seed=5)  # fmt: skip
    held_out = cases[N_TRAIN:]
    timing = nnunet.predict_cases(root / "model", {c["case_id"]: [c["venous"]] for c in held_out},
                                  root / "predictions", ["all"], "checkpoint_final.pth", threads=2,
                                  device="cpu", tta=False)  # fmt: skip
    no_overlap = nnunet.predict_cases(root / "model", {c["case_id"]: [c["venous"]] for c in held_out},
                                      root / "predictions_step1", ["all"], "checkpoint_final.pth", threads=2,
                                      device="cpu", tta=False, tile_step_size=1.0)  # fmt: skip
    return {"root": root, "record": record, "held_out": held_out, "timing": timing, "no_overlap": no_overlap}


def test_training_writes_a_model_folder_prediction_accepts(trained):
    model = trained["root"] / "model"
    dataset = check_model_folder(model, 1, LABELS, ["all"], "checkpoint_final.pth", "2d")
    assert dataset["labels"] == {"background": 0, "kidney": 1, "tumor": 2}
    assert dataset["numTraining"] == N_TRAIN
    assert trained["record"]["cases"] == [f"SYN{i:04d}" for i in range(1, N_TRAIN + 1)]
    plans = json.loads((model / "plans.json").read_text())
    assert plans["configurations"]["2d"]["patch_size"] == [64, 64]
    assert plans["configurations"]["2d"]["batch_size"] == 8
    state = torch.load(model / "fold_all" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert state["trainer_name"] == "nnUNetTrainerShort"
    assert state["current_epoch"] == SETTINGS["epochs"]
    assert not (trained["root"] / "work").exists()  # raw and preprocessed copies removed


def test_held_out_cases_are_segmented_on_their_grid(trained):
    dice = {}
    for case in trained["held_out"]:
        predicted = sitk.ReadImage(str(trained["root"] / "predictions" / f"{case['case_id']}.nii.gz"))
        venous = sitk.ReadImage(case["venous"])
        assert predicted.GetSize() == venous.GetSize() and predicted.GetOrigin() == venous.GetOrigin()
        assert set(np.unique(sitk.GetArrayFromImage(predicted))) <= {0, 1, 2}
        tumour, kidney = split_label_map(predicted, LABELS, "largest")
        dice[case["case_id"]] = (
            agreement(tumour, sitk.ReadImage(case["tumor"]))["dice"],
            agreement(kidney, sitk.ReadImage(case["kidney"]))["dice"],
        )
    # 40 training steps on 8 cases: the kidney is learnt (Dice 0.76 on a held-out case after 20
    # steps of 14 slices in a trial run); the tumour needs far longer (0.02 then), so only the
    # kidney is held to a bar here. An untrained network scores about 0.
    kidney_dice = [d[1] for d in dice.values()]
    assert np.median(kidney_dice) > 0.5, dice
    assert set(trained["timing"]["case_seconds"]) == {c["case_id"] for c in trained["held_out"]}


def test_tile_step_size_reaches_the_sliding_window(trained):
    from nnunetv2.inference.sliding_window_prediction import compute_steps_for_sliding_window

    tiles = {}
    for step in (0.5, 1.0):
        predictor = nnunet.load_predictor(trained["root"] / "model", ["all"], "checkpoint_final.pth", "cpu",
                                          tta=False, n_channels=1, tile_step_size=step)  # fmt: skip
        assert predictor.tile_step_size == step
        steps = compute_steps_for_sliding_window((160, 160), (64, 64), step)
        tiles[step] = len(steps[0]) * len(steps[1])
    assert (tiles[0.5], tiles[1.0]) == (16, 9)  # nnU-Net's own window arithmetic on a 160-px slice
    assert trained["no_overlap"]["tile_step_size"] == 1.0
    dice = {}  # without overlap the kidney is still found, held to the bar of the half-overlap run
    for case in trained["held_out"]:
        path = trained["root"] / "predictions_step1" / f"{case['case_id']}.nii.gz"
        _, kidney = split_label_map(sitk.ReadImage(str(path)), LABELS, "largest")
        dice[case["case_id"]] = agreement(kidney, sitk.ReadImage(case["kidney"]))["dice"]
    assert np.median(list(dice.values())) > 0.5, dice
