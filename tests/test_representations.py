"""fold_representations encodes every split of a fold; alignment_table then picks the samples (tiny models)."""

import numpy as np
import pytest
from fixtures_grids import make_grid_corpus
from golden import golden
from threadpoolctl import threadpool_limits

from sercore.pairwise import PairwiseGrid
from sercore.pairwise.pretrain import PretrainConfig
from sercore.pairwise.representations import MODELS, alignment_table, fold_representations
from sercore.training import FinetuneConfig, fold_data
from sercore.training.grid import ExperimentData

CONFIG = PairwiseGrid(views=("fixed", "seq"), pretrain=PretrainConfig(max_epochs=1, batch_size=32),
                      finetune=FinetuneConfig(max_epochs=2))


@pytest.fixture(scope="module")
def reps():
    manifest, task, splits, features = make_grid_corpus()
    with threadpool_limits(limits=1):
        rep = fold_representations(ExperimentData(manifest, task, splits, features), 0, CONFIG)
    return rep, fold_data(manifest, task, splits, 0)


def test_every_split_is_encoded(reps):
    rep, data = reps
    assert rep.ids == list(data.test_ids) and rep.other_ids == list(data.train_ids) + list(data.val_ids)
    assert set(rep.vectors) == set(rep.other_vectors) == {(m, v) for m in MODELS for v in ("fixed", "seq")}
    for key, z in rep.vectors.items():
        assert z.shape == (len(rep.ids), 128) and rep.other_vectors[key].shape == (len(rep.other_ids), 128)
    both = rep.by_model("supervised", samples="all")["seq"]
    assert np.array_equal(both[:len(rep.ids)], rep.vectors[("supervised", "seq")])


def test_alignment_table_takes_all_utterances_of_a_small_fold(reps):
    rep, _ = reps
    with threadpool_limits(limits=1):
        t = alignment_table([rep], n_repeats=2)
    n = len(rep.ids) + len(rep.other_ids)
    assert (t["samples"] == "all").all() and (t["n_samples"] == n).all() and (t["max_dims"] == (n - 1) // 2).all()
    assert set(t["condition"]) == set(MODELS) | {"random vectors"} and len(t) == 4
    want = {"pwcca": [0.8263948366165842, 0.786868206569156, 0.7079298149555963, 0.5695845321023211],  # seeded
              "cka": [0.5377273260937686, 0.4483620353999903, 0.4447985085305715, 0.039846636250713316],
              "pwcca_baseline": [0.6500740374431758, 0.584283756508547, 0.4743958023552405, 0.5695845321023211]}
    for column, values in want.items():  # rows: the three models, then the random vectors
        assert t[column].tolist() == golden(values), column
    assert np.isfinite(t["debiased_cka"]).all()
    test_only = alignment_table([rep], samples="test", n_repeats=2)
    assert (test_only["n_samples"] == len(rep.ids)).all()


def test_folds_run_in_parallel_give_what_one_process_gives():
    from dataclasses import replace

    import pandas as pd

    from sercore.engine import LocalEngine
    from sercore.pairwise.representations import folds_representations

    data = ExperimentData(*make_grid_corpus(), folds=[0, 2])
    with threadpool_limits(limits=1):  # the workers' one thread, here too
        alone = folds_representations(data, CONFIG)
        table = alignment_table(alone, n_repeats=2)
    parallel = folds_representations(data, replace(CONFIG, engine=LocalEngine(2)))
    assert [r.fold for r in parallel] == [0, 2] and [r.ids for r in parallel] == [r.ids for r in alone]
    for a, b in zip(alone, parallel):
        assert all(np.array_equal(a.vectors[k], b.vectors[k]) for k in a.vectors)
    pd.testing.assert_frame_equal(alignment_table(parallel, n_repeats=2, engine=LocalEngine(2)), table)
