"""Engine ``local``: jobs in worker processes on this machine (threads when a job uses CUDA).

Start method: ``fork`` where it is safe (Linux, CPU), ``spawn`` on macOS and whenever
``SERCORE_START_METHOD=spawn``. Under fork the workers inherit the run's features; otherwise values with an
``engine_ref()`` travel as their reference (a cached FeatureSet as its folder) and the rest is pickled once per
worker. Workers die with their parent (``PR_SET_PDEATHSIG`` on Linux, a parent-pid watch elsewhere).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Sequence

from sercore.core.config import usable_cores
from sercore.engine.base import (
    Engine,
    Job,
    Outcome,
    collect,
    costliest_first,
    die_with_parent,
    execute,
    feature_refs,
    job_cpus,
    job_threads,
    open_features,
    preload,
    warm_up_worker,
)

START_METHOD_ENV = "SERCORE_START_METHOD"

_WORKER: dict = {}


def start_method() -> str:
    """``$SERCORE_START_METHOD`` when set, else ``fork`` on Linux and ``spawn`` elsewhere (macOS, Windows)."""
    chosen = os.environ.get(START_METHOD_ENV, "").strip()
    if chosen:
        if chosen not in ("fork", "spawn", "forkserver"):
            raise ValueError(f"{START_METHOD_ENV} must be fork, spawn or forkserver, got {chosen!r}")
        return chosen
    return "fork" if sys.platform.startswith("linux") else "spawn"


def parent_pid(method: str) -> int | None:
    """The pid a pool worker started with ``method`` has as parent: this process, except under forkserver."""
    return None if method == "forkserver" else os.getpid()


def _init_local_worker(payload, parent: int | None, modules: Sequence[str]) -> None:
    die_with_parent(parent)
    warm_up_worker(modules)
    _WORKER["features"] = open_features(payload)


def _run_in_worker(job: Job) -> Outcome:
    with job_threads(job_cpus([job])):
        return execute(job, _WORKER["features"])


class LocalEngine(Engine):
    """Jobs on this machine: ``workers`` processes (one torch thread each) on CPU, threads when a job uses CUDA.

    ``workers`` default: the usable cores; 1 runs the jobs here, one after another. ``backend`` forces
    ``"process"`` or ``"thread"``; ``start_method`` overrides :func:`start_method`; ``preload``: modules imported
    before the first job (by this process before it forks, else by each worker).
    """

    name = "local"

    def __init__(self, workers: int | None = None, *, backend: str | None = None, start_method: str | None = None,
                 preload: Sequence[str] = ()):
        if backend not in (None, "process", "thread"):
            raise ValueError(f"local engine: backend must be 'process' or 'thread', got {backend!r}")
        self.workers = usable_cores() if workers is None else int(workers)
        if self.workers < 1:
            raise ValueError(f"local engine: workers must be >= 1, got {workers}")
        self.backend, self.start_method, self.preload = backend, start_method, tuple(preload)

    def describe(self) -> dict:
        return {"engine": self.name, "workers": self.workers, "start_method": self.start_method or start_method(),
                "host": socket.gethostname(), "usable_cores": usable_cores()}

    def map(self, jobs, features=None, *, on_done=None) -> list[Outcome]:
        jobs = list(jobs)
        workers = min(self.workers, len(jobs))
        if workers <= 1:  # here, one after another, with the threads a worker would have
            with job_threads(job_cpus(jobs)):
                return collect(((i, execute(job, features)) for i, job in enumerate(jobs)), len(jobs), on_done)
        backend = self.backend or ("thread" if any(job.uses_cuda() for job in jobs) else "process")
        if backend == "thread":
            with job_threads(job_cpus(jobs)), ThreadPoolExecutor(workers) as pool:
                futures = {pool.submit(execute, jobs[i], features): i for i in costliest_first(jobs)}
                return collect(((futures[f], f.result()) for f in as_completed(futures)), len(jobs), on_done)
        method = self.start_method or start_method()
        if method == "fork":
            preload(self.preload)  # once here, inherited by every worker of every pool
        payload = features if method == "fork" else feature_refs(features)  # fork: inherited, not pickled
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                                   initializer=_init_local_worker,
                                   initargs=(payload, parent_pid(method), self.preload))
        try:
            futures = {pool.submit(_run_in_worker, jobs[i]): i for i in costliest_first(jobs)}
            return collect(((futures[f], f.result()) for f in as_completed(futures)), len(jobs), on_done)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
