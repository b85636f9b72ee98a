"""Pairwise-CL pre-training (paper A): one encoder and projection head per view, trained with the mean pairwise
NT-Xent over every pair of views; ``pretrain_pairwise_cached`` reads a run done before back from the pre-training
cache (``sercore.training.pretrain_cache``)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Sequence

import pandas as pd
import torch
from torch import nn

from sercore.core.config import seed_everything
from sercore.core.precision import autocast, check_precision, resolve_precision
from sercore.features.featureset import FeatureSet
from sercore.models.encoders import ProjectionHead
from sercore.models.losses import pairwise_nt_xent
from sercore.training.epochs import run_epochs
from sercore.training.loops import (
    INIT_LOCK,
    batch_indices,
    check_ids,
    default_encoder,
    joint_lengths,
    load_batch,
    normalize_if_needed,
    output_dim,
)
from sercore.training.pretrain_cache import cached_run, files_digest, filled, module_files, run_key, state_tensors

CODE_MODULES = ("sercore.models.encoders", "sercore.models.losses", "sercore.training.loops",
                "sercore.pairwise.pretrain", "sercore.training.epochs", "sercore.features.featureset",
                "sercore.training.pretrain_cache")


@dataclass
class PretrainConfig:
    """Pairwise-CL pre-training (paper: Adam 1e-3, batch 128, ≤100 epochs, early stopping after 30, τ = 0.5)."""

    lr: float = 1e-3
    batch_size: int = 128
    max_epochs: int = 100
    patience: int = 30  # epochs without a lower validation loss before stopping
    temperature: float = 0.5
    max_frames: int | None = None  # cut/pad variable views to this many frames (None: longest in batch)
    seed: int = 0
    weight_decay: float = 0.0
    proj_hidden: int = 256
    proj_dim: int = 128
    intra_view_negatives: bool = True  # SimCLR denominator (see sercore.models.losses)
    bucket_batches: int = 8  # variable views: sort each chunk of 8 shuffled batches by length (0: plain shuffle)
    precision: str = "auto"  # auto: bf16 where the device has fast bf16 kernels, else fp32 (sercore.core.precision)

    def __post_init__(self):
        check_precision(self.precision, "PretrainConfig.precision")


@dataclass
class PretrainResult:
    """Pre-trained view encoders (best validation loss), per-epoch history, the projection heads, and metrics
    (``best_epoch``, ``best_val_loss``, ``epochs_run``, ``steps``, ``precision``, ``precision_note``)."""

    encoders: dict[str, nn.Module]
    history: pd.DataFrame
    heads: dict[str, nn.Module] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


def pretrain_pairwise(features: dict[str, FeatureSet], train_ids: Sequence[str], val_ids: Sequence[str], *,
                      config: PretrainConfig | None = None, device="cpu",
                      encoders: dict[str, nn.Module] | None = None) -> PretrainResult:
    """Pairwise-CL: train one encoder + projection head per view with the mean pairwise NT-Xent.

    ``features`` maps K ≥ 2 view names to FeatureSets that hold every id of ``train_ids`` and ``val_ids``.
    ``encoders`` (optional) gives initial encoders for some views (copied, not changed); the others get
    ``default_encoder``. The epochs (0-based) run in ``sercore.training.epochs.run_epochs``: it stops after
    ``config.patience`` epochs without a lower validation loss and restores the best epoch. Forward passes run in
    ``config.precision`` where the device supports it (else fp32, said in
    ``metrics["precision_note"]``); validation runs in inference mode. Nothing is cached here:
    :func:`pretrain_pairwise_cached` wraps it with the on-disk cache.
    History columns: ``epoch, train_loss, steps`` (optimizer steps so far)``, val_loss, seconds``; ``metrics``:
    ``best_epoch, best_val_loss, epochs_run, steps, precision, precision_note``.
    """
    config = config or PretrainConfig()
    views = list(features)
    if len(views) < 2:
        raise ValueError(f"pretrain_pairwise: needs at least 2 views, got {views}")
    train_ids, val_ids = check_ids("train_ids", train_ids), check_ids("val_ids", val_ids)
    device = torch.device(device)
    encoders = dict(encoders or {})
    model = nn.ModuleDict()
    with INIT_LOCK:
        seed_everything(config.seed)
        for view in views:
            encoder = copy.deepcopy(encoders[view]) if view in encoders else default_encoder(features[view])
            normalize_if_needed(encoder, features[view], train_ids)
            head = ProjectionHead(output_dim(encoder, features[view]), config.proj_hidden, config.proj_dim)
            model[view] = nn.ModuleDict({"encoder": encoder, "head": head})
    model.to(device)
    train_pos = {v: features[v].positions(train_ids) for v in views}
    val_pos = {v: features[v].positions(val_ids) for v in views}
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    used, note = resolve_precision(config.precision, device)
    steps = [0]

    def train_epoch(epoch: int) -> dict:
        loss, n_steps = _pairwise_epoch(model, features, train_pos, config, device, generator, optimizer, used)
        steps[0] += n_steps
        return {"train_loss": loss, "steps": steps[0]}

    def val_loss(epoch: int) -> float:
        return _pairwise_epoch(model, features, val_pos, config, device, None, None, used)[0]

    run = run_epochs(model, max_epochs=config.max_epochs, patience=config.patience, train_epoch=train_epoch,
                     val_loss=val_loss)
    metrics = {"best_epoch": run.best_epoch, "best_val_loss": run.best_val_loss, "epochs_run": run.epochs_run,
               "steps": steps[0], "precision": used, "precision_note": note}
    return PretrainResult({v: model[v]["encoder"] for v in views}, run.history,
                          {v: model[v]["head"] for v in views}, metrics)


def _pairwise_epoch(model, features, positions, config, device, generator, optimizer,
                    precision: str = "fp32") -> tuple[float, int]:
    """One pass over ``positions`` (training when ``optimizer`` is given) → (mean loss per utterance, steps).

    Forward passes run in ``precision`` autocast; the loss is computed in float32."""
    views = list(positions)
    n = len(positions[views[0]])
    lengths = joint_lengths([features[v] for v in views], [positions[v] for v in views])
    total, steps = 0.0, 0
    for idx in batch_indices(n, config.batch_size, generator=generator, min_size=2, lengths=lengths,
                             bucket_batches=config.bucket_batches if optimizer is not None else 0):
        with autocast(precision, device):
            zs = [model[v]["head"](model[v]["encoder"](*load_batch(features[v], positions[v][idx], device,
                                                                    config.max_frames))) for v in views]
        loss = pairwise_nt_xent([z.float() for z in zs], config.temperature,
                                intra_view_negatives=config.intra_view_negatives)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        total += loss.item() * len(idx)
    return total / n, steps


def code_files() -> list:
    """Source files of ``CODE_MODULES``."""
    return module_files(CODE_MODULES)


def code_digest() -> str:
    """Digest of the source code that builds and trains the encoders (read once per process and file list)."""
    return files_digest(tuple(str(p) for p in code_files()))


def pretrain_key(features: dict[str, FeatureSet], train_ids: Sequence, val_ids: Sequence, config,
                 device) -> str | None:
    """Key of a Pairwise-CL pre-training run, or None when a FeatureSet is not from the feature store."""
    return run_key(features, {"train": [str(u) for u in train_ids], "val": [str(u) for u in val_ids]}, config,
                   device, code_digest())


def pretrain_pairwise_cached(features: dict[str, FeatureSet], train_ids: Sequence, val_ids: Sequence, *,
                             config: PretrainConfig | None = None, device="cpu") -> PretrainResult:
    """:func:`sercore.training.pretrain_pairwise`, read back from the cache when this run was done before (else
    trained and stored), so notebooks that need the same fold's encoders train them once. Features not read
    from the feature store are trained every time."""
    config = config or PretrainConfig()
    return cached_run(pretrain_key(features, train_ids, val_ids, config, device),
                      train=lambda: pretrain_pairwise(features, train_ids, val_ids, config=config, device=device),
                      to_tensors=_pairwise_tensors,
                      from_tensors=lambda tensors, record: _pairwise_result(tensors, record, features, config, device))


def _pairwise_tensors(result: PretrainResult) -> tuple[dict, dict]:
    tensors = {}
    for part, modules in (("encoder", result.encoders), ("head", result.heads)):
        for view, module in modules.items():
            tensors.update(state_tensors(f"{part}/{view}/", module))
    record = {"encoders": list(result.encoders), "heads": list(result.heads), "metrics": result.metrics,
              "history": result.history.to_dict(orient="split")}
    return tensors, record


def _pairwise_result(tensors: dict, record: dict, features, config, device) -> PretrainResult:
    with INIT_LOCK, torch.random.fork_rng(devices=[]):  # rebuilding must not move the global RNG
        encoders = {v: filled(default_encoder(features[v]), tensors, f"encoder/{v}/", device)
                    for v in record["encoders"]}
        heads = {v: filled(ProjectionHead(output_dim(encoders[v], features[v]), config.proj_hidden, config.proj_dim),
                           tensors, f"head/{v}/", device) for v in record["heads"]}
    return PretrainResult(encoders, pd.DataFrame(**record["history"]), heads, record.get("metrics") or {})
