"""What pre-training and fine-tuning share: building and normalising encoders, labels, length-bucketed batches
read from ``FeatureSet``s (padded to the longest item of the batch; cut or padded to ``max_frames`` only when
asked), embeddings and scores.

Every run seeds Python/NumPy/torch from its config and shuffles with its own ``torch.Generator``, so two runs with
the same config give the same numbers on the same device.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
import torch
from torch import nn

from sercore.analysis.stats import uar, wa
from sercore.core.precision import autocast, resolve_precision
from sercore.features.featureset import FeatureSet
from sercore.models import available_encoders, build_encoder
from sercore.views import available_views, view_class

# Seeding and building modules use torch's global RNG: threads (the local engine on CUDA) take turns so runs repeat.
INIT_LOCK = threading.RLock()




def encoder_kind(features: FeatureSet) -> str:
    """The registered encoder kind of ``features``: ``meta["encoder"]``, written by the feature store from the
    view's ``encoder`` attribute (else the declared ``encoder`` of the view ``meta["view"]``)."""
    kind = features.meta.get("encoder")
    if not kind:
        view = features.meta.get("view")
        kind = getattr(view_class(view), "encoder", None) if view in available_views() else None
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


def batched_outputs(module: nn.Module, features: FeatureSet, positions: np.ndarray, device, batch_size: int,
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
    positions = features.positions(list(ids))
    return batched_outputs(encoder, features, positions, device, batch_size, max_frames, used).numpy()


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """``(UAR, WA)`` of ``sercore.analysis.stats``."""
    return uar(y_true, y_pred), wa(y_true, y_pred)


def check_ids(name: str, ids, labels=None) -> list[str]:
    """``ids`` as strings; a ``ValueError`` naming ``name`` when they are empty or differ from ``labels`` in length."""
    ids = [str(u) for u in ids]
    if not ids:
        raise ValueError(f"{name}: empty list of utterance ids")
    if labels is not None and len(labels) != len(ids):
        raise ValueError(f"{name}: {len(ids)} ids but {len(labels)} labels")
    return ids


def state_copy(module: nn.Module) -> dict:
    """A copy of ``module``'s state dict (the weights of the best epoch so far)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def joint_lengths(features: Sequence[FeatureSet], positions: Sequence[np.ndarray]) -> np.ndarray | None:
    """Sum of the frame counts of the variable views (all grow with the duration), or None without one."""
    lengths = [fs.lengths[pos] for fs, pos in zip(features, positions) if fs.variable]
    return np.sum(lengths, axis=0) if lengths else None


@torch.no_grad()
def output_dim(encoder: nn.Module, features: FeatureSet) -> int:
    """``encoder.out_dim`` when it has one, else the width of its output on two utterances."""
    if getattr(encoder, "out_dim", None):
        return int(encoder.out_dim)
    device = next(encoder.parameters()).device
    return int(batched_outputs(encoder, features, np.arange(min(2, len(features))), device, 2, None).shape[1])
