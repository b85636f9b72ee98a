"""One job engine for both papers: typed jobs run in local worker processes (default) or on a Ray cluster.

A job is a small dataclass with ``run(features)`` (its work, given the FeatureSets by view) and ``resources()``
(what it needs: CPUs, a GPU fraction). ``get_engine("local" | "ray", **options)`` returns an engine whose
``run(jobs, features)`` returns the jobs' results in job order (``map`` also gives where and how long each ran).

Engine ``local`` (default): one process per usable core with one torch thread each on CPU, threads on CUDA.
Start method: ``fork`` where it is safe (Linux, CPU), ``spawn`` on macOS and whenever
``SERCORE_START_METHOD=spawn``. Under spawn nothing is inherited: a FeatureSet read from the feature cache
travels as its folder and is reopened memory-mapped in the worker; others (built in memory) are pickled once
per worker. Workers die with their parent (``PR_SET_PDEATHSIG`` on Linux, a parent-pid watch elsewhere).

Engine ``ray``: Ray core tasks, one per job, with the job's resources; ``address`` joins a running cluster (e.g.
``"auto"`` or ``"head-node:6379"``), none starts a local one. Each Ray worker runs :func:`warm_up_worker` when it
starts (the job's ``worker_process_setup_hook``), so sercore must be importable on every node. Features reach the
tasks by cache path (``transport="path"``, a filesystem every node sees) or through Ray's object store
(``"object_store"``).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..config import usable_cores
from ..featureset import FeatureSet
from .jobs import Job

START_METHOD_ENV = "SERCORE_START_METHOD"


@dataclass
class Outcome:
    """A job's result and where it ran: ``node`` (Ray node id, or ``host:pid`` locally), wall ``seconds``."""

    value: Any
    node: str
    seconds: float


def start_method() -> str:
    """``$SERCORE_START_METHOD`` when set, else ``fork`` on Linux and ``spawn`` elsewhere (macOS, Windows)."""
    chosen = os.environ.get(START_METHOD_ENV, "").strip()
    if chosen:
        if chosen not in ("fork", "spawn", "forkserver"):
            raise ValueError(f"{START_METHOD_ENV} must be fork, spawn or forkserver, got {chosen!r}")
        return chosen
    return "fork" if sys.platform.startswith("linux") else "spawn"


# ---- worker side ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeatureRef:
    """A cached FeatureSet by its cache folder; workers reopen it memory-mapped (``sercore.cache.load_cached``)."""

    folder: str


_OPENED: dict = {}  # per worker process: what has been opened (cache folders, Ray objects)
_WORKER: dict = {}


def die_with_parent(parent: int | None = None) -> None:
    """Make this (worker) process end when its parent does, even after ``kill -9`` of the parent.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; elsewhere a daemon thread checks the parent pid every second.
    """
    parent = parent or os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0:  # 1 = PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the parent died before the call
                os._exit(1)
            return

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="sercore-parent-watch", daemon=True).start()


def parent_pid(method: str) -> int | None:
    """The pid a pool worker started with ``method`` has as parent: this process, except under forkserver."""
    return None if method == "forkserver" else os.getpid()


def _ref(value):
    if isinstance(value, FeatureSet) and isinstance(value.data, np.memmap) and value.meta.get("folder"):
        if Path(value.data.filename).resolve() == (Path(value.meta["folder"]) / "data.npy").resolve():
            return FeatureRef(str(value.meta["folder"]))
    return value


def feature_refs(features):
    """What workers receive under spawn: cached FeatureSets as :class:`FeatureRef`, anything else as is."""
    if isinstance(features, dict):
        return {k: _ref(v) for k, v in features.items()}
    return _ref(features)


def _open_one(value):
    if isinstance(value, FeatureRef):
        if value not in _OPENED:
            from ..cache import load_cached

            _OPENED[value] = load_cached(value.folder)
        return _OPENED[value]
    if type(value).__name__ == "ObjectRef":  # Ray transport "object_store"
        key = value.hex()
        if key not in _OPENED:
            import ray

            _OPENED[key] = ray.get(value)
        return _OPENED[key]
    return value


def open_features(payload):
    """The inverse of :func:`feature_refs` (in a worker): folders and Ray objects opened, once per process."""
    if isinstance(payload, dict):
        return {k: _open_one(v) for k, v in payload.items()}
    return _open_one(payload)


def execute(job: Job, features, node: str | None = None) -> Outcome:
    """Run one job here and time it."""
    start = time.perf_counter()
    value = job.run(features)
    return Outcome(value, node or f"{socket.gethostname()}:{os.getpid()}", time.perf_counter() - start)


def _init_local_worker(payload, parent: int | None) -> None:
    die_with_parent(parent)
    warm_up_worker()
    _WORKER["features"] = open_features(payload)


def _run_in_worker(job: Job) -> Outcome:
    return execute(job, _WORKER["features"])


# ---- engines ----------------------------------------------------------------------------------------------

class Engine:
    """Runs jobs; ``run`` returns their values in job order, ``map`` their :class:`Outcome` s."""

    name = "engine"

    def map(self, jobs: Sequence[Job], features=None, *,
            on_done: Callable[[int, Outcome], None] | None = None) -> list[Outcome]:
        raise NotImplementedError

    def run(self, jobs: Sequence[Job], features=None, **kw) -> list:
        """The jobs' results, in job order."""
        return [o.value for o in self.map(jobs, features, **kw)]

    def describe(self) -> dict:
        """Engine name and resources, for ``params.json``."""
        return {"engine": self.name}


class LocalEngine(Engine):
    """Jobs on this machine: ``workers`` processes (one torch thread each) on CPU, threads when a job uses CUDA.

    ``workers`` default: the usable cores; 1 runs the jobs here, one after another. ``backend`` forces
    ``"process"`` or ``"thread"``; ``start_method`` overrides :func:`start_method`.
    """

    name = "local"

    def __init__(self, workers: int | None = None, *, backend: str | None = None, start_method: str | None = None):
        if backend not in (None, "process", "thread"):
            raise ValueError(f"local engine: backend must be 'process' or 'thread', got {backend!r}")
        self.workers = usable_cores() if workers is None else int(workers)
        if self.workers < 1:
            raise ValueError(f"local engine: workers must be >= 1, got {workers}")
        self.backend, self.start_method = backend, start_method

    def describe(self) -> dict:
        return {"engine": self.name, "workers": self.workers, "start_method": self.start_method or start_method(),
                "host": socket.gethostname(), "usable_cores": usable_cores()}

    def map(self, jobs, features=None, *, on_done=None) -> list[Outcome]:
        jobs = list(jobs)
        workers = min(self.workers, len(jobs))
        if workers <= 1:
            return _collect(((i, execute(job, features)) for i, job in enumerate(jobs)), len(jobs), on_done)
        backend = self.backend or ("thread" if any(job.uses_cuda() for job in jobs) else "process")
        if backend == "thread":
            with ThreadPoolExecutor(workers) as pool:
                futures = {pool.submit(execute, jobs[i], features): i for i in costliest_first(jobs)}
                return _collect(((futures[f], f.result()) for f in as_completed(futures)), len(jobs), on_done)
        import multiprocessing

        method = self.start_method or start_method()
        if method == "fork":
            load_training_code()  # once here, not in every worker of every pool
        payload = features if method == "fork" else feature_refs(features)  # fork: inherited, not pickled
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                                   initializer=_init_local_worker, initargs=(payload, parent_pid(method)))
        try:
            futures = {pool.submit(_run_in_worker, jobs[i]): i for i in costliest_first(jobs)}
            return _collect(((futures[f], f.result()) for f in as_completed(futures)), len(jobs), on_done)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def costliest_first(jobs: Sequence[Job]) -> list[int]:
    """Job positions by falling ``cost()`` (ties in job order): parallel engines start the long jobs first, so
    that the last ones to finish, while other workers may idle, are short."""
    return sorted(range(len(jobs)), key=lambda i: -jobs[i].cost())


def _collect(done, n: int, on_done) -> list[Outcome]:
    out = [None] * n
    for i, outcome in done:
        out[i] = outcome
        if on_done:
            on_done(i, outcome)
    return out


def warm_up_worker() -> None:
    """Get a new worker process ready for its first job: one torch thread, one BLAS/OpenMP thread (NumPy, SciPy
    and scikit-learn: a forked worker inherits its parent's thread pools, and two workers each spinning two
    threads on two cores made notebook 06's CCA/CKA jobs 4× slower, measured) and :func:`load_training_code`.
    Ray runs it as the ``worker_process_setup_hook`` of every worker it starts, the local engine in each new
    worker (a forked one finds the code already loaded by its parent)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)  # for the rest of the worker's life
    load_training_code()


def load_training_code() -> None:
    """Import the training code and do ``torch.optim``'s first-use import of ``torch._dynamo`` (1-2 s, with
    sympy), so that a job does not pay them; the local engine does it before it forks its workers."""
    import torch

    from .. import protocols, train  # noqa: F401

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _ray_task(job: Job, payload) -> Outcome:
    import ray
    import torch

    torch.set_num_threads(max(1, int(job.resources().get("num_cpus", 1))))
    return execute(job, open_features(payload), node=ray.get_runtime_context().get_node_id())


class RayEngine(Engine):
    """Jobs as Ray core tasks. ``address``: a running cluster to join (``"auto"``, ``"host:6379"``,
    ``"ray://host:10001"``); None starts a local Ray (``num_cpus``/``num_gpus`` cap it). ``transport``:
    ``"path"`` sends cached features as their folder (every node must see the cache), ``"object_store"`` puts
    them into Ray's object store once per run. Other keyword arguments go to ``ray.init``.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, transport: str = "path", num_cpus: int | None = None,
                 num_gpus: int | None = None, **init_kw):
        if transport not in ("path", "object_store"):
            raise ValueError(f"ray engine: transport must be 'path' or 'object_store', got {transport!r}")
        self.address, self.transport = address, transport
        self.init_kw = dict(init_kw, num_cpus=num_cpus, num_gpus=num_gpus)

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise ImportError("engine 'ray' needs Ray: pip install -e '.[ray]'") from None
        if not ray.is_initialized():
            kw = {k: v for k, v in self.init_kw.items() if v is not None}
            if self.address:
                kw.pop("num_cpus", None), kw.pop("num_gpus", None)  # a running cluster has its own
            kw.setdefault("include_dashboard", False)
            kw.setdefault("runtime_env", {"worker_process_setup_hook": f"{__name__}.warm_up_worker"})
            kw.setdefault("log_to_driver", False)
            ray.init(address=self.address, **kw)
        return ray

    def describe(self) -> dict:
        ray = self._ray()
        return {"engine": self.name, "address": self.address, "transport": self.transport,
                "nodes": len([n for n in ray.nodes() if n.get("Alive")]), "resources": ray.cluster_resources()}

    def _payload(self, ray, features):
        def put(value):
            ref = _ref(value)
            if self.transport == "path" and isinstance(ref, FeatureRef):
                return ref
            return ray.put(value) if isinstance(value, FeatureSet) else value

        return {k: put(v) for k, v in features.items()} if isinstance(features, dict) else put(features)

    def map(self, jobs, features=None, *, on_done=None) -> list[Outcome]:
        ray = self._ray()
        if "ray_task" not in _WORKER:  # registered once per driver process
            _WORKER["ray_task"] = ray.remote(_ray_task)
        task = _WORKER["ray_task"]
        payload = self._payload(ray, features)
        pending = {task.options(**jobs[i].resources()).remote(jobs[i], payload): i for i in costliest_first(jobs)}

        def finished():
            waiting = list(pending)
            while waiting:
                ready, waiting = ray.wait(waiting, num_returns=1)
                yield pending[ready[0]], ray.get(ready[0])

        return _collect(finished(), len(pending), on_done)


_ENGINES = {"local": LocalEngine, "ray": RayEngine}


def available_engines() -> list[str]:
    """Names accepted by :func:`get_engine`."""
    return sorted(_ENGINES)


def get_engine(name: str = "local", **options) -> Engine:
    """An engine by name: ``local`` (options: ``workers``, ``backend``, ``start_method``) or ``ray`` (``address``,
    ``transport``, ``num_cpus``, ``num_gpus``, other ``ray.init`` options)."""
    if name not in _ENGINES:
        raise KeyError(f"unknown engine {name!r}; known: {available_engines()}")
    return _ENGINES[name](**options)


def as_engine(engine=None, *, workers: int | None = 1, address: str | None = None) -> Engine:
    """An Engine from a grid's arguments: an Engine as is, a name (``"ray"`` joins ``address``), or with
    ``engine=None`` the local engine with ``workers`` processes (the grids' former ``workers=``)."""
    if isinstance(engine, Engine):
        return engine
    name = engine or "local"
    if name == "ray":
        return get_engine("ray", address=address)
    return get_engine(name, workers=workers) if name == "local" else get_engine(name)


__all__ = ["Engine", "LocalEngine", "RayEngine", "Outcome", "FeatureRef", "available_engines", "get_engine",
           "as_engine", "costliest_first", "start_method", "warm_up_worker", "load_training_code", "die_with_parent",
           "parent_pid", "feature_refs", "open_features", "execute"]
