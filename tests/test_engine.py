"""The job engine: registry, job order, start methods (fork/spawn), portability, workers dying with their parent,
and engine "ray": the same tables as the local engine, and a two-node cluster simulated on one machine.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from fixtures_grids import cluster_evaluation_corpus, evaluation_configs
from golden import golden

import sercore.engine.base as engine_mod
from sercore.core.config import usable_cores
from sercore.engine import (
    CallJob,
    LocalEngine,
    as_engine,
    available_engines,
    costliest_first,
    feature_refs,
    get_engine,
    start_method,
)
from sercore.engine.ray import RayObject
from sercore.features.cache import extract_features
from sercore.features.featureset import FeatureSet
from sercore.features.store import StoredFeatures
from sercore.pairwise import PairwiseGrid, sparse_label_grid
from sercore.pairwise.pretrain import PretrainConfig
from sercore.training import WORKER_PRELOAD, FinetuneConfig, FinetuneJob, fold_data
from sercore.training.grid import ExperimentData

REPO = Path(__file__).resolve().parents[1]
PRE, FT = PretrainConfig(max_epochs=1, batch_size=32), FinetuneConfig(max_epochs=2)
GRID = PairwiseGrid(fractions=(0.1, 0.5), repetitions=2, views=["fixed"], pretrain=PRE, finetune=FT)


def _sparse_grid(corpus, engine) -> pd.DataFrame:
    """The sparse-label grid ``GRID`` on fold 1 of ``corpus`` (manifest, task, splits, features) on ``engine``."""
    return sparse_label_grid(ExperimentData(*corpus, folds=[1]), replace(GRID, engine=engine))


class MeanView:
    """A fixed-length view (mean, std of the wave) for building a real feature-cache entry."""

    name, variable, parallel, version, params = "meanview", False, True, "1", {}

    def provenance(self):
        return {"source": "test"}

    def extract(self, wave):
        return np.array([wave.mean(), wave.std()])

    def extract_batch(self, waves):
        return [self.extract(w) for w in waves]


@pytest.fixture
def cached(tmp_path):
    """A FeatureSet read back from the feature store, over six short WAV files."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, 0.1 * rng.normal(size=8000 + 1600 * i), 16000)
        rows.append({"utt_id": f"u{i}", "path": str(path)})
    return extract_features(pd.DataFrame(rows), MeanView(), cache_root=tmp_path / "cache", workers=1,
                            progress=False)


def _where(arg, features):
    """What a worker sees: its pid and, for the 'v' view, where its data was read (reopened) from."""
    fs = features["v"] if features else None
    return (os.getpid(), type(fs.source).__name__ if fs is not None else None,
            fs.meta.get("folder") if fs is not None else None, arg)


def _slow_square(arg, features):
    time.sleep(0.2 if arg == 0 else 0.0)  # the first job finishes last
    return arg * arg


def test_registry_and_engine_arguments():
    assert available_engines() == ["local", "ray"]
    with pytest.raises(KeyError, match=r"unknown engine 'mpi'; known: \['local', 'ray'\]"):
        get_engine("mpi")
    assert get_engine("local", workers=3).workers == 3 and get_engine().workers == usable_cores()
    assert as_engine(None, workers=2).workers == 2 and as_engine("local", workers=1).workers == 1
    engine = LocalEngine(2)
    assert as_engine(engine) is engine and engine.describe()["workers"] == 2
    with pytest.raises(ValueError, match="workers"):
        LocalEngine(0)
    with pytest.raises(ValueError, match="transport"):
        get_engine("ray", transport="carrier-pigeon")


def test_start_method_follows_platform_and_environment(monkeypatch):
    monkeypatch.delenv("SERCORE_START_METHOD", raising=False)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert start_method() == "spawn"
    monkeypatch.setattr(sys, "platform", "linux")
    assert start_method() == "fork"
    monkeypatch.setenv("SERCORE_START_METHOD", "spawn")
    assert start_method() == "spawn"
    monkeypatch.setenv("SERCORE_START_METHOD", "threads")
    with pytest.raises(ValueError, match="SERCORE_START_METHOD"):
        start_method()


def test_results_come_back_in_job_order_with_their_nodes():
    jobs = [CallJob(_slow_square, i) for i in range(4)]
    outcomes = LocalEngine(2).map(jobs)
    assert [o.value for o in outcomes] == [0, 1, 4, 9]
    here = f"{os.uname().nodename}:{os.getpid()}"
    assert all(o.node.split(":")[0] == os.uname().nodename and o.node != here for o in outcomes)
    assert [o.node for o in LocalEngine(1).map(jobs)] == [here] * 4  # one worker: run here


def _threads(arg, features):
    import torch
    from threadpoolctl import threadpool_info

    return torch.get_num_threads(), sorted({pool["num_threads"] for pool in threadpool_info()})


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_local_workers_run_one_torch_and_one_blas_thread(method):
    import numpy  # noqa: F401  (its BLAS pool is loaded in the parent, which has more than one core)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2):  # a parent with two BLAS threads, as a notebook kernel on two cores
        seen = LocalEngine(2, start_method=method).run([CallJob(_threads, i) for i in range(2)])
    assert seen == [(1, [1])] * 2


STARTED: list = []


def _record_start(arg, features):
    STARTED.append(arg)
    time.sleep(0.05)
    return arg


@dataclass
class _Sized(CallJob):
    size: float = 1.0

    def cost(self) -> float:
        return self.size


def test_parallel_engines_start_the_costliest_jobs_first():
    jobs = [_Sized(_record_start, i, size=s) for i, s in enumerate([1, 5, 1, 9, 2, 2])]
    assert costliest_first(jobs) == [3, 1, 4, 5, 0, 2]  # ties keep their order
    STARTED.clear()
    assert LocalEngine(2, backend="thread").run(jobs) == list(range(6))  # results in job order
    assert set(STARTED[:2]) == {3, 1} and set(STARTED[-2:]) == {0, 2}
    assert LocalEngine(1).run(jobs) == list(range(6)) and STARTED[-6:] == list(range(6))  # in turn, in order


def test_a_finetune_job_costs_its_labelled_utterances(grid_corpus):
    manifest, task, splits, features = grid_corpus
    data = fold_data(manifest, task, splits, 0)
    assert FinetuneJob("v", data, FinetuneConfig()).cost() == len(data.train_ids)
    assert FinetuneJob("v", data, FinetuneConfig(), subset=[0, 3, 4]).cost() == 3


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_workers_reopen_stored_features(cached, method):
    assert isinstance(feature_refs({"v": cached})["v"], StoredFeatures)
    in_memory = FeatureSet(cached.ids, np.asarray(cached.data), meta=dict(cached.meta))
    assert feature_refs({"v": in_memory})["v"] is in_memory  # no cache folder behind it: sent as is
    seen = LocalEngine(2, start_method=method).run([CallJob(_where, i) for i in range(4)], {"v": cached})
    assert {pid for pid, *_ in seen}.isdisjoint({os.getpid()})
    assert {(kind, name) for _, kind, name, _ in seen} == {("StoredFeatures", cached.meta["folder"])}


def test_spawn_gives_the_same_sparse_grid_as_fork(grid_corpus):
    tables = [_sparse_grid(grid_corpus, LocalEngine(2, start_method=m)) for m in ("fork", "spawn")]
    pd.testing.assert_frame_equal(*(t.drop(columns="node") for t in tables))


def test_entry_points_without_sched_getaffinity(monkeypatch, grid_corpus, cached, tmp_path):
    """macOS has no os.sched_getaffinity: core counting, a grid and extraction must not need it."""
    from sercore.notebook.experiment import run_settings

    monkeypatch.delattr(os, "sched_getaffinity")
    cores = usable_cores()
    assert cores == max(1, (getattr(os, "process_cpu_count", os.cpu_count)() or 1))
    assert run_settings(quick=True).workers == cores and get_engine("local").workers == cores
    table = _sparse_grid(grid_corpus, "local")
    assert len(table) == 8 and table["test_uar"].tolist() == golden(  # the seeded values, as on Linux
        [0.75, 0.75, 0.5833333333333334, 0.6666666666666666, 0.5833333333333334, 0.625, 0.6666666666666667, 0.75])
    rows = pd.DataFrame({"utt_id": ["a", "b", "c"], "path": [str(p) for p in sorted(tmp_path.glob("u*.wav"))[:3]]})
    fs = extract_features(rows, MeanView(), cache_root=tmp_path / "cache2", workers=None, chunk_size=1,
                          progress=False)
    assert list(fs.ids) == ["a", "b", "c"]


def test_finetune_job_declares_a_gpu_fraction_on_cuda(grid_corpus):
    manifest, task, splits, _ = grid_corpus
    data = fold_data(manifest, task, splits, 0)
    assert FinetuneJob("fixed", data, FT).resources() == {"num_cpus": 1}
    assert FinetuneJob("fixed", data, FT, device="cuda", gpu_fraction=0.2).resources() == {"num_cpus": 1,
                                                                                           "num_gpus": 0.2}


KILLED_PARENT = """
import os, sys, time
from pathlib import Path

from sercore.engine import LocalEngine
from sercore.engine import CallJob


def sleep_forever(folder, features):
    Path(folder, str(os.getpid())).touch()
    time.sleep(600)


if __name__ == "__main__":
    LocalEngine(2).run([CallJob(sleep_forever, sys.argv[1]) for _ in range(2)])
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has ended
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_killing_the_parent_ends_its_workers(tmp_path):
    script, pids = tmp_path / "parent.py", tmp_path / "pids"
    script.write_text(textwrap.dedent(KILLED_PARENT))
    pids.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    parent = subprocess.Popen([sys.executable, str(script), str(pids)], env=env)
    try:
        deadline = time.monotonic() + 120
        while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.2)
        workers = [int(p.name) for p in pids.iterdir()]
        assert len(workers) == 2, f"workers did not start (parent exit code {parent.poll()})"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_gone(pid) for pid in workers), f"workers {workers} outlived their parent"
    finally:
        parent.kill()
        for pid in [int(p.name) for p in pids.iterdir()]:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_die_with_parent_falls_back_to_watching_the_parent(monkeypatch):
    """Where prctl does not exist (macOS), a daemon thread watches the parent pid."""
    started = []
    monkeypatch.setattr(engine_mod.sys, "platform", "darwin")
    monkeypatch.setattr(engine_mod.threading, "Thread",
                        lambda target, name, daemon: type("T", (), {"start": lambda self: started.append(name)})())
    engine_mod.die_with_parent(os.getppid())
    assert started == ["sercore-parent-watch"]



def test_provenance_records_mps_like_cuda(monkeypatch, tmp_path):
    import json

    import torch

    from sercore.core.provenance import write_params

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    record = json.loads(write_params(tmp_path, {"device": "mps"}).read_text())
    assert record["versions"]["accelerators"] == "mps" and record["params"]["device"] == "mps"

# ---- Ray --------------------------------------------------------------------------------------------------

def _retry(start, undo, attempts: int = 3):
    """Ray gives its processes a fixed 30 s to start; on a loaded machine a start can miss that: try again."""
    for attempt in range(attempts):
        try:
            return start()
        except Exception:
            undo()
            if attempt == attempts - 1:
                raise


def _ray_env() -> dict:
    """The environment Ray's worker processes need to import this sercore."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = _ray_env()["PYTHONPATH"]
    _retry(lambda: ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False), ray.shutdown)
    yield ray
    ray.shutdown()
    if before is None:
        os.environ.pop("PYTHONPATH")
    else:
        os.environ["PYTHONPATH"] = before


def _without_nodes(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns="node")


@pytest.mark.ray
def test_ray_gives_the_same_sparse_grid_as_local(grid_corpus, local_ray, cached):
    features = grid_corpus[3]
    local = _sparse_grid(grid_corpus, LocalEngine(2))
    node = local_ray.get_runtime_context().get_node_id()
    for transport in ("path", "object_store"):
        table = _sparse_grid(grid_corpus, get_engine("ray", transport=transport))
        pd.testing.assert_frame_equal(_without_nodes(local), _without_nodes(table))
        assert set(table["node"]) == {node}
    by_path = get_engine("ray")._payload(local_ray, {"v": cached, "m": features["fixed"]})
    assert by_path["v"] == cached.source and isinstance(by_path["m"], RayObject)
    by_store = get_engine("ray", transport="object_store")._payload(local_ray, {"v": cached})
    assert isinstance(by_store["v"], RayObject)


@pytest.mark.ray
def test_ray_gives_the_same_cluster_evaluation_as_local(local_ray):
    from sercore.clusters.evaluate import ClusterGrid, evaluate_cluster_pretraining

    manifest, splits, features = cluster_evaluation_corpus()
    data = ExperimentData(manifest, manifest, splits, features, folds=[0])
    kw = dict(evaluation_configs(epochs=1), encoder_view="egemaps", fractions=(1.0, 0.5), variants=("contrastive",))
    local = evaluate_cluster_pretraining(data, ClusterGrid(engine=LocalEngine(2), **kw))
    on_ray = evaluate_cluster_pretraining(data, ClusterGrid(engine="ray", **kw))
    assert set(local["condition"]) == {"cluster_contrastive", "supervised", "speaker_probe", "pairwise-cl"}
    pd.testing.assert_frame_equal(_without_nodes(local), _without_nodes(on_ray))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_node_cluster(local_ray):
    """``ray start --head --num-cpus 1`` plus a second node joining it with one CPU; ``ray stop`` after the
    module's last test (the tests that use it come last: it shuts the local Ray down)."""
    local_ray.shutdown()
    ray_cli = str(Path(sys.executable).with_name("ray"))
    address = f"127.0.0.1:{_free_port()}"
    common = dict(env=_ray_env(), capture_output=True, text=True, timeout=300)
    def start(*args):
        proc = subprocess.run([ray_cli, "start", "--num-cpus", "1", "--node-ip-address", "127.0.0.1", *args],
                              **common)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    def stop():
        subprocess.run([ray_cli, "stop", "--force"], env=_ray_env(), capture_output=True, timeout=120)

    try:
        _retry(lambda: start("--head", "--port", address.split(":")[1], "--include-dashboard", "false",
                             "--disable-usage-stats"), stop)
        _retry(lambda: start("--address", address), lambda: None)
        yield address
    finally:
        local_ray.shutdown()
        stop()


@pytest.mark.ray
def test_sparse_grid_runs_on_both_nodes_of_a_cluster(grid_corpus, two_node_cluster):
    engine = get_engine("ray", address=two_node_cluster, preload=WORKER_PRELOAD)
    assert engine.describe()["nodes"] == 2
    ray = sys.modules["ray"]
    warmed = ray.get(ray.remote(lambda: set(WORKER_PRELOAD) <= set(sys.modules)).remote())
    assert warmed  # a new worker ran warm_up_worker (the engine's setup hook) with the preload before its task
    table = _sparse_grid(grid_corpus, engine)
    assert table["node"].nunique() == 2  # the node id recorded by each run: both nodes worked
    local = _sparse_grid(grid_corpus, LocalEngine(2))
    pd.testing.assert_frame_equal(_without_nodes(local), _without_nodes(table))


@pytest.mark.ray
@pytest.mark.notebooks
def test_quick_sparse_label_notebook_runs_on_both_nodes(two_node_cluster, tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(REPO / "run_all.py"), "--size", "tiny", "--quick", "--offline",
                           "--results", str(out), "--notebooks", "03_sparse_labels", "--engine", "ray",
                           "--ray-address", two_node_cluster], cwd=tmp_path, capture_output=True,
                          env=dict(_ray_env(), SERCORE_RESULT_CACHE="0"),  # every run trained: none read back
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    folder = out / "default" / "03_sparse_labels"
    runs = pd.read_csv(folder / "sparse_label_runs.csv")
    assert len(runs) == 48 and runs["node"].nunique() == 2  # the quick grid's runs went to both nodes
    engine = json.loads((folder / "params.json").read_text())["engine"]
    assert engine["engine"] == "ray" and engine["nodes"] == 2 and engine["address"] == two_node_cluster
