"""Paper A's experiment grids as functions returning tidy tables (one row per fold × view × condition × repetition).

Inputs shared by all grids: ``manifest`` (every utterance: the unlabelled pre-training pool, e.g. IEMOCAP-10),
``task`` (the labelled task, e.g. IEMOCAP-4 from ``target_subset``; its ``utt_id``s are a subset of the
manifest's), ``splits`` (``make_splits`` over ``manifest``), ``features`` (view name → ``FeatureSet`` covering the
manifest; all of them are pre-trained together, the ones in ``views`` are fine-tuned), configs and ``device``.
Pre-training uses the fold's training groups (validation loss on its validation group) and never the test group:
``pretraining_ids`` checks that against the manifest's speakers and raises ``LeakageError``.

Speed: every grid runs its pre-trainings and its many small fine-tuning runs as jobs of :mod:`sercore.engine`
(``engine=``: ``"local"``, the default, with ``workers`` processes of one torch thread each on CPU and threads on
CUDA; or ``"ray"`` / a Ray engine for a cluster). Result rows record the ``node`` each run went to.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from .data.splits import LeakageError, split_ids
from .engine import LocalEngine, as_engine
from .engine.jobs import HISTORY, CallJob, FinetuneJob, PretrainJob
from .featureset import FeatureSet
from .finetune_cache import run_cached
from .models.encoders import EncoderClassifier, ProjectionHead, count_parameters
from .train import FinetuneConfig, PretrainConfig, PretrainResult, default_encoder, pretrain_pairwise

RESULT_COLUMNS = ["fold", "view", "condition", "repetition", "seed", "val_uar", "val_wa", "test_uar", "test_wa"]
PRETRAINED, SUPERVISED = "pairwise-cl", "supervised"


@dataclass
class FoldData:
    """The ids of one fold: unlabelled pre-training pool (train/val groups) and the labelled task splits."""

    fold: int
    pool_train: list[str]
    pool_val: list[str]
    train_ids: list[str]
    train_labels: list[str]
    val_ids: list[str]
    val_labels: list[str]
    test_ids: list[str]
    test_labels: list[str]


def pretraining_ids(ids: Sequence[str], manifest: pd.DataFrame, splits: pd.DataFrame, fold: int) -> list[str]:
    """``ids`` unchanged after checking that none of them, nor any of their speakers, is in the fold's test set."""
    test = set(split_ids(splits, fold, "test"))
    speaker = manifest.set_index("utt_id")["speaker"].astype(str)
    test_speakers = set(speaker.reindex(sorted(test)).dropna())
    leaked = sorted(set(ids) & test)
    leaked += sorted(u for u in ids if speaker.get(u) in test_speakers and u not in test)
    if leaked:
        raise LeakageError(f"fold {fold}: pre-training data includes {len(leaked)} utterance(s) of the test "
                           f"set or its speakers {sorted(test_speakers)}: {leaked[:5]}")
    return list(ids)


def fold_data(manifest: pd.DataFrame, task: pd.DataFrame, splits: pd.DataFrame, fold: int, *,
              label_col: str = "emotion") -> FoldData:
    """Split the pool and the task of ``fold``; every manifest/task id must be in the splits table."""
    in_splits = set(splits.loc[splits["fold"] == fold, "utt_id"])
    for name, frame in (("manifest", manifest), ("task", task)):
        missing = sorted(set(frame["utt_id"].astype(str)) - in_splits)
        if missing:
            raise ValueError(f"{len(missing)} {name} utterance(s) are not in the splits of fold {fold} "
                             f"(build the splits from the full manifest): {missing[:5]}")
    pool = set(manifest["utt_id"].astype(str))
    label = task.set_index("utt_id")[label_col].astype(str)
    parts = {}
    for split in ("train", "val", "test"):
        ids = split_ids(splits, fold, split)
        parts[f"pool_{split}"] = [u for u in ids if u in pool]
        parts[split] = [u for u in ids if u in label.index]
    return FoldData(fold, pretraining_ids(parts["pool_train"], manifest, splits, fold),
                    pretraining_ids(parts["pool_val"], manifest, splits, fold),
                    parts["train"], label[parts["train"]].tolist(), parts["val"], label[parts["val"]].tolist(),
                    parts["test"], label[parts["test"]].tolist())


def sparse_subset(ids: Sequence[str], labels: Sequence[str], fraction: float, seed: int) -> list[int]:
    """Indices of ``round(fraction × n_c)`` (at least 1) utterances drawn per class ``c``, in input order."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels).astype(str)
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), max(1, int(round(fraction * np.sum(labels == c)))),
                         replace=False) for c in sorted(set(labels))]
    return sorted(np.concatenate(chosen).tolist())


# ---- running many small jobs -------------------------------------------------------------------------------

def run_jobs(fn: Callable, jobs: Sequence, shared=None, *, workers: int = 1, device="cpu",
             backend: str | None = None) -> list:
    """``[fn(job, shared) for job in jobs]``, in order, with ``workers`` in parallel on the local engine.

    ``backend`` ``"process"`` (default on CPU; ``fn`` must be importable by name) or ``"thread"`` (default on
    CUDA). Grids use :mod:`sercore.engine` directly; this keeps the former helper working.
    """
    if backend not in (None, "process", "thread"):
        raise ValueError(f"run_jobs: backend must be 'process' or 'thread', got {backend!r}")
    backend = backend or ("thread" if torch.device(device).type == "cuda" else "process")
    return LocalEngine(workers, backend=backend).run([CallJob(fn, job) for job in jobs], shared)


RUN_KEYS = ("fold", "view", "condition", "pretrain_data", "temperature", "frozen", "fraction", "repetition")


def _run_name(keys: dict) -> str:
    """A learning curve's run name: ``fold=0 view=mel ...``."""
    return " ".join(f"{k}={v}" for k, v in keys.items())


def run_rows(engine, jobs: Sequence, features, histories: dict | None = None) -> list[dict]:
    """Result rows of ``jobs`` in order, each with the ``node`` it ran on; fine-tuning runs done before come from
    the result cache (:mod:`sercore.finetune_cache`). Fine-tuning rows' per-epoch validation
    UAR goes to ``histories["finetune"]`` (when a dict is given): one row per run × epoch with ``RUN_KEYS``,
    ``run``, ``epoch``, ``val_uar``."""
    rows = [dict(o.value, node=o.node) for o in run_cached(engine, jobs, features)]
    curves = [row.pop(HISTORY, None) for row in rows]
    if histories is not None:
        records = []
        for row, curve in zip(rows, curves):
            keys = {k: row[k] for k in RUN_KEYS if k in row}
            records += [dict(keys, run=_run_name(keys), epoch=e, val_uar=v)
                        for e, v in enumerate(curve or [], start=1)]
        histories["finetune"] = pd.DataFrame(records)
    return rows


def result_table(rows: list[dict], grid_cols: Sequence[str]) -> pd.DataFrame:
    """The tidy result table of both papers: ``RESULT_COLUMNS``, then ``grid_cols``, then the rest (``n_labels``,
    ``best_epoch``, ``node``, ...) in the rows' order."""
    table = pd.DataFrame(rows)
    extra = [c for c in table.columns if c not in RESULT_COLUMNS and c not in grid_cols]
    return table[RESULT_COLUMNS + list(grid_cols) + extra]


def _folds(splits: pd.DataFrame, folds) -> list[int]:
    return sorted(splits["fold"].unique()) if folds is None else list(folds)


def pretrain_fold(features: dict[str, FeatureSet], data: FoldData, config: PretrainConfig | None = None,
                  device="cpu", pool: tuple[list, list] | None = None, *, result: bool = False) -> dict:
    """Pairwise-CL encoders (view → module) of one fold, pre-trained on its pool (or ``pool`` = (train, val) ids,
    which must come from the fold's pool); with ``result``, the whole ``PretrainResult`` (history, heads)."""
    train, val = pool if pool is not None else (data.pool_train, data.pool_val)
    outside = sorted(set(train) - set(data.pool_train)) + sorted(set(val) - set(data.pool_val))
    if outside:
        raise LeakageError(f"fold {data.fold}: {len(outside)} pre-training id(s) outside the fold's training/"
                           f"validation pool: {outside[:5]}")
    trained = pretrain_pairwise(features, train, val, config=config or PretrainConfig(), device=device)
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
    results: list[PretrainResult] = as_engine(engine, workers=workers).run(jobs, features)
    if histories is not None:
        frames = []
        for r, res in zip(requests, results):
            keys = dict(fold=r["data"].fold, **r.get("row", {}))
            frames.append(res.history.assign(**keys, run=_run_name(keys)))
        histories["pretrain"] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return [res.encoders for res in results]


# ---- grids --------------------------------------------------------------------------------------------------

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
    engine = as_engine(engine, workers=workers)
    pretrain_config, finetune_config = pretrain_config or PretrainConfig(), finetune_config or FinetuneConfig()
    views = list(views or features)
    datas = [fold_data(manifest, task, splits, fold, label_col=label_col) for fold in _folds(splits, folds)]
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
    engine = as_engine(engine, workers=workers)
    pretrain_config, finetune_config = pretrain_config or PretrainConfig(), finetune_config or FinetuneConfig()
    views = list(views or features)
    datas = [fold_data(manifest, task, splits, fold, label_col=label_col) for fold in _folds(splits, folds)]
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
    engine = as_engine(engine, workers=workers)
    pretrain_config, finetune_config = pretrain_config or PretrainConfig(), finetune_config or FinetuneConfig()
    views = list(views or features)
    target = set(task["utt_id"].astype(str))
    datas = [fold_data(manifest, task, splits, fold, label_col=label_col) for fold in _folds(splits, folds)]
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


def extractor_parameters(features: FeatureSet) -> int:
    """Parameters of the frozen model that produced the features (``meta['provenance']['parameters']``), or 0."""
    provenance = features.meta.get("provenance") or {}
    return int(provenance.get("parameters") or 0)


def parameter_counts(features: dict[str, FeatureSet], *, n_classes: int = 4, encoder_cfg: dict | None = None,
                     pretrain_config: PretrainConfig | None = None) -> pd.DataFrame:
    """Table 5: frozen and trainable parameters per view (frozen/tuned fine-tuning) and for pre-training.

    Columns ``stage, view, frozen, frozen_params, trainable_params``; the frozen feature extractor (wav2vec 2.0)
    counts as frozen where the FeatureSet's provenance gives ``parameters``.
    """
    config = pretrain_config or PretrainConfig()
    rows, pre_trainable, pre_frozen = [], 0, 0
    for view, fs in features.items():
        encoder = default_encoder(fs, seed=0, **(encoder_cfg or {}).get(view, {}))
        extractor = extractor_parameters(fs)
        model = EncoderClassifier(encoder, encoder.out_dim, n_classes)
        tuned, _ = count_parameters(model)
        classifier, _ = count_parameters(model.classifier)
        rows.append(dict(stage="fine-tuning", view=view, frozen=False, frozen_params=extractor,
                         trainable_params=tuned))
        rows.append(dict(stage="fine-tuning", view=view, frozen=True, frozen_params=extractor + tuned - classifier,
                         trainable_params=classifier))
        head, _ = count_parameters(ProjectionHead(encoder.out_dim, config.proj_hidden, config.proj_dim))
        pre_trainable += tuned - classifier + head
        pre_frozen += extractor
    rows.append(dict(stage="pre-training", view="+".join(features), frozen=np.nan, frozen_params=pre_frozen,
                     trainable_params=pre_trainable))
    return pd.DataFrame(rows)
