"""Evaluation of cluster-contrastive pre-training (paper B) against its baselines, on paper A's parts.

Folds, labelled subsets, the fine-tuning job, condition names and the result table are the shared ones of
:mod:`sercore.training` (``folds``, ``jobs``, ``grid``); the Pairwise-CL baseline is :mod:`sercore.pairwise`'s. Per
fold: pre-train on the fold's pre-training pool (the ``manifest``
utterances of its training groups; validation groups for early stopping; never a test speaker — checked by
``fold_data``), then fine-tune on a fraction of the labelled ``task_manifest`` training utterances and score
validation and test. Pre-training runs once per fold and variant; repetition r redraws the labelled subset and
the fine-tuning seed (``seed + r``). Every pre-training and every run is a job of the chosen engine.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

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
from sercore.training import FinetuneConfig, scores
from sercore.training.folds import FoldData, fold_data, sparse_subset
from sercore.training.grid import RESULT_COLUMNS, SUPERVISED, result_table, run_rows, training_engine
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
    data: Any  # sercore.training.folds.FoldData
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


def evaluate_cluster_pretraining(manifest: pd.DataFrame, task_manifest: pd.DataFrame, splits: pd.DataFrame,
                                 features: dict[str, FeatureSet], *, encoder_view: str, speaker_view: str = "speaker",
                                 fractions=(1.0, 0.1), repetitions: int = 1, variants=VARIANTS,
                                 configs: dict | None = None, device="cpu", baselines=BASELINES, folds=None,
                                 seed: int = 0, use_speaker_ids: bool = True, pairwise_views=None,
                                 engine=None, workers: int = 1) -> pd.DataFrame:
    """Fine-tuning results of every pre-training variant and baseline → one tidy table (``COLUMNS`` first).

    ``manifest``: pre-training utterances with speakers (emotion labels unused); ``task_manifest``: labelled
    task utterances; ``splits``: ``make_splits`` table covering both. ``features[view]`` must hold every
    utterance used. ``configs`` keys: ``pretrain`` (ClusterPretrainConfig), ``finetune`` (FinetuneConfig),
    ``pairwise`` (PretrainConfig), ``pseudo`` (kwargs of ``pseudo_labels``). Conditions: ``cluster_<variant>``,
    ``supervised`` (same encoder from scratch, tuned), ``speaker_probe`` (logistic regression on ``speaker_view``),
    ``wav2vec2_frozen`` (supervised on the frozen wav2vec2 view when given and not the encoder view) and
    ``pairwise-cl`` (``pretrain_pairwise`` on ``pairwise_views``, default all views given, then fine-tuned).
    With ``use_speaker_ids=False`` pre-training uses pseudo-speakers from global clustering. ``engine``: a name
    or Engine (default: the local engine with ``workers`` processes).
    """
    configs = dict(configs or {})
    for name in (encoder_view, speaker_view):
        if name not in features:
            raise KeyError(f"features has no view {name!r}; given: {sorted(features)}")
    unknown = sorted(set(variants) - set(VARIANTS)) + sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown variant(s)/baseline(s) {unknown}; variants {VARIANTS}, baselines {BASELINES}")
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad or repetitions < 1:
        raise ValueError(f"fractions must lie in (0, 1] (got {list(fractions)}) and repetitions >= 1 "
                         f"(got {repetitions})")
    assert_no_leakage(splits)
    plan = _Plan(manifest, features, encoder_view, speaker_view, configs, device, seed, use_speaker_ids,
                 list(pairwise_views or features))
    engine = training_engine(engine, workers=workers)
    datas = [fold_data(manifest, task_manifest, splits, int(fold))
             for fold in (sorted(splits["fold"].unique()) if folds is None else folds)]
    pre_jobs = [(data.fold, condition, job) for data in datas
                for condition, job in plan.pretrain_jobs(data, variants, baselines)]
    trained = [r.encoders if isinstance(r, PretrainResult) else r  # PretrainJob: all views; cluster: one encoder
               for r in engine.run([j for *_, j in pre_jobs], features)]
    encoders = dict(zip([(fold, c) for fold, c, _ in pre_jobs], trained))
    jobs = []
    for data in datas:
        conditions = {c: enc for (fold, c), enc in encoders.items() if fold == data.fold}
        jobs += plan.run_jobs(data, conditions, fractions, repetitions, baselines)
    return result_table(run_rows(engine, jobs, features), GRID_COLUMNS)


class _Plan:
    """The inputs of one evaluation; builds its jobs fold by fold."""

    def __init__(self, manifest, features, encoder_view, speaker_view, configs, device, seed, use_speaker_ids,
                 pairwise_views):
        self.manifest, self.features = manifest, features
        self.encoder_view, self.speaker_view, self.device, self.seed = encoder_view, speaker_view, device, seed
        self.pretrain_cfg = configs.get("pretrain") or ClusterPretrainConfig(seed=seed)
        self.finetune_cfg = configs.get("finetune") or FinetuneConfig()
        self.pairwise_cfg = configs.get("pairwise") or PretrainConfig(seed=seed)
        self.pseudo_kwargs = dict(configs.get("pseudo") or {})
        self.use_speaker_ids, self.pairwise_views = use_speaker_ids, pairwise_views

    def pretrain_jobs(self, data: FoldData, variants, baselines) -> list[tuple[str, object]]:
        """``(condition, job)`` for every pre-training of the fold: each variant, then Pairwise-CL."""
        train, val = self._pseudo(data.pool_train), self._pseudo(data.pool_val)
        jobs = [(f"cluster_{v}", ClusterPretrainJob(self.encoder_view, v, self.pretrain_cfg, data.pool_train, *train,
                                                     data.pool_val, *val, device=self.device)) for v in variants]
        if PRETRAINED in baselines:
            views = self.pairwise_views
            if len(views) < 2 or self.encoder_view not in views:
                warnings.warn(f"{PRETRAINED} skipped: needs >= 2 views including {self.encoder_view!r}, got {views}")
            else:
                jobs.append((PRETRAINED, PretrainJob(data, self.pairwise_cfg, self.device, views=views)))
        return jobs

    def run_jobs(self, data: FoldData, encoders: dict, fractions, repetitions, baselines) -> list:
        """Fine-tuning and probe jobs of one fold, in table order (pre-trained conditions, then baselines)."""
        jobs = []
        for fraction in fractions:
            for rep in range(repetitions):
                seed = self.seed + rep
                row = {"fold": data.fold, "fraction": fraction, "repetition": rep, "seed": seed}
                common = dict(data=data, config=replace(self.finetune_cfg, seed=seed), device=self.device,
                              subset=sparse_subset(data.train_ids, data.train_labels, fraction, seed))
                for condition, encoder in encoders.items():
                    encoder = encoder[self.encoder_view] if isinstance(encoder, dict) else encoder
                    jobs.append(FinetuneJob(self.encoder_view, encoder=encoder, row=dict(row, condition=condition),
                                            **common))
                jobs += self._baselines(baselines, row, common)
        return jobs

    def _baselines(self, baselines, row, common) -> list:
        jobs = []
        if SUPERVISED in baselines:
            jobs.append(FinetuneJob(self.encoder_view, row=dict(row, condition=SUPERVISED), **common))
        if "wav2vec2_frozen" in baselines and "wav2vec2" in self.features and self.encoder_view != "wav2vec2":
            jobs.append(FinetuneJob("wav2vec2", row=dict(row, condition="wav2vec2_frozen"), **common))
        if "speaker_probe" in baselines:
            jobs.append(ProbeJob(self.speaker_view, common["data"], common["subset"], row["seed"],
                                 dict(row, condition="speaker_probe")))
        return jobs

    def _pseudo(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(speaker, cluster) pseudo-labels of ``ids`` from the speaker view (speaker ids when allowed)."""
        fs = self.features[self.speaker_view]
        X = fs.numpy_fixed(fs.positions(ids))
        speakers = None
        if self.use_speaker_ids:
            speakers = self.manifest.set_index(self.manifest["utt_id"].astype(str)).loc[ids, "speaker"].astype(str)
        return pseudo_labels(X, None if speakers is None else speakers.values,
                             **{"seed": self.seed, **self.pseudo_kwargs})
