import numpy as np
import pandas as pd
import pytest
from golden import golden
from tiny_models import record_pretraining

import sercore.pairwise.crosscorpus as cc
from sercore.data import LeakageError, make_splits
from sercore.features.featureset import FeatureSet
from sercore.notebook.settings import Params, run_settings
from sercore.pairwise.crosscorpus import (
    NONE,
    TARGET,
    UNION,
    check_excludes_target,
    cross_corpus_figure,
    cross_corpus_grid,
    cross_corpus_summary,
    source_pools,
    speaker_split,
    union_manifest,
)
from sercore.pairwise.grids import PairwiseGrid
from sercore.pairwise.pretrain import PretrainConfig
from sercore.training import FinetuneConfig
from sercore.training.grid import ExperimentData

EMOTIONS = ["neu", "hap", "sad", "ang", "fea", "dis"]
PRE = PretrainConfig(max_epochs=1, batch_size=32)
FT = FinetuneConfig(max_epochs=2)
FRACTIONS = (0.25, 0.5)


KINDS = {"fixed": {"view": "fixed", "encoder": "mlp"}, "seq": {"view": "seq", "encoder": "mel"}}


def make_corpus(name, seed, sessions=4, per_emotion=2):
    """A manifest (sessions × 2 speakers × 6 emotions, utt_ids that repeat across corpora, own paths) and two
    views of one class signal shared by all corpora (same dimensions, as one extractor gives)."""
    rng = np.random.default_rng(seed)
    rows = [(f"S{s}{g}_{e}_{i}", f"S{s}{g}", e, f"S{s}") for s in range(sessions) for g in "FM"
            for e in EMOTIONS for i in range(per_emotion)]
    manifest = pd.DataFrame(rows, columns=["utt_id", "speaker", "emotion", "session"])
    manifest["path"] = [f"/corpora/{name}/{u}.wav" for u in manifest["utt_id"]]
    manifest["dataset"] = name
    label = manifest["emotion"].map(EMOTIONS.index).to_numpy()
    centres = np.random.default_rng(99).normal(size=(6, 4)) * 1.5  # the same emotions in every corpus
    latent = centres[label] + rng.normal(size=(len(manifest), 4))
    fixed = latent @ np.random.default_rng(98).normal(size=(4, 10)) + rng.normal(size=(len(manifest), 10))
    lengths = rng.integers(4, 10, size=len(manifest))
    mix = np.random.default_rng(97).normal(size=(4, 6))
    frames = np.concatenate([latent[i] @ mix + rng.normal(size=(n, 6)) for i, n in enumerate(lengths)])
    features = {"fixed": FeatureSet(manifest["utt_id"], fixed.astype(np.float32), meta=KINDS["fixed"]),
                "seq": FeatureSet(manifest["utt_id"], frames.astype(np.float16), lengths,
                                  meta=KINDS["seq"])}
    return manifest, features


def pooled(corpora: dict):
    """The union manifest of ``corpora`` ({name: (manifest, features)}) and its features under prefixed ids."""
    pool = union_manifest({n: m for n, (m, _) in corpora.items()})
    features = {}
    for view in ("fixed", "seq"):
        parts = [(n, f[view]) for n, (_, f) in corpora.items()]
        ids = [f"{n}/{u}" for n, fs in parts for u in fs.ids]
        data = np.concatenate([np.asarray(fs.data) for _, fs in parts])
        lengths = None if parts[0][1].lengths is None else np.concatenate([fs.lengths for _, fs in parts])
        features[view] = FeatureSet(ids, data, lengths, meta=KINDS[view])
    return pool, features


@pytest.fixture(scope="module")
def setting():
    target_manifest, target_features = make_corpus("emodb", 0)
    task = target_manifest[target_manifest["emotion"].isin(EMOTIONS[:4])].reset_index(drop=True)
    splits = make_splits(target_manifest, n_folds=4)
    pool, pool_features = pooled({"cremad": make_corpus("cremad", 1), "tess": make_corpus("tess", 2, sessions=1)})
    return target_manifest, task, splits, target_features, pool, pool_features


@pytest.fixture
def spy(monkeypatch):
    """Record the ids every source pre-training receives (and still run it)."""
    return record_pretraining(monkeypatch, cc)


def target(setting, dataset="emodb"):
    """The target corpus of ``setting`` as an experiment's data, fold 0 only."""
    manifest, task, splits, features, _, _ = setting
    return ExperimentData(manifest, task, splits, features, folds=[0], dataset=dataset)


def config(**changes):
    """The tiny grid configuration: ``FRACTIONS``, 2 repetitions, ``PRE`` and ``FT`` (``changes``: fields to set)."""
    return PairwiseGrid(**{"pretrain": PRE, "finetune": FT, "fractions": FRACTIONS, "repetitions": 2, **changes})


def grid(setting, **changes):
    pool, pool_features = setting[4:]
    return cross_corpus_grid(target(setting), config(**changes), pool=pool, pool_features=pool_features)


def test_union_prefixes_ids_and_speakers():
    a, _ = make_corpus("a", 0, sessions=1)
    b, _ = make_corpus("b", 1, sessions=1)
    pool = union_manifest({"a": a, "b": b})
    assert pool["utt_id"].is_unique and len(pool) == len(a) + len(b)  # same utt_ids in both corpora
    assert pool["utt_id"].str.startswith(("a/", "b/")).all() and pool["speaker"].nunique() == 4
    assert pool.groupby("source").size().to_dict() == {"a": len(a), "b": len(b)}
    with pytest.raises(ValueError, match="may not contain"):
        union_manifest({"x/y": a})


def test_speaker_split_holds_out_whole_speakers():
    manifest, _ = make_corpus("a", 0, sessions=5)
    train, val = speaker_split(manifest, val_fraction=0.2, seed=3)
    speaker = manifest.set_index("utt_id")["speaker"]
    assert set(train) | set(val) == set(manifest["utt_id"]) and not set(train) & set(val)
    assert not set(speaker[train]) & set(speaker[val]) and speaker[val].nunique() == 2
    assert (train, val) == speaker_split(manifest, val_fraction=0.2, seed=3)
    one = manifest[manifest["speaker"] == "S0F"]
    train, val = speaker_split(one)
    assert train and val and not set(train) & set(val)


def test_source_pools_and_union(setting):
    pool = setting[4]
    pools = source_pools(pool)
    assert list(pools) == ["cremad", "tess", UNION]
    for name in ("cremad", "tess"):
        assert all(u.startswith(name + "/") for part in pools[name] for u in part)
    assert sorted(pools[UNION][0] + pools[UNION][1]) == sorted(pool["utt_id"])
    assert list(source_pools(pool[pool["source"] == "tess"])) == ["tess"]  # one source: no union
    assert list(source_pools(pool, union=False)) == ["cremad", "tess"]


def test_union_excludes_the_target(setting, spy):
    manifest, *_, pool, _ = setting
    table = grid(setting, views=["fixed"])
    target_ids, target_paths = set(manifest["utt_id"]), set(manifest["path"])
    source_paths = pool.set_index("utt_id")["path"]
    assert len(spy) == 3  # cremad, tess, all-but-target (the target's own pre-training is a PretrainJob)
    for train, val in spy:
        assert not set(train + val) & target_ids
        assert not set(source_paths[train + val]) & target_paths
    assert len(spy[2][0]) + len(spy[2][1]) == len(pool)
    assert set(table["pretrain_data"]) == {TARGET, "cremad", "tess", UNION, NONE}


def test_target_in_the_sources_is_refused(setting):
    manifest, task, splits, features, pool, pool_features = setting
    leaky = union_manifest({"cremad": make_corpus("cremad", 1)[0], "copy": manifest})
    with pytest.raises(LeakageError, match="audio file"):
        check_excludes_target(leaky, manifest)
    with pytest.raises(LeakageError, match="target corpus 'cremad'"):
        check_excludes_target(pool, manifest, "cremad")
    with pytest.raises(LeakageError):
        cross_corpus_grid(target(setting, dataset=""), config(repetitions=1), pool=leaky, pool_features=pool_features)


def test_grid_has_every_condition_fraction_view_and_repeats(setting, tmp_path):
    table = grid(setting)
    sources = [TARGET, "cremad", "tess", UNION, NONE]
    counts = table.groupby(["pretrain_data", "fraction", "view"]).size()
    assert len(counts) == len(sources) * len(FRACTIONS) * 2 and (counts == 2).all()  # 2 repetitions each
    assert (table.loc[table["pretrain_data"] == NONE, "condition"] == "supervised").all()
    assert (table.loc[table["pretrain_data"] != NONE, "condition"] == "pairwise-cl").all()
    # the seeded values (tiny, one thread): the means over the grid's runs
    assert table[["val_uar", "test_uar"]].mean().to_dict() == golden({"val_uar": 0.55, "test_uar": 0.478125})
    # every condition of a fraction × repetition fine-tunes on the same labelled subset
    assert (table.groupby(["fraction", "repetition"])["n_labels"].nunique() == 1).all()
    again = grid(setting)
    cols = ["pretrain_data", "fraction", "view", "repetition", "val_uar", "test_uar", "best_epoch"]
    pd.testing.assert_frame_equal(table[cols], again[cols])

    summary = cross_corpus_summary(table)
    assert list(summary.columns) == sources and len(summary) == 2 * len(FRACTIONS)
    paths = cross_corpus_figure(table, tmp_path / "cross", caption="dataset: emodb | views: fixed, seq")
    assert {p.name for p in paths} >= {"cross.png", "cross.pdf", "cross_stats.csv", "cross_summary.csv"}
    stats = pd.read_csv(tmp_path / "cross_stats.csv")
    assert set(zip(stats["a"], stats["b"])) == {(s, o) for s in ("cremad", "tess", UNION) for o in (TARGET, NONE)}
    # one fold × 2 repetitions: 2 pairs per cell, p ≥ 0.5; the table and caption say so rather than "ns"
    assert (stats["test"] == "wilcoxon").all() and (stats["n"] == 2).all() and (stats["m"] == 4).all()
    assert (stats["mark"] == "n/a (n too small)").all() and (stats["p_floor"] == 1.0).all()
    caption = (tmp_path / "cross_stats.md").read_text().splitlines()[0]
    assert "Wilcoxon signed-rank (paired) on fold × repetition pairs, n = 2, Holm over 4 tests" in caption
    assert "With 2 repetitions (1 fold) no difference can reach p < 0.05; use ≥ 8 repetitions" in caption
    cross_corpus_figure(table, tmp_path / "paper", caption="dataset: emodb | views: fixed, seq", test="mannwhitney")
    assert "Mann–Whitney U (unpaired) on repetition means, n = 2" in (tmp_path / "paper_stats.md").read_text()


def test_views_must_match_the_target(setting):
    manifest, task, splits, features, pool, pool_features = setting
    wrong = dict(pool_features, fixed=FeatureSet(pool_features["fixed"].ids,
                                                 np.zeros((len(pool), 3), np.float32), meta=KINDS["fixed"]))
    with pytest.raises(ValueError, match="view 'fixed'"):
        cross_corpus_grid(target(setting, dataset=""), config(repetitions=1), pool=pool, pool_features=wrong)
    with pytest.raises(ValueError, match=r"no features of view\(s\) \['seq'\]"):
        cross_corpus_grid(target(setting, dataset=""), config(repetitions=1), pool=pool,
                          pool_features={"fixed": pool_features["fixed"]})


@pytest.fixture
def loads(monkeypatch):
    """Record load_dataset calls and give each a one-file manifest."""
    import sercore.data.registry as registry

    calls = []

    def fake(name, root=None, **params):
        calls.append((name, root, params))
        return pd.DataFrame({"utt_id": ["u"], "speaker": ["s"], "emotion": ["neu"], "path": [f"/{name}/u.wav"]})

    monkeypatch.setattr(registry, "load_dataset", fake)
    return calls


def test_load_sources_takes_the_other_corpora(loads):
    sources, note = cc.load_sources({"emodb": "/e", "cremad": "/c", "tess": "/t"}, target="emodb")
    assert list(sources) == ["cremad", "tess"] and [c[:2] for c in loads] == [("cremad", "/c"), ("tess", "/t")]
    assert "cremad, tess" in note


def test_load_sources_falls_back_to_another_synthetic_corpus(loads):
    sources, note = cc.load_sources({}, target="emodb", size="small")
    assert list(sources) == ["synthetic-seed1"] and loads[-1] == ("default", None, {"size": "small", "seed": 1})
    sources, note = cc.load_sources({"default": None}, target="default", target_params={"seed": 4})
    assert list(sources) == ["synthetic-seed5"] and loads[-1][2]["seed"] == 5
    assert "no other corpus" in note and "seed 5" in note and "same synthetic voices" in note


def test_notebook_call_loads_sources_and_leaves_out_unreadable_files(setting, spy, monkeypatch):
    corpora = {"cremad": make_corpus("cremad", 1), "tess": make_corpus("tess", 2, sessions=1)}
    pool, pool_features = pooled(corpora)
    lost = pool["utt_id"].iloc[0]
    pool_features["fixed"] = pool_features["fixed"].subset([u for u in pool["utt_id"] if u != lost])
    monkeypatch.setattr(cc, "load_sources", lambda corpora_, **kw: (
        {n: m for n, (m, _) in corpora.items()}, f"sources {sorted(corpora_)} {kw['target']}"))
    monkeypatch.setattr(cc, "source_features", lambda pool_, views, **kw: {v: pool_features[v] for v in views})
    grid_config = config(device="cpu", workers=1, engine="local", repetitions=1, fractions=(0.5,), views=["fixed"])
    table, note = cc.cross_corpus(target(setting), grid_config, {"cremad": "/c", "tess": "/t"})
    assert note == "sources ['cremad', 'tess'] emodb"
    assert set(table["pretrain_data"]) == {TARGET, "cremad", "tess", UNION, NONE} and len(table) == 5
    assert all(lost not in train + val for train, val in spy) and len(spy) == 3


def test_quick_budget_uses_a_tiny_synthetic_source(monkeypatch):
    seen = []

    def stop(corpora, **kw):
        seen.append(kw["size"])
        raise LookupError("stop here")

    monkeypatch.setattr(cc, "load_sources", stop)
    exp = ExperimentData(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {}, dataset="default")
    for budget in ("quick", "default"):
        run = run_settings(Params(budget=budget), workers=1)
        with pytest.raises(LookupError):  # as notebook 09 calls it
            cc.cross_corpus(exp, run.pairwise_grid(fractions=(0.5,)), None, size=run.source_size("small"))
    assert seen == ["tiny", "small"]
