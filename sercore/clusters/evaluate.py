"""Evaluation of cluster-contrastive pre-training (paper B) against its baselines, on paper A's parts.

Folds, labelled subsets, the fine-tuning job, condition names and the result table are the shared ones of
:mod:`sercore.training` (``folds``, ``jobs``, ``grid``); the Pairwise-CL baseline is :mod:`sercore.pairwise`'s. Per
fold: pre-train on the fold's pre-training pool (the manifest's utterances of its training groups; validation
groups for early stopping; never a test speaker — checked by ``fold_data``), then fine-tune on a fraction of the
labelled task's training utterances and score validation and test. Pre-training runs once per fold and variant;
repetition r redraws the labelled subset and the fine-tuning seed (``config.finetune.seed + r``). Every
pre-training and every run is a job of the config's engine.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sercore.clusters.pretrain import VARIANTS, ClusterPretrainConfig, ClusterPretrainJob
from sercore.clusters.sampler import pseudo_labels
from sercore.data.splits import assert_no_leakage
from sercore.engine import Job
from sercore.features.featureset import FeatureSet
from sercore.pairwise import PRETRAINED, PretrainJob
from sercore.pairwise.pretrain import PretrainConfig, PretrainResult
from sercore.training import scores
from sercore.training.folds import FoldData, sparse_subset
from sercore.training.grid import RESULT_COLUMNS, SUPERVISED, ExperimentData, GridConfig, result_table, run_rows
from sercore.training.jobs import FinetuneJob

GRID_COLUMNS = ["fraction"]
COLUMNS = RESULT_COLUMNS + GRID_COLUMNS  # then best_epoch, n_labels, node
BASELINES = (SUPERVISED, "speaker_probe", "wav2vec2_frozen", PRETRAINED)
PROBE_C = (0.01, 0.1, 1.0, 10.0)


def speaker_probe(features: FeatureSet, train, val, test, *, seed: int = 0) -> dict[str, float]:
    """Linear probe (standardised logistic regression, C picked on validation UAR) on raw speaker embeddings.

    ``train``, ``val``, ``test``: ``(ids, labels)`` pairs.
    """
    X = {name: features.numpy_fixed(features.positions(ids)) for name, (ids, _) in
         (("train", train), ("val", val), ("test", test))}
    best = None
    for c in PROBE_C:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))
        model.fit(X["train"], train[1])
        val_uar, val_wa = scores(np.asarray(val[1]), model.predict(X["val"]))
        if best is None or val_uar > best[0]:
            best = (val_uar, val_wa, model)
    test_uar, test_wa = scores(np.asarray(test[1]), best[2].predict(X["test"]))
    return {"val_uar": best[0], "val_wa": best[1], "test_uar": test_uar, "test_wa": test_wa}


@dataclass
class ProbeJob(Job):
    """Linear probe on fixed-length features of ``view`` (paper B's speaker probe) → one result row."""

    view: str
    data: FoldData
    subset: Sequence[int] | None = None
    seed: int = 0
    row: dict = field(default_factory=dict)

    def run(self, features) -> dict:
        data = self.data
        idx = range(len(data.train_ids)) if self.subset is None else self.subset
        train = ([data.train_ids[i] for i in idx], [data.train_labels[i] for i in idx])
        metrics = speaker_probe(features[self.view], train, (data.val_ids, data.val_labels),
                                (data.test_ids, data.test_labels), seed=self.seed)
        k = len(set(map(str, train[1])))
        return dict(self.row, view=self.view, **metrics, n_labels=len(train[0]), n_classes=k, chance_uar=1.0 / k)


@dataclass(frozen=True)
class ClusterGrid(GridConfig):
    """Paper B's grid configuration: :class:`~sercore.training.grid.GridConfig` (with ``fractions`` (1.0, 0.1))
    plus the encoder, the pre-training variants and the baselines.

    Conditions: ``cluster_<variant>`` for each of ``variants``; of ``baselines``: ``supervised`` (the same encoder
    from scratch, tuned), ``speaker_probe`` (logistic regression on ``speaker_view``), ``wav2vec2_frozen``
    (supervised on the frozen wav2vec2 view when there is one and it is not the encoder view) and ``pairwise-cl``
    (Pairwise-CL with ``pairwise`` on ``pairwise_views``, default every view, then fine-tuned). With
    ``use_speaker_ids=False`` pre-training uses pseudo-speakers from global clustering.
    """

    fractions: tuple[float, ...] = (1.0, 0.1)
    encoder_view: str = "egemaps"  # the view whose encoder is pre-trained and fine-tuned
    speaker_view: str = "speaker"  # the speaker embeddings the clusters come from
    pretrain: ClusterPretrainConfig = field(default_factory=ClusterPretrainConfig)
    pairwise: PretrainConfig = field(default_factory=PretrainConfig)  # the Pairwise-CL baseline
    pseudo: dict = field(default_factory=dict)  # keyword arguments of ``sercore.clusters.sampler.pseudo_labels``
    variants: tuple[str, ...] = VARIANTS
    baselines: tuple[str, ...] = BASELINES
    use_speaker_ids: bool = True
    pairwise_views: tuple[str, ...] | None = None  # views of the Pairwise-CL baseline (None: every view)

    def __post_init__(self):
        super().__post_init__()
        unknown = sorted(set(self.variants) - set(VARIANTS)) + sorted(set(self.baselines) - set(BASELINES))
        if unknown:
            raise ValueError(f"unknown variant(s)/baseline(s) {unknown}; variants {VARIANTS}, baselines {BASELINES}")
        object.__setattr__(self, "variants", tuple(self.variants))
        object.__setattr__(self, "baselines", tuple(self.baselines))


def evaluate_cluster_pretraining(data: ExperimentData, config: ClusterGrid | None = None) -> pd.DataFrame:
    """Fine-tuning results of every pre-training variant and baseline of ``config`` → one tidy table
    (``COLUMNS`` first).

    ``data.manifest``: pre-training utterances with speakers (emotion labels unused); ``data.task``: the labelled
    task; ``data.splits`` covers both; ``data.features`` must hold the encoder and speaker views for every
    utterance used.
    """
    config = config or ClusterGrid()
    data.require_views(config.encoder_view, config.speaker_view)
    assert_no_leakage(data.splits)
    plan = _Plan(data, config)
    engine, datas = config.job_engine(), data.fold_datas()
    pre_jobs = [(d.fold, condition, job) for d in datas for condition, job in plan.pretrain_jobs(d)]
    trained = [r.encoders if isinstance(r, PretrainResult) else r  # PretrainJob: all views; cluster: one encoder
               for r in engine.run([j for *_, j in pre_jobs], data.features)]
    encoders = dict(zip([(fold, c) for fold, c, _ in pre_jobs], trained))
    jobs = []
    for d in datas:
        conditions = {c: enc for (fold, c), enc in encoders.items() if fold == d.fold}
        jobs += plan.run_jobs(d, conditions)
    return result_table(run_rows(engine, jobs, data.features), GRID_COLUMNS)


class _Plan:
    """The inputs of one evaluation; builds its jobs fold by fold."""

    def __init__(self, data: ExperimentData, config: ClusterGrid):
        self.manifest, self.features, self.config = data.manifest, data.features, config
        self.view = config.encoder_view
        self.pairwise_views = list(config.pairwise_views or data.features)

    def pretrain_jobs(self, data: FoldData) -> list[tuple[str, object]]:
        """``(condition, job)`` for every pre-training of the fold: each variant, then Pairwise-CL."""
        config = self.config
        train, val = self._pseudo(data.pool_train), self._pseudo(data.pool_val)
        jobs = [(f"cluster_{v}", ClusterPretrainJob(self.view, v, config.pretrain, data.pool_train, *train,
                                                     data.pool_val, *val, device=config.device))
                for v in config.variants]
        if PRETRAINED in config.baselines:
            views = self.pairwise_views
            if len(views) < 2 or self.view not in views:
                warnings.warn(f"{PRETRAINED} skipped: needs >= 2 views including {self.view!r}, got {views}")
            else:
                jobs.append((PRETRAINED, PretrainJob(data, config.pairwise, config.device, views=views)))
        return jobs

    def run_jobs(self, data: FoldData, encoders: dict) -> list:
        """Fine-tuning and probe jobs of one fold, in table order (pre-trained conditions, then baselines)."""
        jobs, config = [], self.config
        for fraction in config.fractions:
            for rep in range(config.repetitions):
                seed = config.finetune.seed + rep
                row = {"fold": data.fold, "fraction": fraction, "repetition": rep, "seed": seed}
                common = dict(data=data, config=replace(config.finetune, seed=seed), device=config.device,
                              subset=sparse_subset(data.train_ids, data.train_labels, fraction, seed))
                for condition, encoder in encoders.items():
                    encoder = encoder[self.view] if isinstance(encoder, dict) else encoder
                    jobs.append(FinetuneJob(self.view, encoder=encoder, row=dict(row, condition=condition), **common))
                jobs += self._baselines(row, common)
        return jobs

    def _baselines(self, row, common) -> list:
        jobs, baselines = [], self.config.baselines
        if SUPERVISED in baselines:
            jobs.append(FinetuneJob(self.view, row=dict(row, condition=SUPERVISED), **common))
        if "wav2vec2_frozen" in baselines and "wav2vec2" in self.features and self.view != "wav2vec2":
            jobs.append(FinetuneJob("wav2vec2", row=dict(row, condition="wav2vec2_frozen"), **common))
        if "speaker_probe" in baselines:
            jobs.append(ProbeJob(self.config.speaker_view, common["data"], common["subset"], row["seed"],
                                 dict(row, condition="speaker_probe")))
        return jobs

    def _pseudo(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(speaker, cluster) pseudo-labels of ``ids`` from the speaker view (speaker ids when allowed), drawn with
        the pre-training seed."""
        fs = self.features[self.config.speaker_view]
        X = fs.numpy_fixed(fs.positions(ids))
        speakers = None
        if self.config.use_speaker_ids:
            speakers = self.manifest.set_index(self.manifest["utt_id"].astype(str)).loc[ids, "speaker"].astype(str)
        return pseudo_labels(X, None if speakers is None else speakers.values,
                             **{"seed": self.config.pretrain.seed, **self.config.pseudo})
