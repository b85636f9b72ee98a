"""The pre-training epoch loop both papers share: 0-based epochs, early stopping on the validation loss, the best
epoch's weights restored, a history row per epoch.

Each paper supplies what is its own as two functions: ``train_epoch(epoch) -> dict`` (one optimisation pass; its
keys, such as ``train_loss`` and ``steps``, go into the history row) and ``val_loss(epoch) -> float`` (one
validation pass). Pairwise-CL (``sercore.pairwise.pretrain``) passes its views, pairs and NT-Xent; the
cluster-contrastive variants (``sercore.clusters.pretrain``) their sampler, loss and speaker head. Seeding,
precision and the thread count are set by the callers and the job engine, before the loop starts.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
from torch import nn


@dataclass
class EpochsRun:
    """What the loop did: the ``history`` (``epoch``, the train pass's keys, ``val_loss``, ``seconds``), the best
    epoch (0-based) and its validation loss (NaN without validation: the last epoch is kept)."""

    history: pd.DataFrame
    best_epoch: int
    best_val_loss: float

    @property
    def epochs_run(self) -> int:
        return len(self.history)


def run_epochs(model: nn.Module, *, max_epochs: int, patience: int | None,
               train_epoch: Callable[[int], dict], val_loss: Callable[[int], float] | None = None) -> EpochsRun:
    """Run ``train_epoch`` (``model`` in training mode) and ``val_loss`` (eval mode, inference mode) for epochs
    0, 1, ... up to ``max_epochs``; stop after ``patience`` epochs without a lower validation loss (None: never)
    and load the best epoch's weights into ``model``. Without ``val_loss`` every epoch runs and the last is kept.
    A validation loss that is never finite raises ``FloatingPointError`` (no epoch could be chosen)."""
    if max_epochs < 1:
        raise ValueError(f"run_epochs: max_epochs must be >= 1, got {max_epochs}")
    rows, best, best_epoch, best_state, waited = [], math.inf, -1, None, 0
    for epoch in range(max_epochs):
        start = time.perf_counter()
        model.train()
        row = {"epoch": epoch, **train_epoch(epoch)}
        model.eval()
        if val_loss is not None:
            with torch.inference_mode():
                row["val_loss"] = float(val_loss(epoch))
        else:
            row["val_loss"] = float("nan")
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        if val_loss is None:
            continue
        if row["val_loss"] < best:
            best, best_epoch, waited = row["val_loss"], epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if patience is not None and waited >= patience:
                break
    if val_loss is None:
        best_epoch, best = len(rows) - 1, float("nan")
    elif best_state is None:
        raise FloatingPointError("pre-training: the validation loss was not finite in any epoch")
    else:
        model.load_state_dict(best_state)
    model.eval()
    return EpochsRun(pd.DataFrame(rows), best_epoch, best)
