"""Pairwise-CL pre-training, fine-tuning with a linear classifier, the supervised baseline and embeddings.

Features are read from ``FeatureSet``s batch by batch (padded to the longest item of the batch; cut or padded to
``max_frames`` only when asked). Every run seeds Python/NumPy/torch from its config and shuffles with its own
``torch.Generator``, so two runs with the same config give the same numbers on the same device.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from sercore.core.config import seed_everything
from sercore.features.featureset import FeatureSet
from sercore.models.losses import pairwise_nt_xent
from sercore.analysis.stats import uar, wa
from sercore.models import available_encoders, build_encoder
from sercore.models.encoders import EncoderClassifier, ProjectionHead
from sercore.views import _REGISTRY
from sercore.core.precision import autocast, check_precision, resolve_precision

# Seeding and building modules use torch's global RNG: threads (the local engine on CUDA) take turns so runs repeat.
INIT_LOCK = threading.RLock()




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
    eval_batch_size: int = 64  # validation/test passes, batched by length: 256 padded 200 utterances to the longest
    bucket_batches: int = 8  # as in PretrainConfig
    precision: str = "auto"  # as in PretrainConfig

    def __post_init__(self):
        check_precision(self.precision, "FinetuneConfig.precision")


@dataclass
class PretrainResult:
    """Pre-trained view encoders (best validation loss), per-epoch history, the projection heads, and metrics
    (``best_epoch``, ``best_val_loss``, ``epochs_run``, ``steps``, ``precision``, ``precision_note``)."""

    encoders: dict[str, nn.Module]
    history: pd.DataFrame
    heads: dict[str, nn.Module] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


@dataclass
class FinetuneResult:
    """Fine-tuned ``EncoderClassifier`` (best validation UAR), per-epoch history, and metrics."""

    model: nn.Module
    history: pd.DataFrame
    metrics: dict
    classes: list = field(default_factory=list)


def encoder_kind(features: FeatureSet) -> str:
    """The registered encoder kind of ``features``: ``meta["encoder"]``, written by the feature cache from the
    view's ``encoder`` attribute (older cache entries: the declared ``encoder`` of ``meta["view"]``)."""
    kind = features.meta.get("encoder")
    if not kind:
        kind = getattr(_REGISTRY.get(features.meta.get("view")), "encoder", None)
    if not kind:
        raise ValueError(f"FeatureSet of view {features.meta.get('view', '?')!r} names no encoder kind: give it "
                         f"meta={{'encoder': kind}} with a kind of {available_encoders()}")
    return kind


def default_encoder(features: FeatureSet, *, seed: int | None = None, **cfg) -> nn.Module:
    """A freshly initialised encoder of ``features``' kind (``encoder_kind``), seeded when ``seed`` is given."""
    if seed is not None:
        torch.manual_seed(seed)
    return build_encoder(encoder_kind(features), features.feature_shape, **cfg)


def normalize_if_needed(encoder: nn.Module, features: FeatureSet, ids: Sequence[str]) -> None:
    """Give an MLP encoder without normalisation the z-statistics of ``ids`` (training fold); others are left alone."""
    if not hasattr(encoder, "set_normalization") or bool(getattr(encoder, "normalized", False)):
        return
    x = features.numpy_fixed(features.positions(list(ids))).astype(np.float64)
    encoder.set_normalization(x.mean(0), x.std(0))


def encode_labels(train_labels: Sequence, *others: Sequence | None, classes: Sequence | None = None,
                  names: Sequence[str] = ("train", "val", "test")):
    """Map labels to ``0..C-1``. Classes are the sorted training labels unless ``classes`` is given.

    Returns ``(classes, [encoded train, encoded others...])`` (``None`` stays ``None``); a label of ``others`` that
    is not a class raises ``ValueError`` naming the set (``names``) and the label.
    """
    classes = sorted(set(map(str, train_labels))) if classes is None else [str(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    out = []
    names = list(names) + [f"set {i}" for i in range(len(names), len(others) + 1)]
    for name, labels in zip(names, [train_labels, *others]):
        if labels is None:
            out.append(None)
            continue
        unknown = sorted(set(map(str, labels)) - set(index))
        if unknown:
            raise ValueError(f"{name} labels {unknown} are not among the classes {classes}")
        out.append(np.array([index[str(v)] for v in labels], dtype=np.int64))
    return classes, out


def batch_indices(n: int, batch_size: int, *, generator: torch.Generator | None = None, min_size: int = 1,
                  lengths: np.ndarray | None = None, bucket_batches: int = 0) -> list[np.ndarray]:
    """Indices ``0..n-1`` in batches, shuffled with ``generator`` (else in order).

    With ``lengths`` and ``bucket_batches`` > 0, each run of ``bucket_batches × batch_size`` shuffled indices is
    sorted by length before it is cut into batches and the batches are shuffled: batches hold similar lengths
    (little padding) but change membership every epoch. A last batch under ``min_size`` joins the one before.
    """
    order = torch.randperm(n, generator=generator).numpy() if generator is not None else np.arange(n)
    if lengths is not None and bucket_batches > 0:
        span = batch_size * bucket_batches
        runs = np.split(order, range(span, n, span))
        order = np.concatenate([run[np.argsort(lengths[run], kind="stable")] for run in runs])
    chunks = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if len(chunks) > 1 and len(chunks[-1]) < min_size:
        chunks[-2:] = [np.concatenate(chunks[-2:])]
    if lengths is not None and bucket_batches > 0 and generator is not None:
        chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]
    return chunks


def load_batch(features: FeatureSet, positions: np.ndarray, device, max_frames: int | None = None):
    """``features.batch(positions)`` moved to ``device`` → ``(x, lengths or None)``."""
    x, lengths = features.batch(positions, max_len=max_frames)
    return x.to(device), (lengths.to(device) if lengths is not None else None)


def _outputs(module: nn.Module, features: FeatureSet, positions: np.ndarray, device, batch_size: int,
             max_frames: int | None, precision: str = "fp32") -> torch.Tensor:
    """``module(x, lengths)`` (float32) for all ``positions`` in eval and inference mode, batched by similar length,
    in input order; forward passes in ``precision`` (the precision actually used, see ``resolve_precision``)."""
    was_training = module.training
    module.eval()
    order = np.argsort(features.lengths[positions], kind="stable") if features.variable else np.arange(len(positions))
    with torch.inference_mode(), autocast(precision, device):
        parts = [module(*load_batch(features, positions[order[idx]], device, max_frames)).float().cpu()
                 for idx in batch_indices(len(positions), batch_size)]
    module.train(was_training)
    out = torch.cat(parts)
    result = torch.empty_like(out)
    result[torch.as_tensor(order)] = out
    return result


def embed(encoder: nn.Module, features: FeatureSet, ids: Sequence[str], device="cpu", *, batch_size: int = 64,
          max_frames: int | None = None, precision: str = "fp32") -> np.ndarray:
    """Representations ``[N, out_dim]`` (numpy float32) of ``ids`` from ``encoder`` in eval mode.

    ``precision="bf16"`` runs the forward passes in bfloat16 autocast where the device supports it."""
    encoder.to(device)
    used, _ = resolve_precision(precision, device)
    return _outputs(encoder, features, features.positions(list(ids)), device, batch_size, max_frames, used).numpy()


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """``(UAR, WA)`` of ``sercore.analysis.stats``."""
    return uar(y_true, y_pred), wa(y_true, y_pred)


def _check_ids(name: str, ids, labels=None) -> list[str]:
    ids = [str(u) for u in ids]
    if not ids:
        raise ValueError(f"{name}: empty list of utterance ids")
    if labels is not None and len(labels) != len(ids):
        raise ValueError(f"{name}: {len(ids)} ids but {len(labels)} labels")
    return ids


def _state(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def pretrain_pairwise(features: dict[str, FeatureSet], train_ids: Sequence[str], val_ids: Sequence[str], *,
                      config: PretrainConfig | None = None, device="cpu",
                      encoders: dict[str, nn.Module] | None = None) -> PretrainResult:
    """Pairwise-CL: train one encoder + projection head per view with the mean pairwise NT-Xent.

    ``features`` maps K ≥ 2 view names to FeatureSets that hold every id of ``train_ids`` and ``val_ids``.
    ``encoders`` (optional) gives initial encoders for some views (copied, not changed); the others get
    ``default_encoder``. Stops after ``config.patience`` epochs without a lower validation loss and restores the
    best epoch. Forward passes run in ``config.precision`` where the device supports it (else fp32, said in
    ``metrics["precision_note"]``); validation runs in inference mode. Nothing is cached here:
    :func:`sercore.training.pretrain_cache.pretrain_pairwise_cached` wraps it with the on-disk cache.
    History columns: ``epoch, train_loss, val_loss, seconds, steps`` (optimizer steps so far); ``metrics``:
    ``best_epoch, best_val_loss, epochs_run, steps, precision, precision_note``.
    """
    config = config or PretrainConfig()
    views = list(features)
    if len(views) < 2:
        raise ValueError(f"pretrain_pairwise: needs at least 2 views, got {views}")
    train_ids, val_ids = _check_ids("train_ids", train_ids), _check_ids("val_ids", val_ids)
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
    best_loss, best_state, best_epoch, wait, steps, rows = float("inf"), _state(model), 0, 0, 0, []
    for epoch in range(1, config.max_epochs + 1):
        start = time.perf_counter()
        model.train()
        train_loss, n_steps = _pairwise_epoch(model, features, train_pos, config, device, generator, optimizer, used)
        steps += n_steps
        model.eval()
        with torch.inference_mode():
            val_loss, _ = _pairwise_epoch(model, features, val_pos, config, device, None, None, used)
        rows.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                     "seconds": time.perf_counter() - start, "steps": steps})
        if val_loss < best_loss:
            best_loss, best_state, best_epoch, wait = val_loss, _state(model), epoch, 0
        else:
            wait += 1
            if wait >= config.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    metrics = {"best_epoch": best_epoch, "best_val_loss": best_loss, "epochs_run": len(rows), "steps": steps,
               "precision": used, "precision_note": note}
    return PretrainResult({v: model[v]["encoder"] for v in views}, pd.DataFrame(rows),
                          {v: model[v]["head"] for v in views}, metrics)


def _pairwise_epoch(model, features, positions, config, device, generator, optimizer,
                    precision: str = "fp32") -> tuple[float, int]:
    """One pass over ``positions`` (training when ``optimizer`` is given) → (mean loss per utterance, steps).

    Forward passes run in ``precision`` autocast; the loss is computed in float32."""
    views = list(positions)
    n = len(positions[views[0]])
    lengths = _joint_lengths([features[v] for v in views], [positions[v] for v in views])
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


def _joint_lengths(features: Sequence[FeatureSet], positions: Sequence[np.ndarray]) -> np.ndarray | None:
    """Sum of the frame counts of the variable views (all grow with the duration), or None without one."""
    lengths = [fs.lengths[pos] for fs, pos in zip(features, positions) if fs.variable]
    return np.sum(lengths, axis=0) if lengths else None


@torch.no_grad()
def output_dim(encoder: nn.Module, features: FeatureSet) -> int:
    """``encoder.out_dim`` when it has one, else the width of its output on two utterances."""
    if getattr(encoder, "out_dim", None):
        return int(encoder.out_dim)
    device = next(encoder.parameters()).device
    return int(_outputs(encoder, features, np.arange(min(2, len(features))), device, 2, None).shape[1])


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
    train_ids = _check_ids("train_ids", train_ids, train_labels)
    val_ids = _check_ids("val_ids", val_ids, val_labels)
    test_ids = _check_ids("test_ids", test_ids, test_labels) if test_ids is not None else None
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
    test_uar, test_wa = float("nan"), float("nan")
    if test_ids is not None:
        logits = _outputs(module, source, source.positions(test_ids), device, config.eval_batch_size, config.max_frames,
                          used)
        test_uar, test_wa = scores(y_test, logits.argmax(1).numpy())
    best = history.loc[int(history["val_uar"].idxmax())]  # the restored epoch: its validation scores are known
    metrics = {"val_uar": float(best["val_uar"]), "val_wa": float(best["val_wa"]), "test_uar": test_uar,
               "test_wa": test_wa, "best_epoch": int(best["epoch"]), "epochs_run": len(history),
               "steps": int(history["steps"].iloc[-1]), "precision": used, "precision_note": note,
               "n_train": len(train_ids)}
    return FinetuneResult(model, history, metrics, classes)


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
    lengths = _joint_lengths([features], [train_pos])
    best_uar, best_state, wait, steps, rows = -1.0, _state(module), 0, 0, []
    for epoch in range(1, config.max_epochs + 1):
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
        pred = _outputs(module, features, val_pos, device, config.eval_batch_size, config.max_frames,
                        precision).argmax(1)
        val_uar, val_wa = scores(y_val, pred.numpy())
        rows.append({"epoch": epoch, "train_loss": total / len(train_pos), "val_uar": val_uar, "val_wa": val_wa,
                     "lr": optimizer.param_groups[0]["lr"], "steps": steps})
        scheduler.step(val_uar)
        if val_uar > best_uar:
            best_uar, best_state, wait = val_uar, _state(module), 0
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
