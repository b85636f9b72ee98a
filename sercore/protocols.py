"""Paper A's experiment grids as functions returning tidy tables (one row per fold × view × condition × repetition).

Inputs shared by all grids: ``manifest`` (every utterance: the unlabelled pre-training pool, e.g. IEMOCAP-10),
``task`` (the labelled task, e.g. IEMOCAP-4 from ``target_subset``; its ``utt_id``s are a subset of the
manifest's), ``splits`` (``make_splits`` over ``manifest``), ``features`` (view name → ``FeatureSet`` covering the
manifest; all of them are pre-trained together, the ones in ``views`` are fine-tuned), configs and ``device``.
Pre-training uses the fold's training groups (validation loss on its validation group) and never the test group:
``pretraining_ids`` checks that against the manifest's speakers and raises ``LeakageError``.

Speed: the many small runs of the sparse-label grids go to ``run_jobs``: on CPU a fork-based process pool with
one torch thread per worker (features are inherited by fork, not copied), on CUDA a thread pool.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from .data.splits import LeakageError, split_ids
from .featureset import FeatureSet
from .models.encoders import EncoderClassifier, ProjectionHead, count_parameters
from .train import (FinetuneConfig, PretrainConfig, default_encoder, finetune, pretrain_pairwise,
                    supervised_baseline)

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

_WORKER: dict = {}


def _init_worker(fn: Callable, shared) -> None:
    torch.set_num_threads(1)
    _WORKER.update(fn=fn, shared=shared)


def _call_worker(job):
    return _WORKER["fn"](job, _WORKER["shared"])


def run_jobs(fn: Callable, jobs: Sequence, shared=None, *, workers: int = 1, device="cpu",
             backend: str | None = None) -> list:
    """``[fn(job, shared) for job in jobs]``, in order, with ``workers`` in parallel.

    ``backend`` ``"process"`` (default on CPU): a fork-based process pool, one torch thread per worker; ``shared``
    (e.g. the FeatureSets) is inherited through fork rather than pickled, jobs and results are pickled.
    ``"thread"`` (default on CUDA, where forking after CUDA initialisation is unsafe): a thread pool.
    """
    jobs = list(jobs)
    if workers <= 1 or len(jobs) <= 1:
        return [fn(job, shared) for job in jobs]
    workers = min(workers, len(jobs))
    backend = backend or ("thread" if torch.device(device).type == "cuda" else "process")
    if backend not in ("process", "thread"):
        raise ValueError(f"run_jobs: backend must be 'process' or 'thread', got {backend!r}")
    if backend == "thread":
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda job: fn(job, shared), jobs))
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(fn, shared)) as pool:
        return list(pool.map(_call_worker, jobs))


def _finetune_job(job: dict, features: dict[str, FeatureSet]) -> dict:
    """One fine-tuning run → one result row (``job`` holds the row's grid columns and the run's inputs)."""
    fs = features[job["view"]]
    data, idx, config = job["data"], job["subset"], job["config"]
    train_ids = [data.train_ids[i] for i in idx] if idx is not None else data.train_ids
    train_labels = [data.train_labels[i] for i in idx] if idx is not None else data.train_labels
    common = dict(config=config, device=job["device"], test_ids=data.test_ids, test_labels=data.test_labels)
    if job["encoder"] is None:
        result = supervised_baseline(fs, train_ids, train_labels, data.val_ids, data.val_labels,
                                     norm_ids=data.pool_train, **common)
    else:
        result = finetune(job["encoder"], fs, train_ids, train_labels, data.val_ids, data.val_labels, **common)
    row = {k: v for k, v in job.items() if k not in ("data", "subset", "config", "encoder", "device")}
    row.update({k: result.metrics[k] for k in ("val_uar", "val_wa", "test_uar", "test_wa", "best_epoch")})
    row["n_labels"] = len(train_ids)
    return row


def _table(rows: list[dict], grid_cols: Sequence[str]) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    extra = [c for c in table.columns if c not in RESULT_COLUMNS and c not in grid_cols]
    return table[RESULT_COLUMNS + list(grid_cols) + extra]


def _folds(splits: pd.DataFrame, folds) -> list[int]:
    return sorted(splits["fold"].unique()) if folds is None else list(folds)


def pretrain_fold(features: dict[str, FeatureSet], data: FoldData, config: PretrainConfig | None = None,
                  device="cpu", pool: tuple[list, list] | None = None) -> dict:
    """Pairwise-CL encoders (view → module) of one fold, pre-trained on its pool (or ``pool`` = (train, val) ids,
    which must come from the fold's pool)."""
    train, val = pool if pool is not None else (data.pool_train, data.pool_val)
    outside = sorted(set(train) - set(data.pool_train)) + sorted(set(val) - set(data.pool_val))
    if outside:
        raise LeakageError(f"fold {data.fold}: {len(outside)} pre-training id(s) outside the fold's training/"
                           f"validation pool: {outside[:5]}")
    return pretrain_pairwise(features, train, val, config=config or PretrainConfig(), device=device).encoders


def _pretrain_job(job: dict, features: dict[str, FeatureSet]) -> dict:
    return pretrain_fold(features, job["data"], job["config"], job["device"], job.get("pool"))


def pretrain_many(features: dict[str, FeatureSet], requests: Sequence[dict], *, device="cpu",
                  workers: int = 1) -> list[dict]:
    """``pretrain_fold`` for each request (``data``, ``config``, optional ``pool``), ``workers`` in parallel.

    The folds' pre-training runs are independent, so on CPU one process per core (one torch thread each) beats
    one process with several threads for these small encoders.
    """
    jobs = [dict(r, device=device) for r in requests]
    return run_jobs(_pretrain_job, jobs, features, workers=workers, device=device)


# ---- grids --------------------------------------------------------------------------------------------------

def temperature_grid(manifest, task, splits, features: dict[str, FeatureSet], *,
                     temperatures: Sequence[float] = (0.1, 0.25, 0.5, 1.0), views: Sequence[str] | None = None,
                     folds: Sequence[int] | None = None, repetitions: int = 1,
                     pretrain_config: PretrainConfig | None = None, finetune_config: FinetuneConfig | None = None,
                     device="cpu", workers: int = 1, label_col: str = "emotion") -> pd.DataFrame:
    """Tables 1/2/4: pre-train with each τ, fine-tune frozen and tuned with all labels, plus supervised rows.

    Pre-training runs once per fold × τ; fine-tuning (and the supervised baseline) is repeated ``repetitions``
    times with seeds ``finetune_config.seed + r`` (the paper: one run per fold).
    Grid columns ``temperature`` (NaN for supervised), ``frozen``; also ``best_epoch``, ``n_labels``.
    """
    pretrain_config, finetune_config = pretrain_config or PretrainConfig(), finetune_config or FinetuneConfig()
    views = list(views or features)
    datas = [fold_data(manifest, task, splits, fold, label_col=label_col) for fold in _folds(splits, folds)]
    requests = [dict(data=data, config=replace(pretrain_config, temperature=tau))
                for data in datas for tau in temperatures]
    pretrained = iter(pretrain_many(features, requests, device=device, workers=workers))
    encoders = {(data.fold, tau): next(pretrained) for data in datas for tau in temperatures}
    jobs = []
    for data in datas:
        for rep in range(repetitions):
            seed = finetune_config.seed + rep
            config = replace(finetune_config, seed=seed)
            base = dict(fold=data.fold, repetition=rep, seed=seed, data=data, subset=None, device=device)
            for view in views:
                jobs.append(dict(base, view=view, condition=SUPERVISED, temperature=np.nan, frozen=False,
                                 encoder=None, config=config))
            for tau in temperatures:
                for view in views:
                    for frozen in (False, True):
                        jobs.append(dict(base, view=view, condition=PRETRAINED, temperature=tau, frozen=frozen,
                                         encoder=encoders[data.fold, tau][view],
                                         config=replace(config, frozen=frozen)))
    rows = run_jobs(_finetune_job, jobs, features, workers=workers, device=device)
    return _table(rows, ["temperature", "frozen"])


def _sparse_jobs(data: FoldData, encoders_by_source: dict, views, fractions, repetitions, config, device,
                 include_supervised: bool) -> list[dict]:
    jobs = []
    for fraction in fractions:
        for rep in range(repetitions):
            seed = config.seed + rep
            base = dict(fold=data.fold, repetition=rep, seed=seed, fraction=fraction, data=data, device=device,
                        subset=sparse_subset(data.train_ids, data.train_labels, fraction, seed),
                        config=replace(config, seed=seed))
            for view in views:
                if include_supervised:
                    jobs.append(dict(base, view=view, condition=SUPERVISED, pretrain_data="none", frozen=False,
                                     encoder=None))
                for source, encoders in encoders_by_source.items():
                    jobs.append(dict(base, view=view, condition=PRETRAINED, pretrain_data=source,
                                     frozen=config.frozen, encoder=encoders[view]))
    return jobs


def sparse_label_grid(manifest, task, splits, features: dict[str, FeatureSet], *,
                      fractions: Sequence[float] = (0.02, 0.05, 0.10, 0.25), repetitions: int = 10,
                      views: Sequence[str] | None = None, folds: Sequence[int] | None = None,
                      pretrain_config: PretrainConfig | None = None, finetune_config: FinetuneConfig | None = None,
                      device="cpu", workers: int = 1, label_col: str = "emotion",
                      pretrained: dict | None = None) -> pd.DataFrame:
    """Figure 3: per fold, pre-train once, then fine-tune on p% of each class (≥1) vs supervised from scratch.

    Repetition r of a fraction draws its labelled subset with seed ``finetune_config.seed + r`` (shared by both
    conditions and all views, so comparisons are paired). ``pretrained`` (fold → view → encoder, e.g. from the
    temperature grid) skips pre-training for the folds it has. Grid columns ``fraction``, ``frozen``,
    ``pretrain_data`` (``all``/``none``); also ``n_labels``, ``best_epoch``.
    """
    pretrain_config, finetune_config = pretrain_config or PretrainConfig(), finetune_config or FinetuneConfig()
    views = list(views or features)
    datas = [fold_data(manifest, task, splits, fold, label_col=label_col) for fold in _folds(splits, folds)]
    todo = [data for data in datas if not (pretrained or {}).get(data.fold)]
    trained = pretrain_many(features, [dict(data=d, config=pretrain_config) for d in todo], device=device,
                            workers=workers)
    encoders_by_fold = {**(pretrained or {}), **{d.fold: enc for d, enc in zip(todo, trained)}}
    jobs = []
    for data in datas:
        jobs += _sparse_jobs(data, {"all": encoders_by_fold[data.fold]}, views, fractions, repetitions,
                             finetune_config, device, True)
    rows = run_jobs(_finetune_job, jobs, features, workers=workers, device=device)
    return _table(rows, ["fraction", "frozen", "pretrain_data"])


def target_vs_ood(manifest, task, splits, features: dict[str, FeatureSet], *,
                  fractions: Sequence[float] = (0.02, 0.05, 0.10, 0.25), repetitions: int = 10,
                  views: Sequence[str] | None = None, folds: Sequence[int] | None = None,
                  pretrain_config: PretrainConfig | None = None, finetune_config: FinetuneConfig | None = None,
                  device="cpu", workers: int = 1, include_supervised: bool = False,
                  label_col: str = "emotion") -> pd.DataFrame:
    """Figure 4: pre-train on the training groups' task (target-emotion) utterances vs the others (OOD), then
    fine-tune both with sparse labels. ``pretrain_data`` is ``target`` or ``ood`` (``none`` for supervised rows).
    """
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
            requests.append(dict(data=data, config=pretrain_config, pool=pool, source=source))
    trained = pretrain_many(features, requests, device=device, workers=workers)
    jobs = []
    for data in datas:
        encoders = {r["source"]: enc for r, enc in zip(requests, trained) if r["data"] is data}
        jobs += _sparse_jobs(data, encoders, views, fractions, repetitions, finetune_config, device,
                             include_supervised)
    rows = run_jobs(_finetune_job, jobs, features, workers=workers, device=device)
    return _table(rows, ["fraction", "frozen", "pretrain_data"])


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
