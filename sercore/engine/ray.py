"""Engine ``ray``: one Ray core task per job, with the job's resources.

``address`` joins a running cluster (``"auto"``, ``"head-node:6379"``); none starts a local one. Each Ray worker
runs :func:`sercore.engine.base.warm_up_worker` when it starts (the ``worker_process_setup_hook``; the modules to
preload travel in ``$SERCORE_ENGINE_PRELOAD``), so sercore must be importable on every node. Features reach the
tasks by reference (``transport="path"``: a cached FeatureSet as its folder, on a filesystem every node sees) or
through Ray's object store (``"object_store"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from sercore.engine.base import (
    PRELOAD_ENV,
    Engine,
    Job,
    Outcome,
    collect,
    costliest_first,
    execute,
    feature_refs,
    job_cpus,
    job_threads,
    open_features,
)

_DRIVER: dict = {}


@dataclass(frozen=True)
class RayObject:
    """A value in Ray's object store, fetched once per worker."""

    ref: Any

    def __hash__(self) -> int:
        return hash(self.ref.hex())

    def reopen(self):
        import ray

        return ray.get(self.ref)


def _ray_task(job: Job, payload) -> Outcome:
    import ray

    with job_threads(job_cpus([job])):
        return execute(job, open_features(payload), node=ray.get_runtime_context().get_node_id())


class RayEngine(Engine):
    """Jobs as Ray core tasks. ``address``: a running cluster to join (``"auto"``, ``"host:6379"``,
    ``"ray://host:10001"``); None starts a local Ray (``num_cpus``/``num_gpus`` cap it). ``transport``:
    ``"path"`` sends values by their ``engine_ref()`` (every node must see the cache), ``"object_store"`` puts
    them into Ray's object store once per run. ``preload``: modules each new worker imports. Other keyword
    arguments go to ``ray.init``.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, transport: str = "path", num_cpus: int | None = None,
                 num_gpus: int | None = None, preload: Sequence[str] = (), **init_kw):
        if transport not in ("path", "object_store"):
            raise ValueError(f"ray engine: transport must be 'path' or 'object_store', got {transport!r}")
        self.address, self.transport, self.preload = address, transport, tuple(preload)
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
            kw.setdefault("runtime_env", {"worker_process_setup_hook": "sercore.engine.base.warm_up_worker",
                                          "env_vars": {PRELOAD_ENV: ",".join(self.preload)}})
            kw.setdefault("log_to_driver", False)
            ray.init(address=self.address, **kw)
        return ray

    def describe(self) -> dict:
        ray = self._ray()
        return {"engine": self.name, "address": self.address, "transport": self.transport,
                "nodes": len([n for n in ray.nodes() if n.get("Alive")]), "resources": ray.cluster_resources()}

    def _payload(self, ray, features):
        def put(value):
            if value is None:
                return None
            ref = feature_refs(value)
            return ref if self.transport == "path" and ref is not value else RayObject(ray.put(value))

        return {k: put(v) for k, v in features.items()} if isinstance(features, dict) else put(features)

    def map(self, jobs, features=None, *, on_done=None) -> list[Outcome]:
        ray = self._ray()
        if "ray_task" not in _DRIVER:  # registered once per driver process
            _DRIVER["ray_task"] = ray.remote(_ray_task)
        task = _DRIVER["ray_task"]
        payload = self._payload(ray, features)
        pending = {task.options(**jobs[i].resources()).remote(jobs[i], payload): i for i in costliest_first(jobs)}

        def finished():
            waiting = list(pending)
            while waiting:
                ready, waiting = ray.wait(waiting, num_returns=1)
                yield pending[ready[0]], ray.get(ready[0])

        return collect(finished(), len(pending), on_done)
