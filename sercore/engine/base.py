"""What every engine shares: the ``Job`` protocol, ``Outcome``, running a job, and moving features to workers.

The engine knows nothing of training or of the feature cache. A job is a picklable object with ``run(features)``,
``resources()`` and ``cost()``. What a run's ``features`` hold travels to workers as is, except values that offer
``engine_ref()``: they travel as the small reference it returns, and a worker calls the reference's
``reopen()`` once per process (a cached FeatureSet travels as its folder and is reopened memory-mapped).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

PRELOAD_ENV = "SERCORE_ENGINE_PRELOAD"  # comma-separated modules a new worker imports (Ray's setup hook reads it)


class Job:
    """Base of every job: one CPU, no GPU, cost 1."""

    device = "cpu"

    def run(self, features) -> Any:
        raise NotImplementedError

    def resources(self) -> dict:
        """Ray task options: ``num_cpus`` and, on CUDA, ``num_gpus``."""
        return {"num_cpus": 1, "num_gpus": 1} if self.uses_cuda() else {"num_cpus": 1}

    def uses_cuda(self) -> bool:
        return str(self.device).startswith("cuda")

    def cost(self) -> float:
        """Relative cost among the jobs of one run (parallel engines start the costliest first)."""
        return 1.0


@dataclass
class CallJob(Job):
    """``fn(arg, features)`` (``fn`` must be importable by name)."""

    fn: Callable
    arg: Any

    def run(self, features):
        return self.fn(self.arg, features)


@dataclass
class Outcome:
    """A job's result and where it ran: ``node`` (Ray node id, or ``host:pid`` locally), wall ``seconds``."""

    value: Any
    node: str
    seconds: float


@contextlib.contextmanager
def job_threads(n: int):
    """Run the block with ``n`` torch threads and ``n`` BLAS/OpenMP threads, then restore the previous counts.

    A job computes the same bits wherever it runs only with the same thread count: reductions (BatchNorm's
    statistics, convolutions' accumulations) are split differently over 1 and 2 threads. Every engine runs a job
    with the ``num_cpus`` it declares, also when it runs in the calling process."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def job_cpus(jobs: Sequence[Job]) -> int:
    """The CPUs each of ``jobs`` declares (the most of them), at least 1."""
    return max([int(job.resources().get("num_cpus", 1)) for job in jobs] or [1])


def execute(job: Job, features, node: str | None = None) -> Outcome:
    """Run one job here and time it (the caller sets its threads: :func:`job_threads`)."""
    start = time.perf_counter()
    value = job.run(features)
    return Outcome(value, node or f"{socket.gethostname()}:{os.getpid()}", time.perf_counter() - start)


def _ref(value):
    make = getattr(value, "engine_ref", None)
    ref = make() if callable(make) else None
    return value if ref is None else ref


def feature_refs(features):
    """What workers receive when nothing is inherited: values with an ``engine_ref()`` as that reference."""
    if isinstance(features, dict):
        return {k: _ref(v) for k, v in features.items()}
    return _ref(features)


_OPENED: dict = {}  # per worker process: references reopened so far


def _open_one(value):
    if callable(getattr(value, "reopen", None)):
        if value not in _OPENED:
            _OPENED[value] = value.reopen()
        return _OPENED[value]
    return value


def open_features(payload):
    """The inverse of :func:`feature_refs` (in a worker): each reference reopened once per process."""
    if isinstance(payload, dict):
        return {k: _open_one(v) for k, v in payload.items()}
    return _open_one(payload)


def preload(modules: Sequence[str]) -> None:
    """Import ``modules`` (names); ``torch._dynamo`` is worth naming: ``torch.optim`` imports it on first use
    (1-2 s with sympy), which would otherwise land in a worker's first job."""
    for name in modules:
        importlib.import_module(name)


def warm_up_worker(modules: Sequence[str] | None = None) -> None:
    """Get a new worker process ready for its first job: one torch thread, one BLAS/OpenMP thread (a forked
    worker inherits its parent's thread pools; two workers spinning two threads each on two cores ran CCA jobs
    4× slower), then :func:`preload` of ``modules`` (default: ``$SERCORE_ENGINE_PRELOAD``)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)  # for the rest of the worker's life
    if modules is None:
        modules = [m for m in os.environ.get(PRELOAD_ENV, "").split(",") if m]
    preload(modules)


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


class Engine:
    """Runs jobs; ``run`` returns their values in job order, ``map`` their :class:`Outcome` s. ``preload``:
    modules each worker imports before its first job."""

    name = "engine"
    preload: tuple[str, ...] = ()

    def map(self, jobs: Sequence[Job], features=None, *,
            on_done: Callable[[int, Outcome], None] | None = None) -> list[Outcome]:
        raise NotImplementedError

    def run(self, jobs: Sequence[Job], features=None, **kw) -> list:
        """The jobs' results, in job order."""
        return [o.value for o in self.map(jobs, features, **kw)]

    def describe(self) -> dict:
        """Engine name and resources, for ``params.json``."""
        return {"engine": self.name}


def costliest_first(jobs: Sequence[Job]) -> list[int]:
    """Job positions by falling ``cost()`` (ties in job order): parallel engines start the long jobs first, so
    that the last ones to finish, while other workers may idle, are short."""
    return sorted(range(len(jobs)), key=lambda i: -jobs[i].cost())


def collect(done, n: int, on_done) -> list[Outcome]:
    """``(position, outcome)`` pairs as they finish → outcomes in job order, calling ``on_done`` for each."""
    out = [None] * n
    for i, outcome in done:
        out[i] = outcome
        if on_done:
            on_done(i, outcome)
    return out
