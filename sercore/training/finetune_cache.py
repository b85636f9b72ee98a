"""Fine-tuning results on disk, so a run that was done before (by this grid or by another notebook) is read back.

Notebooks repeat each other's runs: the cross-corpus grid (09) fine-tunes the target-pre-trained encoders and
the supervised baselines exactly as the sparse-label grid (03) does, and a notebook run again after a change to
its figure repeats its whole grid. An entry is ``cache_dir()/finetuned/<key[:2]>/<key>.json`` (JSON: nothing is
unpickled) holding what a :class:`~sercore.training.jobs.FinetuneJob` computed (metrics, ``best_epoch``,
``epochs_run``, ``steps``, ``n_labels``, the per-epoch validation UAR) and the node it ran on. The key hashes
everything that decides that result: the view's feature entry (folder and data digest), the encoder's class,
config and weights (none for the supervised baseline), the fold's ids and labels, the labelled subset, the
config, the device, the versions of torch, NumPy and scikit-learn, and the source code of training
(``CODE_MODULES``). Jobs whose features are not from the feature cache are never cached.

Each entry is written atomically as soon as its run ends, so an interrupted grid resumes with the runs it had
finished. Two processes running the same grid at once may both train a run and write the same entry (no lock:
the result is the same, and a reader only ever sees a complete file). ``SERCORE_RESULT_CACHE=0`` turns the
cache off (the benchmarks do, to time the training itself).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import sklearn
import torch

from sercore.core.atomic import atomic_write_json
from sercore.core.config import cache_dir
from sercore.core.precision import resolve_precision
from sercore.engine import Outcome, as_engine
from sercore.training.jobs import FinetuneJob
from sercore.training.pretrain_cache import feature_entry, modules_digest

CODE_MODULES = ("sercore.training.loops", "sercore.training.finetune", "sercore.models.encoders",
                "sercore.features.featureset",
                "sercore.core.precision", "sercore.training.jobs", "sercore.analysis.stats",
                "sercore.training.finetune_cache")
VERSION = 1
ENV = "SERCORE_RESULT_CACHE"


def enabled() -> bool:
    """False when ``$SERCORE_RESULT_CACHE`` is ``0``/``false``/``off``."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "off", "no")


def folder() -> Path:
    """Where the entries live: ``cache_dir()/finetuned``."""
    return cache_dir() / "finetuned"


def module_digest(module: torch.nn.Module | None) -> str | None:
    """Digest of a module's class, config and state (names, dtypes, shapes and bytes of every tensor)."""
    if module is None:
        return None
    h = hashlib.blake2b(digest_size=16)
    config = getattr(module, "config", None)
    h.update(f"{type(module).__module__}.{type(module).__qualname__}\0{config!r}\0".encode())
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def job_key(job, features: dict, digests: dict | None = None) -> str | None:
    """Key of a fine-tuning job's result, or None when it cannot be cached (another job type, in-memory
    features). ``digests`` (id(encoder) → digest) saves hashing an encoder shared by many jobs again."""
    if not isinstance(job, FinetuneJob) or job.view not in features or not is_dataclass(job.data):
        return None
    entry = feature_entry(features[job.view])
    if entry is None:
        return None
    digests = {} if digests is None else digests
    if id(job.encoder) not in digests:
        digests[id(job.encoder)] = module_digest(job.encoder)
    record = {"features": entry, "view": job.view, "encoder": digests[id(job.encoder)], "data": asdict(job.data),
              "subset": None if job.subset is None else [int(i) for i in job.subset], "config": asdict(job.config),
              "device": str(job.device), "precision_used": resolve_precision(job.config.precision, job.device)[0],
              "versions": [torch.__version__, np.__version__, sklearn.__version__],
              "code": modules_digest(CODE_MODULES), "version": VERSION}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _path(key: str) -> Path:
    return folder() / key[:2] / f"{key}.json"


def read(key: str) -> Outcome | None:
    """The stored outcome of ``key`` (its ``value`` without the job's ``row``), or None when absent or unreadable."""
    try:
        entry = json.loads(_path(key).read_text())
        if entry.get("key") != key:
            return None
        return Outcome(dict(entry["result"]), str(entry["node"]), float(entry["seconds"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # absent or damaged: the run is done again and the entry rewritten


def write(key: str, job, outcome: Outcome) -> None:
    """Store what ``job`` computed (``outcome.value`` less the job's own ``row`` and view) under ``key``."""
    path = _path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"key": key, "result": _computed(job, outcome.value), "node": outcome.node,
                             "seconds": outcome.seconds})


def _computed(job, value: dict) -> dict:
    """What a run computed: its result row less the job's own ``row`` and view."""
    given = set(job.row) | {"view"}
    return {k: v for k, v in value.items() if k not in given}


def run_cached(engine, jobs: Sequence, features) -> list[Outcome]:
    """``engine.map(jobs, features)``, reading the fine-tuning runs done before from the cache and storing the
    new ones as they end; identical jobs in ``jobs`` run once. Outcomes in job order; prints how many were read."""
    engine = as_engine(engine)
    if not enabled():
        return engine.map(jobs, features)
    digests: dict = {}
    keys = [job_key(job, features or {}, digests) for job in jobs]
    stored = {k: read(k) for k in dict.fromkeys(k for k in keys if k is not None)}
    todo, first = [], {}  # the jobs to run: uncacheable ones, and the first job of each missing key
    for i, key in enumerate(keys):
        if key is None:
            todo.append(i)
        elif stored[key] is None and key not in first:
            first[key] = i
            todo.append(i)

    def done(n: int, outcome: Outcome) -> None:
        if keys[todo[n]] is not None:
            write(keys[todo[n]], jobs[todo[n]], outcome)

    ran = dict(zip(todo, engine.map([jobs[i] for i in todo], features, on_done=done))) if todo else {}
    for key, i in first.items():
        stored[key] = Outcome(_computed(jobs[i], ran[i].value), ran[i].node, ran[i].seconds)
    reused = [i for i, k in enumerate(keys) if k is not None and i not in ran]
    twins = sum(1 for i in reused if keys[i] in first)
    if reused:
        print(f"fine-tuning: {len(reused) - twins} of {len(jobs)} runs read from the result cache ({folder()}), "
              f"{twins} identical to another run of these")
    return [ran[i] if i in ran else _with_row(jobs[i], stored[keys[i]]) for i in range(len(jobs))]


def _with_row(job, outcome: Outcome) -> Outcome:
    """A stored outcome with the job's own ``row`` and view put back in front, as ``FinetuneJob.run`` orders them."""
    return Outcome({**job.row, "view": job.view, **outcome.value}, outcome.node, outcome.seconds)
