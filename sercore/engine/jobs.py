"""The engine's job types: small picklable dataclasses with ``run(features)`` and ``resources()``.

``features`` is what the engine was given for the run (view name → FeatureSet for the training jobs), opened in
the worker. Jobs carry ids, configs and (pre-trained) encoders, never FeatureSets, so they stay small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

METRICS = ("val_uar", "val_wa", "test_uar", "test_wa")
HISTORY = "_val_uar_history"  # key of a fine-tuning row's per-epoch validation UAR; the grids take it out


def _is_cuda(device) -> bool:
    return torch.device(device).type == "cuda"


class Job:
    """Base of every job: one CPU, no GPU."""

    device = "cpu"

    def run(self, features) -> Any:
        raise NotImplementedError

    def resources(self) -> dict:
        """Ray task options: ``num_cpus`` and, on CUDA, ``num_gpus``."""
        return {"num_cpus": 1, "num_gpus": 1} if self.uses_cuda() else {"num_cpus": 1}

    def uses_cuda(self) -> bool:
        return _is_cuda(self.device)

    def cost(self) -> float:
        """Relative cost among the jobs of one run (parallel engines start the costliest first)."""
        return 1.0


@dataclass
class FinetuneJob(Job):
    """One fine-tuning run of a grid → one result row (``row``: the grid columns, e.g. fold, condition, seed;
    then the metrics, ``best_epoch``, ``epochs_run``, ``steps``, ``n_labels`` and, under ``HISTORY``, the
    validation UAR of each epoch).

    ``encoder`` None: the supervised baseline (same encoder from scratch, z-statistics from the fold's
    pre-training pool); else ``finetune`` of a copy of it. ``subset``: positions in ``data.train_ids`` of the
    labelled subset (None: all). On CUDA it asks for ``gpu_fraction`` of a GPU, so several runs share one.
    """

    view: str
    data: Any  # protocols.FoldData
    config: Any  # train.FinetuneConfig
    subset: Sequence[int] | None = None
    encoder: Any = None
    device: str = "cpu"
    row: dict = field(default_factory=dict)
    gpu_fraction: float = 0.25

    def resources(self) -> dict:
        return {"num_cpus": 1, "num_gpus": self.gpu_fraction} if self.uses_cuda() else {"num_cpus": 1}

    def cost(self) -> float:
        """The number of labelled training utterances."""
        return float(len(self.data.train_ids) if self.subset is None else len(self.subset))

    def run(self, features) -> dict:
        from ..train import finetune, supervised_baseline

        fs, data = features[self.view], self.data
        idx = range(len(data.train_ids)) if self.subset is None else self.subset
        train_ids, train_labels = [data.train_ids[i] for i in idx], [data.train_labels[i] for i in idx]
        common = dict(config=self.config, device=self.device, test_ids=data.test_ids, test_labels=data.test_labels)
        if self.encoder is None:
            result = supervised_baseline(fs, train_ids, train_labels, data.val_ids, data.val_labels,
                                         norm_ids=data.pool_train, **common)
        else:
            result = finetune(self.encoder, fs, train_ids, train_labels, data.val_ids, data.val_labels, **common)
        row = dict(self.row, view=self.view)
        row.update({k: result.metrics[k] for k in (*METRICS, "best_epoch", "epochs_run", "steps")})
        row["n_labels"] = len(train_ids)
        row[HISTORY] = result.history["val_uar"].tolist()
        return row


@dataclass
class PretrainJob(Job):
    """Pairwise-CL pre-training of one fold → its ``train.PretrainResult`` (encoders, history, heads, metrics;
    ``views``: a subset of the features; ``pool``: (train, val) ids from the fold's pool, default the whole
    pool)."""

    data: Any  # protocols.FoldData
    config: Any  # train.PretrainConfig
    device: str = "cpu"
    pool: tuple[list, list] | None = None
    views: Sequence[str] | None = None

    def run(self, features) -> dict:
        from ..protocols import pretrain_fold

        chosen = features if self.views is None else {v: features[v] for v in self.views}
        return pretrain_fold(chosen, self.data, self.config, self.device, self.pool, result=True)


@dataclass
class ClusterPretrainJob(Job):
    """Cluster-contrastive pre-training (paper B) of ``view`` with (speaker, cluster) pseudo-labels → encoder."""

    view: str
    variant: str
    config: Any  # clusters.ClusterPretrainConfig
    train_ids: list
    speakers: np.ndarray
    clusters: np.ndarray
    val_ids: list
    val_speakers: np.ndarray
    val_clusters: np.ndarray
    device: str = "cpu"

    def run(self, features):
        from ..clusters.pretrain import pretrain_cluster_contrastive

        return pretrain_cluster_contrastive(features[self.view], self.train_ids, self.speakers, self.clusters,
                                            config=self.config, device=self.device, variant=self.variant,
                                            val_ids=self.val_ids, val_speakers=self.val_speakers,
                                            val_clusters=self.val_clusters).encoder


@dataclass
class ProbeJob(Job):
    """Linear probe on fixed-length features of ``view`` (paper B's speaker probe) → one result row."""

    view: str
    data: Any  # protocols.FoldData
    subset: Sequence[int] | None = None
    seed: int = 0
    row: dict = field(default_factory=dict)

    def run(self, features) -> dict:
        from ..clusters.evaluate import speaker_probe

        data = self.data
        idx = range(len(data.train_ids)) if self.subset is None else self.subset
        train = ([data.train_ids[i] for i in idx], [data.train_labels[i] for i in idx])
        metrics = speaker_probe(features[self.view], train, (data.val_ids, data.val_labels),
                                (data.test_ids, data.test_labels), seed=self.seed)
        return dict(self.row, view=self.view, **metrics, n_labels=len(train[0]))


@dataclass
class ExtractChunkJob(Job):
    """One chunk of feature extraction into ``out_path`` → its row count. ``build()`` makes the view; a worker
    builds it once per ``key`` and reuses it for the following chunks."""

    key: str
    build: Callable
    version: str
    rows: list
    out_path: Any
    kw: dict

    def run(self, features=None) -> int:
        from .. import cache

        return cache._worker_chunk(cache._init_worker(self.key, self.build, self.version), self.rows,
                                   self.out_path, self.kw)


@dataclass
class CallJob(Job):
    """``fn(arg, features)``: for :func:`sercore.protocols.run_jobs` (``fn`` must be importable by name)."""

    fn: Callable
    arg: Any

    def run(self, features):
        return self.fn(self.arg, features)
