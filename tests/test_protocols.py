from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from golden import golden
from tiny_models import record_pretraining

import sercore.pairwise.grids as protocols
from sercore.data import LeakageError
from sercore.engine import CallJob, LocalEngine
from sercore.features.featureset import FeatureSet
from sercore.models.encoders import MelEncoder, count_parameters
from sercore.pairwise import PairwiseGrid, parameter_counts, sparse_label_grid, target_vs_ood, temperature_grid
from sercore.pairwise.pretrain import PretrainConfig
from sercore.training import RESULT_COLUMNS, FinetuneConfig, fold_data, sparse_subset, supervised_baseline
from sercore.training.grid import ExperimentData

PRE = PretrainConfig(max_epochs=1, batch_size=32)
FT = FinetuneConfig(max_epochs=2)


@pytest.fixture
def spy(monkeypatch):
    """Record the ids every pre-training run receives (and still run it)."""
    return record_pretraining(monkeypatch, protocols)


def _check_no_test_data(calls, splits, fold):
    test = set(splits.loc[(splits["fold"] == fold) & (splits["split"] == "test"), "utt_id"])
    for train, val in calls:
        assert not (set(train) | set(val)) & test


def test_temperature_grid_rows_and_columns(grid_corpus, spy):
    manifest, task, splits, features = grid_corpus
    table = temperature_grid(ExperimentData(manifest, task, splits, features, folds=[0]),
                             PairwiseGrid(temperatures=(0.1, 0.5), pretrain=PRE, finetune=FT))
    assert list(table.columns[:11]) == RESULT_COLUMNS + ["temperature", "frozen"]
    assert len(table) == 2 + 2 * 2 * 2  # supervised per view + τ × view × frozen/tuned
    assert table.groupby(["condition", "frozen"]).size().to_dict() == {("pairwise-cl", False): 4,
                                                                       ("pairwise-cl", True): 4,
                                                                       ("supervised", False): 2}
    assert table.loc[table["condition"] == "supervised", "temperature"].isna().all()
    assert table[["val_uar", "test_uar", "test_wa"]].mean().to_dict() == golden(  # the seeded values: means
        {"val_uar": 0.5541666666666667, "test_uar": 0.5458333333333333, "test_wa": 0.5458333333333333})
    assert (table["n_labels"] == 72).all()  # 3 training sessions × 2 speakers × 4 emotions × 3
    assert len(spy) == 2 and len(spy[0][0]) == 3 * 2 * 6 * 3  # pre-training pool: every emotion
    _check_no_test_data(spy, splits, 0)


def test_temperature_grid_repeats_fine_tuning_not_pre_training(grid_corpus, spy):
    manifest, task, splits, features = grid_corpus
    table = temperature_grid(ExperimentData(manifest, task, splits, features, folds=[0]),
                             PairwiseGrid(temperatures=(0.5,), repetitions=2, views=["fixed"], pretrain=PRE,
                                          finetune=FT))
    assert len(spy) == 1  # one pre-training per fold × τ, shared by the repetitions
    assert table.groupby("repetition").size().to_dict() == {0: 3, 1: 3}  # supervised, tuned, frozen
    assert table.groupby("repetition")["seed"].unique().map(list).to_dict() == {0: [FT.seed], 1: [FT.seed + 1]}


def test_sparse_label_grid_pairs_conditions_and_runs_in_parallel(grid_corpus):
    manifest, task, splits, features = grid_corpus
    data = ExperimentData(manifest, task, splits, features, folds=[1])
    kw = dict(fractions=(0.1, 0.5), repetitions=2, views=["fixed"], pretrain=PRE, finetune=FT)
    table = sparse_label_grid(data, PairwiseGrid(**kw))
    assert list(table.columns[:12]) == RESULT_COLUMNS + ["fraction", "frozen", "pretrain_data"]
    assert len(table) == 2 * 2 * 2 and set(table["pretrain_data"]) == {"all", "none"}
    # 18 training utterances per class: 10% → 2 per class, 50% → 9 per class
    assert table.groupby("fraction")["n_labels"].unique().map(list).to_dict() == {0.1: [8], 0.5: [36]}
    assert set(table["seed"]) == {0, 1}
    parallel = sparse_label_grid(data, PairwiseGrid(workers=2, **kw))
    assert table["node"].nunique() == 1 and set(parallel["node"]).isdisjoint(table["node"])  # worker processes
    pd.testing.assert_frame_equal(table.drop(columns="node"), parallel.drop(columns="node"))


def test_grids_keep_each_runs_learning_curve(grid_corpus):
    manifest, task, splits, features = grid_corpus
    histories = {}
    table = temperature_grid(ExperimentData(manifest, task, splits, features, folds=[0]),
                             PairwiseGrid(temperatures=(0.1, 0.5), views=["fixed"], pretrain=replace(PRE, max_epochs=3),
                                          finetune=replace(FT, max_epochs=4)), histories=histories)
    pre, fine = histories["pretrain"], histories["finetune"]
    assert pre.groupby("temperature")["epoch"].apply(list).to_dict() == {0.1: [0, 1, 2], 0.5: [0, 1, 2]}  # 0-based
    assert pre[["train_loss", "val_loss"]].notna().all().all() and pre["run"].nunique() == 2
    assert "_val_uar_history" not in table and fine["run"].nunique() == len(table) == 5
    for (_, row), (_, curve) in zip(table.iterrows(), fine.groupby("run", sort=False)):
        assert len(curve) == row["epochs_run"] == 4 and row["steps"] > 0
        assert curve["condition"].iloc[0] == row["condition"] and curve["frozen"].iloc[0] == row["frozen"]
        best = curve.loc[curve["epoch"] == row["best_epoch"], "val_uar"].item()  # the restored epoch
        assert best == pytest.approx(row["val_uar"]) and best == curve["val_uar"].max()
    # the test UAR of each run per test speaker: fold 0 tests session 1's two speakers
    speakers = histories["per_speaker"]
    assert "_test_uar_per_speaker" not in table and len(speakers) == 2 * len(table)
    assert set(speakers["speaker"]) == {"Ses1F", "Ses1M"} and speakers["uar"].between(0, 1).all()
    assert set(table["n_classes"]) == {4} and set(table["chance_uar"]) == {0.25}  # beside every UAR
    test = task[task["speaker"].str.startswith("Ses1")]
    assert speakers.groupby(["condition", "temperature", "frozen"], dropna=False)["n_test"].sum().eq(len(test)).all()


def test_per_speaker_uar_is_each_speakers_balanced_accuracy():
    from sercore.training.jobs import per_speaker_uar

    rows = per_speaker_uar(["a", "b", "a", "a", "b"], ["a", "a", "a", "b", "b"], ["s2", "s2", "s1", "s1", "s1"])
    assert rows == [{"speaker": "s1", "n_test": 3, "uar": 0.75}, {"speaker": "s2", "n_test": 2, "uar": 0.5}]


def _supervised_job(job, shared):
    features, data = shared
    return supervised_baseline(features[job["view"]], data.train_ids, data.train_labels, data.val_ids,
                               data.val_labels, config=FinetuneConfig(max_epochs=2, seed=job["seed"]),
                               test_ids=data.test_ids, test_labels=data.test_labels).metrics


def test_thread_backend_repeats_the_sequential_results(grid_corpus):
    manifest, task, splits, features = grid_corpus
    shared = (features, fold_data(manifest, task, splits, 0))
    jobs = [dict(view=v, seed=s) for v in ("fixed", "seq") for s in (0, 1, 2)]
    calls = [CallJob(_supervised_job, job) for job in jobs]
    sequential = LocalEngine(1).run(calls, shared)
    assert LocalEngine(3, backend="thread").run(calls, shared) == sequential
    assert sequential[0] != sequential[1]  # different seeds, different runs
    with pytest.raises(ValueError, match="backend"):
        LocalEngine(2, backend="mpi")


def test_sparse_subset_counts_and_seeds():
    labels = ["a"] * 50 + ["b"] * 10 + ["c"] * 3
    ids = [f"u{i}" for i in range(len(labels))]
    idx = sparse_subset(ids, labels, 0.1, seed=3)
    picked = pd.Series([labels[i] for i in idx]).value_counts().to_dict()
    assert picked == {"a": 5, "b": 1, "c": 1}  # at least one per class
    assert idx == sparse_subset(ids, labels, 0.1, seed=3) and idx != sparse_subset(ids, labels, 0.1, seed=4)
    with pytest.raises(ValueError, match="fraction"):
        sparse_subset(ids, labels, 0.0, seed=0)


def test_target_vs_ood_pretrains_on_disjoint_pools(grid_corpus, spy):
    manifest, task, splits, features = grid_corpus
    table = target_vs_ood(ExperimentData(manifest, task, splits, features, folds=[2]),
                          PairwiseGrid(fractions=(0.25,), repetitions=1, pretrain=PRE, finetune=FT))
    assert set(table["pretrain_data"]) == {"target", "ood"} and len(table) == 2 * 2
    assert (table["condition"] == "pairwise-cl").all()
    targets = set(task["utt_id"])
    (target_train, target_val), (ood_train, ood_val) = spy
    assert set(target_train + target_val) <= targets and not set(ood_train + ood_val) & targets
    assert len(target_train) == 72 and len(ood_train) == 36
    _check_no_test_data(spy, splits, 2)


def test_pretraining_on_the_test_session_is_refused(grid_corpus):
    manifest, task, splits, features = grid_corpus
    bad = splits.copy()
    leak = (bad["fold"] == 0) & (bad["utt_id"] == "Ses1F_fea_0")  # fold 0 tests Ses1
    bad.loc[leak, "split"] = "train"
    with pytest.raises(LeakageError, match="fold 0: pre-training data includes 1 utterance"):
        fold_data(manifest, task, bad, 0)
    with pytest.raises(LeakageError):
        sparse_label_grid(ExperimentData(manifest, task, bad, features, folds=[0]),
                          PairwiseGrid(repetitions=1, pretrain=PRE))
    with pytest.raises(ValueError, match="not in the splits of fold 0"):
        fold_data(manifest, task, splits[splits["utt_id"] != "Ses2M_neu_1"], 0)


def test_parameter_counts_include_the_frozen_extractor(grid_corpus):
    _, _, _, features = grid_corpus
    w2v = FeatureSet(["a", "b"], np.zeros((7, 3, 5), np.float16), [3, 4],
                     meta={"encoder": "wav2vec2", "provenance": {"parameters": 94_000_000}})
    table = parameter_counts({"fixed": features["fixed"], "seq": features["seq"], "w2v": w2v})
    assert list(table.columns) == ["stage", "view", "frozen", "frozen_params", "trainable_params"]
    seq = table[table["view"] == "seq"].set_index("frozen")
    enc, _ = count_parameters(MelEncoder(6))
    assert seq.loc[False, "trainable_params"] == enc + 128 * 4 + 4 and seq.loc[False, "frozen_params"] == 0
    assert seq.loc[True, "frozen_params"] == enc and seq.loc[True, "trainable_params"] == 516
    w = table[table["view"] == "w2v"].set_index("frozen")
    assert w.loc[True, "frozen_params"] > 94_000_000 and w.loc[False, "frozen_params"] == 94_000_000
    pre = table[table["stage"] == "pre-training"].iloc[0]
    assert pre["frozen_params"] == 94_000_000 and pre["view"] == "fixed+seq+w2v"
