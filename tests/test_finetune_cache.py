"""Fine-tuning results are cached when the features come from the feature cache: a second identical grid reads
every run back (same table), anything that decides a run misses, an interrupted grid resumes, damage is redone."""

import json
from dataclasses import replace

import pandas as pd
import pytest
from fixtures_grids import make_grid_corpus

from sercore.engine import LocalEngine
from sercore.features.featureset import FeatureSet
from sercore.pairwise import PairwiseGrid, sparse_label_grid
from sercore.pairwise.pretrain import PretrainConfig
from sercore.training import FinetuneConfig, FinetuneJob, finetune_cache, fold_data, sparse_subset
from sercore.training.grid import ExperimentData

GRID = PairwiseGrid(fractions=(0.2, 0.5), repetitions=2, views=["fixed", "seq"], engine=LocalEngine(1),
                    pretrain=PretrainConfig(max_epochs=1, batch_size=32), finetune=FinetuneConfig(max_epochs=2))


def _as_if_cached(features: dict, tag: str) -> dict:
    """The FeatureSets with the metadata a set read from the feature store has (folder, content digest)."""
    return {v: FeatureSet(fs.ids, fs.data, fs.lengths if fs.variable else None,
                          meta=dict(fs.meta, folder=f"/cache/{v}/{tag}", content=tag))
            for v, fs in features.items()}


@pytest.fixture
def cached_grid_corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("SERCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(finetune_cache.ENV, raising=False)
    manifest, task, splits, features = make_grid_corpus()
    return manifest, task, splits, _as_if_cached(features, "a")


@pytest.fixture
def runs(monkeypatch):
    """The fine-tuning jobs that were actually trained (in this process: engines of one worker)."""
    trained, real = [], FinetuneJob.run

    def run(job, features):
        trained.append(job)
        return real(job, features)

    monkeypatch.setattr(FinetuneJob, "run", run)
    return trained


def test_a_second_grid_reads_every_run_back_and_gives_the_same_table(cached_grid_corpus, runs, capsys):
    manifest, task, splits, features = cached_grid_corpus
    first = sparse_label_grid(ExperimentData(manifest, task, splits, features, folds=[1]), GRID)
    assert len(runs) == len(first) == 2 * 2 * 2 * 2
    again = sparse_label_grid(ExperimentData(manifest, task, splits, features, folds=[1]), GRID)
    assert len(runs) == len(first)  # nothing trained the second time
    pd.testing.assert_frame_equal(first, again)  # node included: where the run was done
    assert "16 of 16 runs read from the result cache" in capsys.readouterr().out
    assert len(list((finetune_cache.folder()).rglob("*.json"))) == 16


def test_anything_that_decides_a_run_misses(cached_grid_corpus, runs):
    manifest, task, splits, features = cached_grid_corpus
    data = fold_data(manifest, task, splits, 1)
    config = FinetuneConfig(max_epochs=2)
    subset = sparse_subset(data.train_ids, data.train_labels, 0.5, 0)
    job = FinetuneJob("fixed", data, config, subset=subset)
    finetune_cache.run_cached(LocalEngine(1), [job], features)
    other_labels = replace(data, train_labels=list(reversed(data.train_labels)))
    changed = [replace(job, config=replace(config, seed=1)), replace(job, config=replace(config, lr=1e-2)),
               replace(job, subset=subset[1:]), replace(job, data=other_labels), replace(job, view="seq")]
    finetune_cache.run_cached(LocalEngine(1), [job, *changed], features)
    assert len(runs) == 1 + len(changed)
    finetune_cache.run_cached(LocalEngine(1), [job], _as_if_cached(features, "other data digest"))
    assert len(runs) == 2 + len(changed)


def test_encoder_weights_are_part_of_the_key(cached_grid_corpus):
    from sercore.models.encoders import MLPEncoder

    manifest, task, splits, features = cached_grid_corpus
    data = fold_data(manifest, task, splits, 1)
    a, b = MLPEncoder(10), MLPEncoder(10)
    keys = {finetune_cache.job_key(FinetuneJob("fixed", data, FinetuneConfig(), encoder=e), features)
            for e in (a, b, None)}
    assert len(keys) == 3
    b.load_state_dict(a.state_dict())
    assert finetune_cache.job_key(FinetuneJob("fixed", data, FinetuneConfig(), encoder=b), features) in keys


def test_identical_jobs_run_once(cached_grid_corpus, runs, capsys):
    manifest, task, splits, features = cached_grid_corpus
    job = FinetuneJob("fixed", fold_data(manifest, task, splits, 1), FinetuneConfig(max_epochs=2), row={"n": 0})
    twin = replace(job, row={"n": 1})
    first, second = finetune_cache.run_cached(LocalEngine(1), [job, twin], features)
    assert len(runs) == 1 and first.value["n"] == 0 and second.value["n"] == 1
    said = capsys.readouterr().out
    assert "0 of 2 runs read from the result cache" in said and "1 identical to another run" in said
    assert {k: v for k, v in first.value.items() if k != "n"} == {k: v for k, v in second.value.items() if k != "n"}
    assert list(first.value) == list(second.value)  # the same column order as a run of its own


def test_in_memory_features_and_the_switch_are_never_cached(cached_grid_corpus, runs, monkeypatch):
    manifest, task, splits, features = cached_grid_corpus
    in_memory = make_grid_corpus()[3]
    job = FinetuneJob("fixed", fold_data(manifest, task, splits, 1), FinetuneConfig(max_epochs=2))
    for _ in range(2):
        finetune_cache.run_cached(LocalEngine(1), [job], in_memory)
    monkeypatch.setenv(finetune_cache.ENV, "0")
    for _ in range(2):
        finetune_cache.run_cached(LocalEngine(1), [job], features)
    assert len(runs) == 4 and not finetune_cache.folder().exists()


def test_an_interrupted_grid_resumes_with_the_runs_it_finished(cached_grid_corpus, monkeypatch):
    manifest, task, splits, features = cached_grid_corpus
    trained, real = [], FinetuneJob.run

    def dies_at_the_fifth(job, features):
        if len(trained) == 4:
            raise KeyboardInterrupt  # the user stops the notebook
        trained.append(job)
        return real(job, features)

    monkeypatch.setattr(FinetuneJob, "run", dies_at_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        sparse_label_grid(ExperimentData(manifest, task, splits, features, folds=[1]), GRID)
    monkeypatch.setattr(FinetuneJob, "run", lambda job, f: trained.append(job) or real(job, f))
    table = sparse_label_grid(ExperimentData(manifest, task, splits, features, folds=[1]), GRID)
    assert len(trained) == len(table) == 16  # 4 before the interruption, the 12 others after it


def test_a_damaged_entry_is_trained_again_and_rewritten(cached_grid_corpus, runs):
    manifest, task, splits, features = cached_grid_corpus
    job = FinetuneJob("fixed", fold_data(manifest, task, splits, 1), FinetuneConfig(max_epochs=2))
    [first] = finetune_cache.run_cached(LocalEngine(1), [job], features)
    [entry] = finetune_cache.folder().rglob("*.json")
    entry.write_text(entry.read_text()[:40])  # a disk that filled up, an editor
    [again] = finetune_cache.run_cached(LocalEngine(1), [job], features)
    assert len(runs) == 2 and again.value == first.value
    assert json.loads(entry.read_text())["result"]["test_uar"] == first.value["test_uar"]


def test_the_stored_entry_is_plain_json_of_what_the_run_computed(cached_grid_corpus):
    manifest, task, splits, features = cached_grid_corpus
    job = FinetuneJob("seq", fold_data(manifest, task, splits, 1), FinetuneConfig(max_epochs=2),
                      row={"fold": 1, "condition": "supervised"})
    [outcome] = finetune_cache.run_cached(LocalEngine(1), [job], features)
    [entry] = finetune_cache.folder().rglob("*.json")
    stored = json.loads(entry.read_text())
    assert set(stored) == {"key", "result", "node", "seconds"} and stored["node"] == outcome.node
    assert "fold" not in stored["result"] and "view" not in stored["result"]
    assert stored["result"]["n_labels"] == outcome.value["n_labels"]


def _grid_killed_at_the_fifth_run(cached_grid_corpus):
    import os
    import signal

    manifest, task, splits, features = cached_grid_corpus
    trained, real = [], FinetuneJob.run

    def run(job, features):
        if len(trained) == 4:
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9: no exception handling, no cleanup
        trained.append(job)
        return real(job, features)

    FinetuneJob.run = run
    sparse_label_grid(ExperimentData(manifest, task, splits, features, folds=[1]), GRID)


def test_a_grid_killed_mid_run_resumes_with_sound_entries(cached_grid_corpus, runs):
    import multiprocessing as mp

    proc = mp.get_context("fork").Process(target=_grid_killed_at_the_fifth_run, args=(cached_grid_corpus,))
    proc.start()
    proc.join(120)
    assert proc.exitcode == -9
    entries = list(finetune_cache.folder().rglob("*.json"))
    assert len(entries) == 4 and all(json.loads(e.read_text())["result"] for e in entries)
    manifest, task, splits, features = cached_grid_corpus
    table = sparse_label_grid(ExperimentData(manifest, task, splits, features, folds=[1]), GRID)
    assert len(runs) == 12 and len(table) == 16 and table[["val_uar", "test_uar"]].notna().all().all()
