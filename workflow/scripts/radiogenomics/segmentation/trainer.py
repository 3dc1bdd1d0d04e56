"""The project's short nnU-Net trainer: the stock trainer with few epochs and iterations.

nnU-Net's default (1000 epochs of 250 iterations) takes days on a CPU; the synthetic studies
train for minutes with this variant. Everything else (network, loss, augmentation, schedule
shape) is nnUNetTrainer's. Importing this module imports nnunetv2: set its folders first
(``nnunet.configure_environment``).
"""

from __future__ import annotations

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class nnUNetTrainerShort(nnUNetTrainer):  # noqa: N801 (nnU-Net's trainer naming)
    """``epochs`` x ``iterations_per_epoch`` training steps; ``val_iterations`` per epoch."""

    epochs = 10
    iterations_per_epoch = 25
    val_iterations = 5

    def __init__(
        self, plans: dict, configuration: str, fold: int, dataset_json: dict,
        device: torch.device = torch.device("cpu"),
    ):  # fmt: skip
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = self.epochs
        self.num_iterations_per_epoch = self.iterations_per_epoch
        self.num_val_iterations_per_epoch = self.val_iterations
        # a checkpoint every few epochs, as the stock trainer does every 50 of its 1000
        self.save_every = max(1, self.epochs // 5)


PROJECT_TRAINERS = {"nnUNetTrainerShort": nnUNetTrainerShort}
