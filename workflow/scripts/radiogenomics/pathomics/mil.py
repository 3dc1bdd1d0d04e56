"""Attention-based multiple-instance learning on tile features (S3, CRPNet).

Attention (Ilse et al. 2018, as S3): a_k = w^T tanh(V h_k) with V: features -> 128, softmax over
the tiles of a slide, bag embedding = sum_k a_k h_k, then a bag-level MLP to one logit
(recurrence). The gated variant (CLAM, Lu et al. 2021) multiplies tanh(V h_k) by
sigmoid(U h_k) before w. Tile features are standardised with the training tiles' mean and
standard deviation (part of the frozen model).

Training: Adam (lr 1e-4, weight decay 1e-5), a batch of bags per iteration (loss averaged over
the bags; bags differ in size so each is pooled on its own), up to ``iterations`` iterations,
early stopping on an inner validation split of the training patients (validation loss every
``eval_every`` iterations, ``patience`` checks without improvement), best weights restored.
Seeded: the same seed, data and machine give the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from radiogenomics.features import deep

TRAIN_KEYS = (
    "attention_hidden",
    "classifier_hidden",
    "lr",
    "weight_decay",
    "batch_size",
    "iterations",
    "val_fraction",
    "eval_every",
    "patience",
)


class AttentionPooling(nn.Module):
    """Softmax attention over the instances of one bag; ``gated`` adds the CLAM gate."""

    def __init__(self, n_features: int, hidden: int = 128, gated: bool = False):
        super().__init__()
        self.V = nn.Linear(n_features, hidden)
        self.U = nn.Linear(n_features, hidden) if gated else None
        self.w = nn.Linear(hidden, 1)

    def forward(self, bag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """bag (n, d) -> (embedding (d,), attention (n,) summing to one)."""
        hidden = torch.tanh(self.V(bag))
        if self.U is not None:
            hidden = hidden * torch.sigmoid(self.U(bag))
        attention = torch.softmax(self.w(hidden).squeeze(-1), dim=0)
        return attention @ bag, attention


class AttentionMIL(nn.Module):
    """Standardise tiles -> attention pooling -> MLP -> one logit per bag."""

    def __init__(
        self,
        n_features: int,
        attention_hidden: int = 128,
        classifier_hidden: int = 64,
        gated: bool = False,
    ):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.pool = AttentionPooling(n_features, attention_hidden, gated)
        self.classifier = nn.Sequential(
            nn.Linear(n_features, classifier_hidden), nn.ReLU(), nn.Linear(classifier_hidden, 1)
        )

    def forward(self, bag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """bag (n, d) raw features -> (logit (), attention (n,))."""
        embedding, attention = self.pool((bag - self.mean) / self.std)
        return self.classifier(embedding).squeeze(-1), attention


def fit_standardiser(model: AttentionMIL, bags: Sequence[np.ndarray]) -> None:
    tiles = np.concatenate(bags).astype(np.float64)
    std = tiles.std(axis=0)
    model.mean.copy_(torch.from_numpy(tiles.mean(axis=0)).float())
    model.std.copy_(torch.from_numpy(np.where(std > 1e-8, std, 1.0)).float())


def _bag_loss(model, bags, labels, index, device) -> torch.Tensor:
    loss_fn = nn.BCEWithLogitsLoss()
    logits = torch.stack([model(torch.from_numpy(bags[i]).to(device))[0] for i in index])
    return loss_fn(logits, torch.as_tensor(labels[index], dtype=torch.float32, device=device))


def train_mil(
    bags: Sequence[np.ndarray],
    labels,
    *,
    augmented: Sequence[np.ndarray | None] | None = None,
    gated: bool = False,
    attention_hidden: int = 128,
    classifier_hidden: int = 64,
    lr: float = 1e-4,
    weight_decay: float = 1e-5,
    batch_size: int = 64,
    iterations: int = 300,
    val_fraction: float = 0.2,
    eval_every: int = 10,
    patience: int = 5,
    seed: int = 0,
    device: str = "auto",
) -> tuple[AttentionMIL, pd.DataFrame]:
    """Fit on the given (training) bags; returns the model (eval mode) and the history
    (iteration, train_loss, val_loss at each check).

    ``augmented[i]`` (views, n_i, d) or None: each time bag i is drawn, one of its plain or
    augmented views is used (uniformly). Validation bags always use the plain features.
    """
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    device = deep.select_device(device)
    deep.set_deterministic(device)
    labels = np.asarray(labels, dtype=np.float32)
    bags = [np.ascontiguousarray(b, dtype=np.float32) for b in bags]
    fit_idx, val_idx = deep.validation_split(labels, val_fraction, seed)
    generator = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AttentionMIL(bags[0].shape[1], attention_hidden, classifier_hidden, gated)
    fit_standardiser(model, [bags[i] for i in fit_idx])
    model = model.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    stopping, history = deep.EarlyStopping(model, patience, "lower pathomics.mil.lr"), []
    order, cursor, losses = generator.permutation(fit_idx), 0, []
    for iteration in range(1, iterations + 1):
        model.train()
        if cursor + min(batch_size, len(fit_idx)) > len(order):
            order, cursor = generator.permutation(fit_idx), 0
        batch = order[cursor : cursor + batch_size]
        cursor += len(batch)
        views = [_draw_view(bags[i], augmented[i] if augmented else None, generator) for i in batch]
        optimiser.zero_grad()
        loss = _bag_loss(model, views, labels[batch], np.arange(len(batch)), device)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        if iteration % eval_every and iteration != iterations:
            continue
        model.eval()
        with torch.no_grad():
            val_loss = _bag_loss(model, bags, labels, val_idx, device).item()
        history.append(
            {"iteration": iteration, "train_loss": float(np.mean(losses)), "val_loss": val_loss}
        )
        losses = []
        if stopping.should_stop(val_loss, f"MIL iteration {iteration}"):
            break
    return stopping.best_model(), pd.DataFrame(history)


def _draw_view(bag, views, generator) -> np.ndarray:
    if views is None or len(views) == 0:
        return bag
    pick = int(generator.integers(len(views) + 1))
    return bag if pick == 0 else np.ascontiguousarray(views[pick - 1], dtype=np.float32)


def predict(model: AttentionMIL, bags: Sequence[np.ndarray], device: str = "auto"):
    """Frozen model on bags: logits (n_bags,) and the attention of every bag."""
    device = deep.select_device(device)
    model = model.to(device).eval()
    logits, attention = [], []
    with torch.no_grad():
        for bag in bags:
            logit, weights = model(torch.from_numpy(np.asarray(bag, np.float32)).to(device))
            logits.append(float(logit))
            attention.append(weights.cpu().numpy())
    return np.asarray(logits), attention
