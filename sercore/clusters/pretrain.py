"""Cluster-contrastive pre-training (paper B): contrastive, multi-task and adversarial variants.

The encoder (any kind of ``sercore.models.encoders``) maps features to ``h: [B, out_dim]``; a projection head
maps ``h`` to ``z`` for ``cluster_contrastive_loss``. The multi-task variant adds ``λ · CE`` of a linear speaker
classifier on ``h``; the adversarial variant puts a gradient-reversal layer between ``h`` and that classifier
(DANN): the classifier learns speakers while the encoder is pushed to hide them, with reversal strength ``λ``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from sercore.clusters.loss import cluster_contrastive_loss
from sercore.clusters.sampler import SpeakerClusterBatchSampler
from sercore.core.config import seed_everything
from sercore.core.precision import autocast, check_precision, resolve_precision
from sercore.engine import Job
from sercore.features.featureset import FeatureSet
from sercore.models import build_encoder as build_kind
from sercore.models.encoders import ProjectionHead
from sercore.training import encoder_kind, load_batch, normalize_if_needed
from sercore.training.epochs import run_epochs
from sercore.training.pretrain_cache import cached_run, filled, modules_digest, run_key, state_tensors

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
    the kind the features declare (``sercore.training.encoder_kind``). The names shared with
    ``sercore.training.PretrainConfig`` (``max_epochs``, ``patience``, ``proj_hidden``, ``proj_dim``, ``lr``,
    ``weight_decay``, ``max_frames``, ``seed``, ``precision``) mean the same there.
    """

    encoder_kind: str | None = None
    encoder_params: dict = field(default_factory=dict)
    out_dim: int = 128
    proj_hidden: int = 256
    proj_dim: int = 128
    temperature: float = 0.1
    negatives: str = "speaker"
    n_speakers: int = 8
    n_clusters: int = 4
    n_utterances: int = 4
    batches_per_epoch: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_epochs: int = 100
    patience: int = 30
    speaker_lambda: float = 1.0
    schedule: str = "constant"
    max_frames: int | None = None
    seed: int = 0
    precision: str = "auto"  # auto: bf16 where the device has fast bf16 kernels, else fp32 (sercore.core.precision)

    def __post_init__(self):
        check_precision(self.precision, "ClusterPretrainConfig.precision")


@dataclass
class ClusterPretrainResult:
    """Pre-trained ``encoder`` (best validation epoch, 0-based), its projection head, speaker head, per-epoch
    history and ``metrics`` (``best_epoch``, ``best_val_loss``, ``epochs_run``, ``precision``, ``precision_note``)."""

    encoder: nn.Module
    projection: nn.Module
    speaker_head: nn.Module | None
    history: pd.DataFrame
    best_epoch: int
    metrics: dict = field(default_factory=dict)


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
    projection = ProjectionHead(out_dim, hidden=config.proj_hidden, out=config.proj_dim).to(device)
    head = None if variant == "contrastive" else SpeakerHead(out_dim, len(train.names),
                                                             adversarial=variant == "adversarial").to(device)
    modules = [m for m in (encoder, projection, head) if m is not None]
    optimizer = torch.optim.Adam([p for m in modules for p in m.parameters()], lr=config.lr,
                                 weight_decay=config.weight_decay)
    used, note = resolve_precision(config.precision, device)
    trainer = _Trainer(features, config, device, encoder, projection, head, variant, used)
    return trainer.fit(train, val, modules, optimizer, note)


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
    """Paper B's parts of the shared epoch loop (``sercore.training.epochs.run_epochs``): the speaker-cluster
    sampler, the cluster-contrastive loss, the speaker head and its λ schedule."""

    def __init__(self, features, config, device, encoder, projection, head, variant, precision: str):
        self.features, self.config, self.device = features, config, device
        self.encoder, self.projection, self.head, self.variant = encoder, projection, head, variant
        self.precision = precision

    def fit(self, train: _Split, val: _Split | None, modules, optimizer, note: str) -> ClusterPretrainResult:
        cfg = self.config

        def train_epoch(epoch: int) -> dict:
            lambd = lambda_at(epoch / max(cfg.max_epochs - 1, 1), cfg.speaker_lambda, cfg.schedule)
            train.sampler.set_epoch(epoch)
            return {"lambda": lambd, **self._train_epoch(train, optimizer, lambd)}

        run = run_epochs(nn.ModuleList(modules), max_epochs=cfg.max_epochs, patience=cfg.patience,
                         train_epoch=train_epoch, val_loss=None if val is None else lambda epoch: self._val_loss(val))
        metrics = {"best_epoch": run.best_epoch, "best_val_loss": run.best_val_loss, "epochs_run": run.epochs_run,
                   "precision": self.precision, "precision_note": note}
        return ClusterPretrainResult(self.encoder, self.projection, self.head, run.history, run.best_epoch, metrics)

    def _losses(self, split: _Split, batch, lambd: float, with_head: bool = True) -> dict[str, torch.Tensor]:
        """The batch's losses; forward passes in the run's precision, losses in float32."""
        with autocast(self.precision, self.device):
            h = self.encoder(*load_batch(self.features, split.pos[batch], self.device, self.config.max_frames))
            z = self.projection(h)
            logits = self.head(h, lambd) if self.head is not None and with_head else None
        speaker = split.speaker[batch].to(self.device)
        con = cluster_contrastive_loss(z.float(), speaker, split.cluster[batch].to(self.device),
                                       temperature=self.config.temperature, negatives=self.config.negatives)
        out = {"contrastive": con, "total": con}
        if logits is not None:
            logits = logits.float()
            ce = F.cross_entropy(logits, speaker)
            out["total"] = con + (ce if self.variant == "adversarial" else lambd * ce)
            out["speaker_ce"], out["speaker_acc"] = ce, (logits.argmax(1) == speaker).float().mean()
        return out

    def _train_epoch(self, train: _Split, optimizer, lambd: float) -> dict[str, float]:
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

    def _val_loss(self, val: _Split) -> float:
        # validation speakers are not the head's classes (splits are speaker-disjoint): contrastive loss only
        losses = [float(self._losses(val, batch, 0.0, with_head=False)["contrastive"]) for batch in val.sampler]
        return float(np.mean(losses))


CODE_MODULES = ("sercore.clusters.pretrain", "sercore.clusters.loss", "sercore.clusters.sampler",
                "sercore.training.epochs", "sercore.training.loops", "sercore.models.encoders",
                "sercore.features.featureset", "sercore.training.pretrain_cache")


def pretrain_cluster_contrastive_cached(features: FeatureSet, ids, speakers, clusters, *,
                                        config: ClusterPretrainConfig | None = None, device="cpu",
                                        variant: str = "contrastive", val_ids=None, val_speakers=None,
                                        val_clusters=None) -> ClusterPretrainResult:
    """:func:`pretrain_cluster_contrastive`, read back from the pre-training cache when this run was done before
    (else trained and stored under its lock, ``sercore.training.pretrain_cache.cached_run``): the key holds the
    stored features' identity, the ids with their pseudo-labels, the variant, the config, the device, the
    precision and this code. A run killed before its entry was written trains again, to the same weights."""
    config = config or ClusterPretrainConfig()
    labels = lambda values: None if values is None else [str(v) for v in values]  # noqa: E731
    record = {"variant": variant, "train": labels(ids), "speakers": labels(speakers), "clusters": labels(clusters),
              "val": labels(val_ids), "val_speakers": labels(val_speakers), "val_clusters": labels(val_clusters)}
    key = run_key({"features": features}, record, config, device, modules_digest(CODE_MODULES))
    return cached_run(key, train=lambda: pretrain_cluster_contrastive(
        features, ids, speakers, clusters, config=config, device=device, variant=variant, val_ids=val_ids,
        val_speakers=val_speakers, val_clusters=val_clusters), to_tensors=_tensors,
        from_tensors=lambda tensors, rec: _rebuilt(tensors, rec, features, ids, config, device, variant))


def _tensors(result: ClusterPretrainResult) -> tuple[dict, dict]:
    tensors = {**state_tensors("encoder/", result.encoder), **state_tensors("projection/", result.projection)}
    record = {"best_epoch": result.best_epoch, "metrics": result.metrics,
              "history": result.history.to_dict(orient="split"), "n_speakers": None}
    if result.speaker_head is not None:
        tensors.update(state_tensors("speaker_head/", result.speaker_head))
        record["n_speakers"] = int(result.speaker_head.linear.out_features)
    return tensors, record


def _rebuilt(tensors: dict, record: dict, features, ids, config, device, variant) -> ClusterPretrainResult:
    """The stored result's modules rebuilt from the config and filled with the stored tensors."""
    with torch.random.fork_rng(devices=[]):  # rebuilding must not move the global RNG
        encoder = filled(build_encoder(features, config), tensors, "encoder/", device)
        out_dim = _output_dim(encoder, features, features.positions([str(u) for u in list(ids)[:2]]), config,
                              device)
        projection = filled(ProjectionHead(out_dim, hidden=config.proj_hidden, out=config.proj_dim), tensors,
                            "projection/", device)
        head = None
        if record["n_speakers"] is not None:
            head = filled(SpeakerHead(out_dim, record["n_speakers"], adversarial=variant == "adversarial"), tensors,
                          "speaker_head/", device)
    return ClusterPretrainResult(encoder, projection, head, pd.DataFrame(**record["history"]), record["best_epoch"],
                                 record.get("metrics") or {})


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
        return pretrain_cluster_contrastive_cached(features[self.view], self.train_ids, self.speakers, self.clusters,
                                                   config=self.config, device=self.device, variant=self.variant,
                                                   val_ids=self.val_ids, val_speakers=self.val_speakers,
                                                   val_clusters=self.val_clusters).encoder
