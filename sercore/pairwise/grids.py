"""Paper A's experiment grids as functions returning tidy tables (one row per fold × view × condition × repetition).

Every grid is ``grid(data, config)``: ``data`` an :class:`~sercore.training.grid.ExperimentData` (the manifest, the
labelled task, the splits, the features of every view, the folds to run; a notebook's ``Experiment`` is one) and
``config`` a :class:`PairwiseGrid` (pre-training and fine-tuning configs, repetitions, fractions, temperatures,
views, device, engine). All views of ``data`` are pre-trained together; ``config.views`` are fine-tuned.
Pre-training uses the fold's training groups (validation loss on its validation group) and never the test group:
``pretraining_ids`` checks that against the manifest's speakers and raises ``LeakageError``.

Every grid runs its pre-trainings and its many small fine-tuning runs as jobs of :mod:`sercore.engine`
(``config.engine``: ``"local"``, the default, with ``config.workers`` processes of one torch thread each on CPU and
threads on CUDA; or ``"ray"`` / a Ray engine for a cluster). Result rows record the ``node`` each run went to.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import pandas as pd

from sercore.data.splits import LeakageError
from sercore.engine import Job
from sercore.features.featureset import FeatureSet
from sercore.pairwise.pretrain import PretrainConfig, PretrainResult, pretrain_pairwise_cached
from sercore.training.folds import FoldData, sparse_subset
from sercore.training.grid import SUPERVISED, ExperimentData, GridConfig, result_table, run_name, run_rows
from sercore.training.jobs import FinetuneJob

PRETRAINED = "pairwise-cl"


@dataclass(frozen=True)
class PairwiseGrid(GridConfig):
    """Paper A's grid configuration: :class:`~sercore.training.grid.GridConfig` plus the pre-training and the
    temperature grid. The temperature grid pre-trains with each ``temperatures`` value (``pretrain.temperature``
    is then replaced); the other grids use ``pretrain.temperature``."""

    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    temperatures: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)  # τ values of the temperature grid

    def __post_init__(self):
        super().__post_init__()
        bad = [t for t in self.temperatures if not t > 0]
        if bad:
            raise ValueError(f"temperatures must be > 0, got {list(self.temperatures)}")
        object.__setattr__(self, "temperatures", tuple(float(t) for t in self.temperatures))


@dataclass
class PretrainJob(Job):
    """Pairwise-CL pre-training of one fold → its ``PretrainResult`` (encoders, history, heads, metrics;
    ``views``: a subset of the features; ``pool``: (train, val) ids from the fold's pool, default the whole
    pool; ``row``: the grid columns its learning curve is labelled with)."""

    data: FoldData
    config: PretrainConfig
    device: str = "cpu"
    pool: tuple[list, list] | None = None
    views: Sequence[str] | None = None
    row: dict = field(default_factory=dict)

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


def pretrain_many(features: dict[str, FeatureSet], jobs: Sequence[PretrainJob], engine,
                  histories: dict | None = None) -> list[dict]:
    """The encoders (view → module) of each ``PretrainJob`` run on ``engine`` (an Engine).

    The folds' pre-training runs are independent, so on CPU one process per core (one torch thread each) beats
    one process with several threads for these small encoders. ``histories`` (a dict) receives under
    ``"pretrain"`` the runs' per-epoch history (``epoch``, ``train_loss``, ``val_loss``, ``seconds``, ``steps``,
    then ``fold``, the job's ``row`` columns and ``run``).
    """
    results: list[PretrainResult] = engine.run(list(jobs), features)
    if histories is not None:
        frames = []
        for job, res in zip(jobs, results):
            keys = dict(fold=job.data.fold, **job.row)
            frames.append(res.history.assign(**keys, run=run_name(keys)))
        histories["pretrain"] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return [res.encoders for res in results]


# ---- grids --------------------------------------------------------------------------------------------------

def temperature_grid(data: ExperimentData, config: PairwiseGrid | None = None, *,
                     histories: dict | None = None) -> pd.DataFrame:
    """Tables 1/2/4: pre-train with each τ of ``config.temperatures``, fine-tune frozen and tuned with all labels,
    plus supervised rows.

    Pre-training runs once per fold × τ; fine-tuning (and the supervised baseline) is repeated
    ``config.repetitions`` times with seeds ``config.finetune.seed + r`` (the paper: one run per fold).
    Grid columns ``temperature`` (NaN for supervised), ``frozen``; also ``best_epoch``, ``n_labels``, ``node``.
    ``histories``: a dict that receives the learning curves (``pretrain_many``'s ``"pretrain"``, ``run_rows``'
    ``"finetune"``).
    """
    config = config or PairwiseGrid()
    engine, views, datas = config.job_engine(), config.views_of(data), data.fold_datas()
    temperatures = config.temperatures
    jobs = [PretrainJob(d, replace(config.pretrain, temperature=tau), config.device, row=dict(temperature=tau))
            for d in datas for tau in temperatures]
    pretrained = iter(pretrain_many(data.features, jobs, engine, histories))
    encoders = {(d.fold, tau): next(pretrained) for d in datas for tau in temperatures}
    runs = []
    for d in datas:
        for rep in range(config.repetitions):
            seed = config.finetune.seed + rep
            finetune = replace(config.finetune, seed=seed)
            row = dict(fold=d.fold, repetition=rep, seed=seed)
            for view in views:
                runs.append(FinetuneJob(view, d, finetune, device=config.device,
                                        row=dict(row, condition=SUPERVISED, temperature=np.nan, frozen=False)))
            for tau in temperatures:
                for view in views:
                    for frozen in (False, True):
                        runs.append(FinetuneJob(view, d, replace(finetune, frozen=frozen),
                                                encoder=encoders[d.fold, tau][view], device=config.device,
                                                row=dict(row, condition=PRETRAINED, temperature=tau, frozen=frozen)))
    rows = run_rows(engine, runs, data.features, histories)
    return result_table(rows, ["temperature", "frozen"])


def sparse_jobs(data: FoldData, encoders_by_source: dict, views: Sequence[str], config: GridConfig,
                include_supervised: bool) -> list[FinetuneJob]:
    """The fine-tuning jobs of one fold's sparse-label grid: per fraction × repetition × view, the supervised run
    (when ``include_supervised``) and one run per pre-training source (``encoders_by_source``: source → view →
    encoder). Repetition r draws its labelled subset with seed ``config.finetune.seed + r``, shared by every
    condition and view, so comparisons are paired."""
    jobs, finetune = [], config.finetune
    for fraction in config.fractions:
        for rep in range(config.repetitions):
            seed = finetune.seed + rep
            row = dict(fold=data.fold, repetition=rep, seed=seed, fraction=fraction)
            common = dict(data=data, config=replace(finetune, seed=seed), device=config.device,
                          subset=sparse_subset(data.train_ids, data.train_labels, fraction, seed))
            for view in views:
                if include_supervised:
                    jobs.append(FinetuneJob(view, **common, row=dict(row, condition=SUPERVISED,
                                                                     pretrain_data="none", frozen=False)))
                for source, encoders in encoders_by_source.items():
                    jobs.append(FinetuneJob(view, **common, encoder=encoders[view], row=dict(
                        row, condition=PRETRAINED, pretrain_data=source, frozen=finetune.frozen)))
    return jobs


def sparse_label_grid(data: ExperimentData, config: PairwiseGrid | None = None, *, pretrained: dict | None = None,
                      histories: dict | None = None) -> pd.DataFrame:
    """Figure 3: per fold, pre-train once, then fine-tune on p% of each class (≥1) vs supervised from scratch.

    ``config.fractions`` and ``config.repetitions`` span the grid (see :func:`sparse_jobs` for the draws).
    ``pretrained`` (fold → view → encoder, e.g. from the temperature grid) skips pre-training for the folds it
    has. Grid columns ``fraction``, ``frozen``, ``pretrain_data`` (``all``/``none``); also ``n_labels``,
    ``best_epoch``, ``node`` (where the run went). ``histories`` as in :func:`temperature_grid`.
    """
    config = config or PairwiseGrid()
    engine, views, datas = config.job_engine(), config.views_of(data), data.fold_datas()
    todo = [d for d in datas if not (pretrained or {}).get(d.fold)]
    trained = pretrain_many(data.features, [PretrainJob(d, config.pretrain, config.device) for d in todo], engine,
                            histories)
    encoders_by_fold = {**(pretrained or {}), **{d.fold: enc for d, enc in zip(todo, trained)}}
    jobs = []
    for d in datas:
        jobs += sparse_jobs(d, {"all": encoders_by_fold[d.fold]}, views, config, True)
    rows = run_rows(engine, jobs, data.features, histories)
    return result_table(rows, ["fraction", "frozen", "pretrain_data"])


def target_vs_ood(data: ExperimentData, config: PairwiseGrid | None = None, *, include_supervised: bool = False,
                  histories: dict | None = None) -> pd.DataFrame:
    """Figure 4: pre-train on the training groups' task (target-emotion) utterances vs the others (OOD), then
    fine-tune both with sparse labels. ``pretrain_data`` is ``target`` or ``ood`` (``none`` for supervised rows,
    with ``include_supervised``). ``histories`` as in :func:`temperature_grid`.
    """
    config = config or PairwiseGrid()
    engine, views, datas = config.job_engine(), config.views_of(data), data.fold_datas()
    target = set(data.task["utt_id"].astype(str))
    jobs = []
    for d in datas:
        for source, keep in (("target", lambda u: u in target), ("ood", lambda u: u not in target)):
            pool = ([u for u in d.pool_train if keep(u)], [u for u in d.pool_val if keep(u)])
            if not pool[0] or not pool[1]:
                raise ValueError(f"fold {d.fold}: no {source} utterances to pre-train on "
                                 f"({len(pool[0])} train, {len(pool[1])} validation)")
            jobs.append(PretrainJob(d, config.pretrain, config.device, pool, row=dict(pretrain_data=source)))
    trained = pretrain_many(data.features, jobs, engine, histories)
    runs = []
    for d in datas:
        encoders = {j.row["pretrain_data"]: enc for j, enc in zip(jobs, trained) if j.data is d}
        runs += sparse_jobs(d, encoders, views, config, include_supervised)
    rows = run_rows(engine, runs, data.features, histories)
    return result_table(rows, ["fraction", "frozen", "pretrain_data"])
