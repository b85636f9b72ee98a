"""Paper A's experiment grids as functions returning tidy tables (one row per fold × view × condition × repetition).

Inputs shared by all grids: ``manifest`` (every utterance: the unlabelled pre-training pool, e.g. IEMOCAP-10),
``task`` (the labelled task, e.g. IEMOCAP-4 from ``target_subset``; its ``utt_id``s are a subset of the
manifest's), ``splits`` (``make_splits`` over ``manifest``), ``features`` (view name → ``FeatureSet`` covering the
manifest; all of them are pre-trained together, the ones in ``views`` are fine-tuned), configs and ``device``.
Pre-training uses the fold's training groups (validation loss on its validation group) and never the test group:
``pretraining_ids`` checks that against the manifest's speakers and raises ``LeakageError``.

Every grid runs its pre-trainings and its many small fine-tuning runs as jobs of :mod:`sercore.engine`
(``engine=``: ``"local"``, the default, with ``workers`` processes of one torch thread each on CPU and threads on
CUDA; or ``"ray"`` / a Ray engine for a cluster). Result rows record the ``node`` each run went to.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from sercore.data.splits import LeakageError
from sercore.engine import Job
from sercore.features.featureset import FeatureSet
from sercore.pairwise.pretrain import PretrainConfig, PretrainResult, pretrain_pairwise_cached
from sercore.training import FinetuneConfig
from sercore.training.folds import FoldData, fold_data, folds_of, sparse_subset
from sercore.training.grid import SUPERVISED, result_table, run_name, run_rows, training_engine
from sercore.training.jobs import FinetuneJob

PRETRAINED = "pairwise-cl"


@dataclass
class PretrainJob(Job):
    """Pairwise-CL pre-training of one fold → its ``PretrainResult`` (encoders, history, heads, metrics;
    ``views``: a subset of the features; ``pool``: (train, val) ids from the fold's pool, default the whole
    pool)."""

    data: Any  # FoldData
    config: Any  # PretrainConfig
    device: str = "cpu"
    pool: tuple[list, list] | None = None
    views: Sequence[str] | None = None

    def run(self, features) -> PretrainResult:
        chosen = features if self.views is None else {v: features[v] for v in self.views}
        return pretrain_fold(chosen, self.data, self.config, self.device, self.pool, result=True)


def pretrain_fold(features: dict[str, FeatureSet], data: FoldData, config: PretrainConfig | None = None,
                  device="cpu", pool: tuple[list, list] | None = None, *, result: bool = False) -> dict:
    """Pairwise-CL encoders (view → module) of one fold, pre-trained on its pool (or ``pool`` = (train, val) ids,
    which must come from the fold's pool); with ``result``, the whole ``PretrainResult`` (history, heads)."""
    train, val = pool if pool is not None else (data.pool_train, data.pool_val)
    outside = sorted(set(train) - set(data.pool_train)) + sorted(set(val) - set(data.pool_val))
    if outside:
        raise LeakageError(f"fold {data.fold}: {len(outside)} pre-training id(s) outside the fold's training/"
                           f"validation pool: {outside[:5]}")
    trained = pretrain_pairwise_cached(features, train, val, config=config or PretrainConfig(), device=device)
    return trained if result else trained.encoders


def pretrain_many(features: dict[str, FeatureSet], requests: Sequence[dict], *, device="cpu",
                  workers: int = 1, engine=None, histories: dict | None = None) -> list[dict]:
    """``pretrain_fold`` for each request (``data``, ``config``, optional ``pool``, ``views``, ``row``) on
    ``engine``.

    The folds' pre-training runs are independent, so on CPU one process per core (one torch thread each) beats
    one process with several threads for these small encoders. ``engine``: a name or Engine (default: the
    local engine with ``workers`` processes). ``histories`` (a dict) receives under ``"pretrain"`` the runs'
    per-epoch history (``epoch``, ``train_loss``, ``val_loss``, ``seconds``, ``steps``, then ``fold``, the
    request's ``row`` columns and ``run``).
    """
    jobs = [PretrainJob(r["data"], r["config"], device, r.get("pool"), r.get("views")) for r in requests]
    results: list[PretrainResult] = training_engine(engine, workers=workers).run(jobs, features)
    if histories is not None:
        frames = []
        for r, res in zip(requests, results):
            keys = dict(fold=r["data"].fold, **r.get("row", {}))
            frames.append(res.history.assign(**keys, run=run_name(keys)))
        histories["pretrain"] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return [res.encoders for res in results]


# ---- grids --------------------------------------------------------------------------------------------------

def _grid_setup(manifest, task, splits, features, views, folds, pretrain_config, finetune_config, workers, engine,
                label_col):
    """What every grid starts from: its engine, both configs (defaults when None), the views, each fold's data."""
    datas = [fold_data(manifest, task, splits, fold, label_col=label_col) for fold in folds_of(splits, folds)]
    return (training_engine(engine, workers=workers), pretrain_config or PretrainConfig(),
            finetune_config or FinetuneConfig(), list(views or features), datas)


def temperature_grid(manifest, task, splits, features: dict[str, FeatureSet], *,
                     temperatures: Sequence[float] = (0.1, 0.25, 0.5, 1.0), views: Sequence[str] | None = None,
                     folds: Sequence[int] | None = None, repetitions: int = 1,
                     pretrain_config: PretrainConfig | None = None, finetune_config: FinetuneConfig | None = None,
                     device="cpu", workers: int = 1, label_col: str = "emotion", engine=None,
                     histories: dict | None = None) -> pd.DataFrame:
    """Tables 1/2/4: pre-train with each τ, fine-tune frozen and tuned with all labels, plus supervised rows.

    Pre-training runs once per fold × τ; fine-tuning (and the supervised baseline) is repeated ``repetitions``
    times with seeds ``finetune_config.seed + r`` (the paper: one run per fold).
    Grid columns ``temperature`` (NaN for supervised), ``frozen``; also ``best_epoch``, ``n_labels``, ``node``.
    ``engine``: a name or Engine (default: the local engine with ``workers`` processes). ``histories``: a dict
    that receives the learning curves (``pretrain_many``'s ``"pretrain"``, ``run_rows``' ``"finetune"``).
    """
    engine, pretrain_config, finetune_config, views, datas = _grid_setup(
        manifest, task, splits, features, views, folds, pretrain_config, finetune_config, workers, engine, label_col)
    requests = [dict(data=data, config=replace(pretrain_config, temperature=tau), row=dict(temperature=tau))
                for data in datas for tau in temperatures]
    pretrained = iter(pretrain_many(features, requests, device=device, engine=engine, histories=histories))
    encoders = {(data.fold, tau): next(pretrained) for data in datas for tau in temperatures}
    jobs = []
    for data in datas:
        for rep in range(repetitions):
            seed = finetune_config.seed + rep
            config = replace(finetune_config, seed=seed)
            row = dict(fold=data.fold, repetition=rep, seed=seed)
            for view in views:
                jobs.append(FinetuneJob(view, data, config, device=device,
                                        row=dict(row, condition=SUPERVISED, temperature=np.nan, frozen=False)))
            for tau in temperatures:
                for view in views:
                    for frozen in (False, True):
                        jobs.append(FinetuneJob(view, data, replace(config, frozen=frozen),
                                                encoder=encoders[data.fold, tau][view], device=device,
                                                row=dict(row, condition=PRETRAINED, temperature=tau, frozen=frozen)))
    rows = run_rows(engine, jobs, features, histories)
    return result_table(rows, ["temperature", "frozen"])


def _sparse_jobs(data: FoldData, encoders_by_source: dict, views, fractions, repetitions, config, device,
                 include_supervised: bool) -> list[FinetuneJob]:
    jobs = []
    for fraction in fractions:
        for rep in range(repetitions):
            seed = config.seed + rep
            row = dict(fold=data.fold, repetition=rep, seed=seed, fraction=fraction)
            common = dict(data=data, config=replace(config, seed=seed), device=device,
                          subset=sparse_subset(data.train_ids, data.train_labels, fraction, seed))
            for view in views:
                if include_supervised:
                    jobs.append(FinetuneJob(view, **common, row=dict(row, condition=SUPERVISED,
                                                                     pretrain_data="none", frozen=False)))
                for source, encoders in encoders_by_source.items():
                    jobs.append(FinetuneJob(view, **common, encoder=encoders[view], row=dict(
                        row, condition=PRETRAINED, pretrain_data=source, frozen=config.frozen)))
    return jobs


def sparse_label_grid(manifest, task, splits, features: dict[str, FeatureSet], *,
                      fractions: Sequence[float] = (0.02, 0.05, 0.10, 0.25), repetitions: int = 10,
                      views: Sequence[str] | None = None, folds: Sequence[int] | None = None,
                      pretrain_config: PretrainConfig | None = None, finetune_config: FinetuneConfig | None = None,
                      device="cpu", workers: int = 1, label_col: str = "emotion",
                      pretrained: dict | None = None, engine=None, histories: dict | None = None) -> pd.DataFrame:
    """Figure 3: per fold, pre-train once, then fine-tune on p% of each class (≥1) vs supervised from scratch.

    Repetition r of a fraction draws its labelled subset with seed ``finetune_config.seed + r`` (shared by both
    conditions and all views, so comparisons are paired). ``pretrained`` (fold → view → encoder, e.g. from the
    temperature grid) skips pre-training for the folds it has. Grid columns ``fraction``, ``frozen``,
    ``pretrain_data`` (``all``/``none``); also ``n_labels``, ``best_epoch``, ``node`` (where the run went).
    ``engine``: a name or Engine (default: the local engine with ``workers`` processes). ``histories``: a dict
    that receives the learning curves (``pretrain_many``'s ``"pretrain"``, ``run_rows``' ``"finetune"``).
    """
    engine, pretrain_config, finetune_config, views, datas = _grid_setup(
        manifest, task, splits, features, views, folds, pretrain_config, finetune_config, workers, engine, label_col)
    todo = [data for data in datas if not (pretrained or {}).get(data.fold)]
    trained = pretrain_many(features, [dict(data=d, config=pretrain_config) for d in todo], device=device,
                            engine=engine, histories=histories)
    encoders_by_fold = {**(pretrained or {}), **{d.fold: enc for d, enc in zip(todo, trained)}}
    jobs = []
    for data in datas:
        jobs += _sparse_jobs(data, {"all": encoders_by_fold[data.fold]}, views, fractions, repetitions,
                             finetune_config, device, True)
    rows = run_rows(engine, jobs, features, histories)
    return result_table(rows, ["fraction", "frozen", "pretrain_data"])


def target_vs_ood(manifest, task, splits, features: dict[str, FeatureSet], *,
                  fractions: Sequence[float] = (0.02, 0.05, 0.10, 0.25), repetitions: int = 10,
                  views: Sequence[str] | None = None, folds: Sequence[int] | None = None,
                  pretrain_config: PretrainConfig | None = None, finetune_config: FinetuneConfig | None = None,
                  device="cpu", workers: int = 1, include_supervised: bool = False,
                  label_col: str = "emotion", engine=None, histories: dict | None = None) -> pd.DataFrame:
    """Figure 4: pre-train on the training groups' task (target-emotion) utterances vs the others (OOD), then
    fine-tune both with sparse labels. ``pretrain_data`` is ``target`` or ``ood`` (``none`` for supervised rows).
    ``engine``: a name or Engine (default: the local engine with ``workers`` processes); ``histories`` as in
    ``sparse_label_grid``.
    """
    engine, pretrain_config, finetune_config, views, datas = _grid_setup(
        manifest, task, splits, features, views, folds, pretrain_config, finetune_config, workers, engine, label_col)
    target = set(task["utt_id"].astype(str))
    requests = []
    for data in datas:
        for source, keep in (("target", lambda u: u in target), ("ood", lambda u: u not in target)):
            pool = ([u for u in data.pool_train if keep(u)], [u for u in data.pool_val if keep(u)])
            if not pool[0] or not pool[1]:
                raise ValueError(f"fold {data.fold}: no {source} utterances to pre-train on "
                                 f"({len(pool[0])} train, {len(pool[1])} validation)")
            requests.append(dict(data=data, config=pretrain_config, pool=pool, source=source,
                                 row=dict(pretrain_data=source)))
    trained = pretrain_many(features, requests, device=device, engine=engine, histories=histories)
    jobs = []
    for data in datas:
        encoders = {r["source"]: enc for r, enc in zip(requests, trained) if r["data"] is data}
        jobs += _sparse_jobs(data, encoders, views, fractions, repetitions, finetune_config, device,
                             include_supervised)
    rows = run_rows(engine, jobs, features, histories)
    return result_table(rows, ["fraction", "frozen", "pretrain_data"])
