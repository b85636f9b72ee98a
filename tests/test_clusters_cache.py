"""Paper B's pre-training on the same footing as paper A's: cached (a second run reads the entry back), resumable
after kill -9 (the rerun trains from its seed to the same weights), and run in the precision "auto" resolves to."""

import multiprocessing as mp
import os

import numpy as np
import pytest
import torch
from fixtures_grids import cluster_evaluation_corpus, cluster_features

import sercore.core.precision as precision
from sercore.clusters import evaluate as cluster_evaluate
from sercore.clusters import pretrain as cluster_pretrain
from sercore.clusters.evaluate import ClusterGrid, evaluate_cluster_pretraining
from sercore.clusters.pretrain import ClusterPretrainConfig, pretrain_cluster_contrastive_cached
from sercore.features.featureset import FeatureSet
from sercore.notebook.settings import Params, run_settings
from sercore.training.grid import ExperimentData

CONFIG = ClusterPretrainConfig(n_speakers=4, n_clusters=3, n_utterances=4, max_epochs=6, patience=30,
                               proj_hidden=16, proj_dim=8, encoder_params={"hidden": 16}, out_dim=16)


def _inputs():
    fs, ids, spk, clu = cluster_features()
    stored = FeatureSet(fs.ids, fs.data, None, dict(fs.meta, folder="/store/egemaps", content="c0"))  # as if stored
    train, val = np.isin(spk, ["0", "1", "2", "3"]), np.isin(spk, ["4", "5"])
    return stored, (ids[train], spk[train], clu[train]), dict(val_ids=ids[val], val_speakers=spk[val],
                                                              val_clusters=clu[val])


def _run(variant="multitask"):
    fs, train, val = _inputs()
    return pretrain_cluster_contrastive_cached(fs, *train, config=CONFIG, variant=variant, **val)


def _weights(result) -> dict:
    return {f"{part}.{k}": v.clone() for part, m in (("enc", result.encoder), ("proj", result.projection),
                                                     ("head", result.speaker_head)) for k, v in m.state_dict().items()}


@pytest.fixture
def trainings(monkeypatch):
    calls = []
    real = cluster_pretrain.pretrain_cluster_contrastive
    monkeypatch.setattr(cluster_pretrain, "pretrain_cluster_contrastive",
                        lambda *a, **kw: calls.append(kw["variant"]) or real(*a, **kw))
    return calls


def test_a_second_run_reads_the_entry_back(trainings, monkeypatch):
    torch.set_num_threads(1)
    first = _run()
    again = _run()
    assert trainings == ["multitask"]  # trained once
    assert all(torch.equal(a, b) for a, b in zip(_weights(first).values(), _weights(again).values()))
    assert again.best_epoch == first.best_epoch and again.history.equals(first.history)
    assert again.metrics["precision"] == first.metrics["precision"]
    _run("adversarial")
    fs, train, val = _inputs()
    pretrain_cluster_contrastive_cached(fs, *train, config=ClusterPretrainConfig(**{**CONFIG.__dict__, "seed": 1}),
                                        variant="multitask", **val)
    assert trainings == ["multitask", "adversarial", "multitask"]  # another variant, another seed: misses


def _killed_at_epoch(epoch: int, cache: str):
    os.environ["SERCORE_CACHE"] = cache
    torch.set_num_threads(1)
    real = cluster_pretrain._Trainer._train_epoch

    def dies(self, train, optimizer, lambd, _n=[0]):
        _n[0] += 1
        if _n[0] > epoch:
            os._exit(3)  # like kill -9: no cleanup
        return real(self, train, optimizer, lambd)

    cluster_pretrain._Trainer._train_epoch = dies
    _run()


def test_killed_mid_run_it_resumes_to_the_same_weights(tmp_path, monkeypatch):
    proc = mp.get_context("fork").Process(target=_killed_at_epoch, args=(3, str(tmp_path / "killed")))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 3
    assert not list((tmp_path / "killed" / "pretrained").glob("*.json"))  # no entry: nothing half-written counts
    torch.set_num_threads(1)
    monkeypatch.setenv("SERCORE_CACHE", str(tmp_path / "killed"))
    resumed = _run()
    assert len(list((tmp_path / "killed" / "pretrained").glob("*.json"))) == 1
    monkeypatch.setenv("SERCORE_CACHE", str(tmp_path / "fresh"))
    whole = _run()
    assert all(torch.equal(a, b) for a, b in zip(_weights(resumed).values(), _weights(whole).values()))


@pytest.mark.parametrize("fast", [True, False])
def test_auto_precision_reaches_paper_b(monkeypatch, fast):
    monkeypatch.setattr(precision, "bf16_support", lambda device_type: (fast, "native" if fast else "none here"))
    monkeypatch.delenv(precision.AUTO_ENV, raising=False)
    monkeypatch.delenv(precision.EMULATE_ENV, raising=False)
    settings = run_settings(Params(budget="quick"))
    grid = settings.cluster_grid(encoder_view="egemaps", fractions=(1.0,))  # as notebook 08 builds it
    assert isinstance(grid, ClusterGrid)
    assert grid.pretrain.precision == settings.pretrain.precision == "auto"
    record = settings.record()  # what params.json holds
    assert record["precision_used"] == ("bf16" if fast else "fp32")

    class Stop(Exception):
        pass

    seen = []

    def capture(view, variant, config, *args, **kw):
        seen.append(config)
        raise Stop  # the config paper B's pre-training job gets is all this test needs

    monkeypatch.setattr(cluster_evaluate, "ClusterPretrainJob", capture)
    manifest, splits, features = cluster_evaluation_corpus()
    with pytest.raises(Stop):
        evaluate_cluster_pretraining(ExperimentData(manifest, manifest, splits, features, folds=[0]), grid)
    assert seen == [grid.pretrain] and seen[0].precision == "auto"
    fs, train, val = _inputs()  # paper B's pre-training with that precision trains in what params.json says
    used = ClusterPretrainConfig(**{**CONFIG.__dict__, "max_epochs": 1, "precision": seen[0].precision})
    result = cluster_pretrain.pretrain_cluster_contrastive(fs, *train, config=used, variant="multitask", **val)
    assert result.metrics["precision"] == record["precision_used"] == ("bf16" if fast else "fp32")
    for explicit in ("fp32", "bf16"):  # a precision other than the default reaches paper B's grid too
        assert run_settings(Params(budget="quick", precision=explicit)).cluster_grid().pretrain.precision == explicit
