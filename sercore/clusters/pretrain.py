"""Cluster-contrastive pre-training (paper B): contrastive, multi-task and adversarial variants.

The encoder (any kind of ``sercore.models.encoders``) maps features to ``h: [B, out_dim]``; a projection head
maps ``h`` to ``z`` for ``cluster_contrastive_loss``. The multi-task variant adds ``λ · CE`` of a linear speaker
classifier on ``h``; the adversarial variant puts a gradient-reversal layer between ``h`` and that classifier
(DANN): the classifier learns speakers while the encoder is pushed to hide them, with reversal strength ``λ``.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from sercore.core.config import seed_everything
from sercore.engine import Job
from sercore.features.featureset import FeatureSet
from sercore.models import build_encoder as build_kind
from sercore.models.encoders import ProjectionHead
from sercore.training import encoder_kind, load_batch, normalize_if_needed
from sercore.clusters.loss import cluster_contrastive_loss
from sercore.clusters.sampler import SpeakerClusterBatchSampler

VARIANTS = ("contrastive", "multitask", "adversarial")
SCHEDULES = ("constant", "dann")


class GradientReversal(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``-lambd`` backward (Ganin & Lempitsky, 2015)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.lambd * grad, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    """``x`` unchanged, with its gradient reversed and scaled by ``lambd``."""
    return GradientReversal.apply(x, lambd)


class SpeakerHead(nn.Module):
    """Linear speaker classifier on encoder outputs ``h: [B, in_dim]`` → logits ``[B, n_speakers]``.

    With ``adversarial=True`` the input passes a gradient-reversal layer of strength ``lambd`` first.
    """

    def __init__(self, in_dim: int, n_speakers: int, *, adversarial: bool = False):
        super().__init__()
        self.adversarial = adversarial
        self.linear = nn.Linear(in_dim, n_speakers)

    def forward(self, h: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
        return self.linear(grad_reverse(h, lambd) if self.adversarial else h)


def lambda_at(progress: float, lambd: float, schedule: str = "constant") -> float:
    """λ at training progress ``progress ∈ [0, 1]``: constant, or the DANN ramp ``λ·(2/(1+exp(-10p)) - 1)``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if schedule == "constant":
        return float(lambd)
    return float(lambd * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0))


@dataclass
class ClusterPretrainConfig:
    """Hyper-parameters of cluster-contrastive pre-training (defaults follow Pairwise-CL where paper B is silent).

    ``speaker_lambda`` is λ: the weight of the speaker cross-entropy (multitask) or the gradient-reversal
    strength (adversarial; the classifier itself trains on the unweighted cross-entropy, as in DANN);
    ``schedule`` ramps it over epochs. ``encoder_kind`` (a registered kind, ``sercore.models``) None uses
    the kind the features declare (``sercore.training.encoder_kind``).
    """

    encoder_kind: str | None = None
    encoder_params: dict = field(default_factory=dict)
    out_dim: int = 128
    proj_hidden: int = 256
    proj_out: int = 128
    temperature: float = 0.1
    negatives: str = "speaker"
    n_speakers: int = 8
    n_clusters: int = 4
    n_utterances: int = 4
    batches_per_epoch: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 100
    patience: int = 30
    speaker_lambda: float = 1.0
    schedule: str = "constant"
    max_frames: int | None = None
    seed: int = 0


@dataclass
class ClusterPretrainResult:
    """Pre-trained ``encoder`` (best validation epoch), its projection head, speaker head and per-epoch history."""

    encoder: nn.Module
    projection: nn.Module
    speaker_head: nn.Module | None
    history: pd.DataFrame
    best_epoch: int


def build_encoder(features: FeatureSet, config: ClusterPretrainConfig) -> nn.Module:
    """A fresh encoder of ``config.encoder_kind`` (or ``sercore.training.encoder_kind``) for ``features``."""
    kind = config.encoder_kind or encoder_kind(features)
    return build_kind(kind, features.feature_shape, out_dim=config.out_dim, **config.encoder_params)


def _check_labels(ids, speakers, clusters, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids, speakers, clusters = np.asarray(ids).astype(str), np.asarray(speakers).astype(str), np.asarray(clusters)
    if not (len(ids) == len(speakers) == len(clusters)):
        raise ValueError(f"{where}: ids, speakers and clusters differ in length "
                         f"({len(ids)}, {len(speakers)}, {len(clusters)})")
    return ids, speakers, clusters


class _Split:
    """Positions, integer speaker codes, clusters and a batch sampler for one split."""

    def __init__(self, features, ids, speakers, clusters, config, seed, where):
        ids, speakers, clusters = _check_labels(ids, speakers, clusters, where)
        self.pos = features.positions(list(ids))
        self.names, codes = np.unique(speakers, return_inverse=True)
        self.speaker = torch.as_tensor(codes, dtype=torch.long)
        self.cluster = torch.as_tensor(np.unique(clusters, return_inverse=True)[1], dtype=torch.long)
        self.sampler = SpeakerClusterBatchSampler(speakers, clusters, n_speakers=config.n_speakers,
                                                  n_clusters=config.n_clusters, n_utterances=config.n_utterances,
                                                  seed=seed, batches_per_epoch=config.batches_per_epoch)


def pretrain_cluster_contrastive(features: FeatureSet, ids, speakers, clusters, *,
                                 config: ClusterPretrainConfig | None = None, device="cpu",
                                 variant: str = "contrastive", encoder: nn.Module | None = None,
                                 val_ids=None, val_speakers=None, val_clusters=None) -> ClusterPretrainResult:
    """Pre-train an encoder on ``features`` of ``ids`` with (speaker, cluster) pseudo-labels.

    ``speakers``/``clusters`` align with ``ids`` (see ``pseudo_labels``). ``variant``: ``contrastive``,
    ``multitask`` or ``adversarial``. ``encoder``: trained in place (else built from ``config``). With
    ``val_*`` given, the contrastive loss on fixed validation batches drives early stopping (``patience``
    epochs) and the best epoch's weights are returned; without them every epoch is run and the last kept.
    """
    config = config or ClusterPretrainConfig()
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    lambda_at(0.0, config.speaker_lambda, config.schedule)  # validates the schedule name early
    seed_everything(config.seed)
    train = _Split(features, ids, speakers, clusters, config, config.seed, "pretrain_cluster_contrastive (train)")
    val = None
    if val_ids is not None:
        val = _Split(features, val_ids, val_speakers, val_clusters, config, config.seed + 1,
                     "pretrain_cluster_contrastive (val)")
    encoder = encoder if encoder is not None else build_encoder(features, config)
    normalize_if_needed(encoder, features, features.ids[train.pos])
    encoder.to(device)
    out_dim = _output_dim(encoder, features, train.pos, config, device)
    projection = ProjectionHead(out_dim, hidden=config.proj_hidden, out=config.proj_out).to(device)
    head = None if variant == "contrastive" else SpeakerHead(out_dim, len(train.names),
                                                             adversarial=variant == "adversarial").to(device)
    modules = [m for m in (encoder, projection, head) if m is not None]
    optimizer = torch.optim.Adam([p for m in modules for p in m.parameters()], lr=config.lr,
                                 weight_decay=config.weight_decay)
    trainer = _Trainer(features, config, device, encoder, projection, head, variant)
    return trainer.fit(train, val, modules, optimizer)


@torch.no_grad()
def _output_dim(encoder, features, pos, config, device) -> int:
    """``encoder.out_dim`` when it has one, else the width of its output on two utterances."""
    if getattr(encoder, "out_dim", None):
        return int(encoder.out_dim)
    was_training = encoder.training
    encoder.eval()
    h = encoder(*load_batch(features, pos[:2], device, config.max_frames))
    encoder.train(was_training)
    if h.dim() != 2:
        raise ValueError(f"encoder must return [B, D] embeddings, got shape {tuple(h.shape)}")
    return int(h.shape[1])


class _Trainer:
    """The epoch loop: one optimisation pass, one validation pass, early stopping on validation loss."""

    def __init__(self, features, config, device, encoder, projection, head, variant):
        self.features, self.config, self.device = features, config, device
        self.encoder, self.projection, self.head, self.variant = encoder, projection, head, variant

    def fit(self, train: _Split, val: _Split | None, modules, optimizer) -> ClusterPretrainResult:
        cfg, rows, best, best_state, waited = self.config, [], math.inf, None, 0
        for epoch in range(cfg.epochs):
            start = time.perf_counter()
            lambd = lambda_at(epoch / max(cfg.epochs - 1, 1), cfg.speaker_lambda, cfg.schedule)
            train.sampler.set_epoch(epoch)
            row = {"epoch": epoch, "lambda": lambd, **self._train_epoch(train, modules, optimizer, lambd)}
            row["val_loss"] = self._val_loss(val, modules) if val is not None else float("nan")
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            if val is None:
                continue
            if row["val_loss"] < best:
                best, best_epoch, waited = row["val_loss"], epoch, 0
                best_state = [copy.deepcopy(m.state_dict()) for m in modules]
            else:
                waited += 1
                if waited >= cfg.patience:
                    break
        if val is None:
            best_epoch = len(rows) - 1
        elif best_state is None:
            raise FloatingPointError("pretrain_cluster_contrastive: the validation loss was NaN in every epoch")
        else:
            for m, state in zip(modules, best_state):
                m.load_state_dict(state)
        for m in modules:
            m.eval()
        return ClusterPretrainResult(self.encoder, self.projection, self.head, pd.DataFrame(rows), best_epoch)

    def _losses(self, split: _Split, batch, lambd: float, with_head: bool = True) -> dict[str, torch.Tensor]:
        h = self.encoder(*load_batch(self.features, split.pos[batch], self.device, self.config.max_frames))
        speaker = split.speaker[batch].to(self.device)
        con = cluster_contrastive_loss(self.projection(h), speaker, split.cluster[batch].to(self.device),
                                       temperature=self.config.temperature, negatives=self.config.negatives)
        out = {"contrastive": con, "total": con}
        if self.head is not None and with_head:
            logits = self.head(h, lambd)
            ce = F.cross_entropy(logits, speaker)
            out["total"] = con + (ce if self.variant == "adversarial" else lambd * ce)
            out["speaker_ce"], out["speaker_acc"] = ce, (logits.argmax(1) == speaker).float().mean()
        return out

    def _train_epoch(self, train: _Split, modules, optimizer, lambd: float) -> dict[str, float]:
        for m in modules:
            m.train()
        sums, n = {}, 0
        for batch in train.sampler:
            losses = self._losses(train, batch, lambd)
            optimizer.zero_grad()
            losses["total"].backward()
            optimizer.step()
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            n += 1
        means = {f"train_{k if k != 'total' else 'loss'}": v / n for k, v in sums.items()}
        return {"train_speaker_ce": float("nan"), "train_speaker_acc": float("nan"), **means}

    @torch.no_grad()
    def _val_loss(self, val: _Split, modules) -> float:
        for m in modules:
            m.eval()
        # validation speakers are not the head's classes (splits are speaker-disjoint): contrastive loss only
        losses = [float(self._losses(val, batch, 0.0, with_head=False)["contrastive"]) for batch in val.sampler]
        return float(np.mean(losses))


@dataclass
class ClusterPretrainJob(Job):
    """Cluster-contrastive pre-training (paper B) of ``view`` with (speaker, cluster) pseudo-labels → encoder."""

    view: str
    variant: str
    config: Any  # ClusterPretrainConfig
    train_ids: list
    speakers: np.ndarray
    clusters: np.ndarray
    val_ids: list
    val_speakers: np.ndarray
    val_clusters: np.ndarray
    device: str = "cpu"

    def run(self, features):
        return pretrain_cluster_contrastive(features[self.view], self.train_ids, self.speakers, self.clusters,
                                            config=self.config, device=self.device, variant=self.variant,
                                            val_ids=self.val_ids, val_speakers=self.val_speakers,
                                            val_clusters=self.val_clusters).encoder
