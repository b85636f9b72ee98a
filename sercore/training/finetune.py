"""Fine-tuning with a linear classifier (encoder frozen or tuned) and the supervised baseline from scratch."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Sequence

import pandas as pd
import torch
from torch import nn

from sercore.core.config import seed_everything
from sercore.core.precision import autocast, check_precision, resolve_precision
from sercore.features.featureset import FeatureSet
from sercore.models.encoders import EncoderClassifier
from sercore.training.loops import (
    INIT_LOCK,
    batch_indices,
    batched_outputs,
    check_ids,
    default_encoder,
    embed,
    encode_labels,
    joint_lengths,
    load_batch,
    normalize_if_needed,
    output_dim,
    scores,
    state_copy,
)


@dataclass
class FinetuneConfig:
    """Linear-classifier fine-tuning (paper: Adam 1e-3, LR ×0.9 after 5 epochs without validation-UAR gain)."""

    lr: float = 1e-3
    max_epochs: int = 100
    lr_decay: float = 0.9
    decay_patience: int = 5
    frozen: bool = False
    batch_size: int = 64
    seed: int = 0
    patience: int | None = 20  # stop after this many epochs without a validation-UAR gain (None: never)
    max_frames: int | None = None
    weight_decay: float = 0.0
    eval_batch_size: int = 64  # validation/test passes, in batches of similar length
    bucket_batches: int = 8  # as in PretrainConfig
    precision: str = "auto"  # as in PretrainConfig

    def __post_init__(self):
        check_precision(self.precision, "FinetuneConfig.precision")


@dataclass
class FinetuneResult:
    """Fine-tuned ``EncoderClassifier`` (best validation UAR), per-epoch history, and metrics."""

    model: nn.Module
    history: pd.DataFrame
    metrics: dict
    classes: list = field(default_factory=list)
    test_pred: list = field(default_factory=list)  # the predicted class of each test utterance


class _Head(nn.Module):
    """The classifier alone, called like an encoder (for frozen fine-tuning on cached embeddings)."""

    def __init__(self, classifier: nn.Linear):
        super().__init__()
        self.classifier = classifier

    def forward(self, x, lengths=None):
        return self.classifier(x)


def finetune(encoder: nn.Module, features: FeatureSet, train_ids: Sequence[str], train_labels: Sequence,
             val_ids: Sequence[str], val_labels: Sequence, *, config: FinetuneConfig | None = None, device="cpu",
             test_ids: Sequence[str] | None = None, test_labels: Sequence | None = None) -> FinetuneResult:
    """Train a linear classifier on ``encoder`` (a copy; frozen or tuned) and pick the epoch of best validation UAR.

    Frozen: the representations are computed once and only the classifier is trained (the encoder, BatchNorm
    statistics included, is unchanged). Tuned: encoder and classifier are trained together. The LR is multiplied
    by ``lr_decay`` after ``decay_patience`` epochs without a validation-UAR gain. Forward passes run in
    ``config.precision`` where the device supports it; validation and test passes run in inference mode.
    ``metrics`` holds ``val_uar, val_wa, test_uar, test_wa`` (NaN without a test set), ``best_epoch``,
    ``epochs_run``, ``steps`` (optimizer steps), ``precision`` (used), ``precision_note`` and ``n_train``; history
    has ``epoch, train_loss, val_uar, val_wa, lr, steps`` (optimizer steps so far).
    """
    config = config or FinetuneConfig()
    train_ids = check_ids("train_ids", train_ids, train_labels)
    val_ids = check_ids("val_ids", val_ids, val_labels)
    test_ids = check_ids("test_ids", test_ids, test_labels) if test_ids is not None else None
    classes, (y_train, y_val, y_test) = encode_labels(train_labels, val_labels, test_labels)
    device = torch.device(device)
    used, note = resolve_precision(config.precision, device)
    with INIT_LOCK:
        seed_everything(config.seed)
        encoder = copy.deepcopy(encoder)
        normalize_if_needed(encoder, features, train_ids)
        model = EncoderClassifier(encoder, output_dim(encoder, features), len(classes)).to(device)
    all_ids = train_ids + val_ids + (test_ids or [])
    if config.frozen:
        for p in model.encoder.parameters():
            p.requires_grad_(False)
        model.encoder.eval()
        reps = embed(model.encoder, features, list(dict.fromkeys(all_ids)), device, batch_size=config.eval_batch_size,
                     max_frames=config.max_frames, precision=used)
        source, module = FeatureSet(list(dict.fromkeys(all_ids)), reps), _Head(model.classifier)
    else:
        source, module = features, model
    history = _fit_classifier(module, source, source.positions(train_ids), y_train, source.positions(val_ids), y_val,
                              config, device, used)
    model.eval()
    test_uar, test_wa, test_pred = float("nan"), float("nan"), []
    if test_ids is not None:
        logits = batched_outputs(module, source, source.positions(test_ids), device, config.eval_batch_size,
                                 config.max_frames, used)
        test_uar, test_wa = scores(y_test, logits.argmax(1).numpy())
        test_pred = [classes[i] for i in logits.argmax(1).tolist()]
    best = history.loc[int(history["val_uar"].idxmax())]  # the restored epoch: its validation scores are known
    metrics = {"val_uar": float(best["val_uar"]), "val_wa": float(best["val_wa"]), "test_uar": test_uar,
               "test_wa": test_wa, "best_epoch": int(best["epoch"]), "epochs_run": len(history),
               "steps": int(history["steps"].iloc[-1]), "precision": used, "precision_note": note,
               "n_train": len(train_ids)}
    return FinetuneResult(model, history, metrics, classes, test_pred)


def _fit_classifier(module, features, train_pos, y_train, val_pos, y_val, config, device,
                    precision: str = "fp32") -> pd.DataFrame:
    """Cross-entropy training of ``module`` with LR decay on plateaus of validation UAR; restores the best epoch.

    Forward passes in ``precision`` autocast, the loss in float32, validation in inference mode."""
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=config.lr_decay,
                                                           patience=config.decay_patience, eps=0.0)
    generator = torch.Generator().manual_seed(config.seed)
    targets = torch.as_tensor(y_train, device=device)
    lengths = joint_lengths([features], [train_pos])
    best_uar, best_state, wait, steps, rows = -1.0, state_copy(module), 0, 0, []
    for epoch in range(config.max_epochs):  # 0-based, as in pre-training (sercore.training.epochs)
        module.train()
        if isinstance(module, EncoderClassifier) and not any(p.requires_grad for p in module.encoder.parameters()):
            module.encoder.eval()
        total = 0.0
        for idx in batch_indices(len(train_pos), config.batch_size, generator=generator, lengths=lengths,
                                 bucket_batches=config.bucket_batches):
            with autocast(precision, device):
                logits = module(*load_batch(features, train_pos[idx], device, config.max_frames))
            loss = nn.functional.cross_entropy(logits.float(), targets[torch.as_tensor(idx, device=device)])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            total += loss.item() * len(idx)
        pred = batched_outputs(module, features, val_pos, device, config.eval_batch_size, config.max_frames,
                               precision).argmax(1)
        val_uar, val_wa = scores(y_val, pred.numpy())
        rows.append({"epoch": epoch, "train_loss": total / len(train_pos), "val_uar": val_uar, "val_wa": val_wa,
                     "lr": optimizer.param_groups[0]["lr"], "steps": steps})
        scheduler.step(val_uar)
        if val_uar > best_uar:
            best_uar, best_state, wait = val_uar, state_copy(module), 0
        else:
            wait += 1
            if config.patience is not None and wait >= config.patience:
                break
    module.load_state_dict(best_state)
    return pd.DataFrame(rows)


def supervised_baseline(features: FeatureSet, train_ids: Sequence[str], train_labels: Sequence,
                        val_ids: Sequence[str], val_labels: Sequence, *, config: FinetuneConfig | None = None,
                        device="cpu", test_ids: Sequence[str] | None = None, test_labels: Sequence | None = None,
                        norm_ids: Sequence[str] | None = None, encoder_cfg: dict | None = None) -> FinetuneResult:
    """The same encoder and classifier trained from random initialisation (``config.seed``), encoder tuned.

    ``norm_ids`` (default ``train_ids``) give an MLP encoder its z-statistics, e.g. all training-fold utterances
    when only a few of them are labelled.
    """
    config = replace(config or FinetuneConfig(), frozen=False)
    with INIT_LOCK:
        encoder = default_encoder(features, seed=config.seed, **(encoder_cfg or {}))
    normalize_if_needed(encoder, features, list(norm_ids) if norm_ids is not None else list(train_ids))
    return finetune(encoder, features, train_ids, train_labels, val_ids, val_labels, config=config, device=device,
                    test_ids=test_ids, test_labels=test_labels)
