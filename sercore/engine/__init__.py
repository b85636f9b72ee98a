"""One job engine for both papers: jobs run in local worker processes (default) or on a Ray cluster.

A job (:class:`Job`) is a small picklable object with ``run(features)`` (its work, given what the run shares,
e.g. FeatureSets by view), ``resources()`` (CPUs, a GPU fraction) and ``cost()``; each job type lives beside the
code it runs. ``get_engine("local" | "ray", **options)`` returns an engine whose ``run(jobs, features)`` returns
the jobs' results in job order (``map`` also gives where and how long each ran). The engine imports nothing of
sercore but ``sercore.core``: what workers preload is passed to it (``preload=``).
"""

from __future__ import annotations

from typing import Sequence

from sercore.engine.base import (
    PRELOAD_ENV,
    CallJob,
    Engine,
    Job,
    Outcome,
    costliest_first,
    die_with_parent,
    execute,
    feature_refs,
    open_features,
    preload,
    warm_up_worker,
)
from sercore.engine.local import START_METHOD_ENV, LocalEngine, parent_pid, start_method
from sercore.engine.ray import RayEngine

_ENGINES = {"local": LocalEngine, "ray": RayEngine}


def available_engines() -> list[str]:
    """Names accepted by :func:`get_engine`."""
    return sorted(_ENGINES)


def get_engine(name: str = "local", **options) -> Engine:
    """An engine by name: ``local`` (options: ``workers``, ``backend``, ``start_method``, ``preload``) or ``ray``
    (``address``, ``transport``, ``num_cpus``, ``num_gpus``, ``preload``, other ``ray.init`` options)."""
    if name not in _ENGINES:
        raise KeyError(f"unknown engine {name!r}; known: {available_engines()}")
    return _ENGINES[name](**options)


def as_engine(engine=None, *, workers: int | None = 1, address: str | None = None,
              preload: Sequence[str] = ()) -> Engine:
    """An Engine from a grid's arguments: an Engine as is, or a name (default ``"local"`` with ``workers``
    processes; ``"ray"`` joins ``address``), built with ``preload``."""
    if isinstance(engine, Engine):
        return engine
    name = engine or "local"
    if name == "ray":
        return get_engine("ray", address=address, preload=preload)
    return get_engine(name, workers=workers, preload=preload)


__all__ = ["Engine", "Job", "CallJob", "LocalEngine", "RayEngine", "Outcome", "available_engines", "get_engine",
           "as_engine", "costliest_first", "start_method", "warm_up_worker", "preload", "die_with_parent",
           "parent_pid", "feature_refs", "open_features", "execute", "PRELOAD_ENV", "START_METHOD_ENV"]
