"""Figures and tables drawn from small synthetic result tables; 2-D maps on tiny inputs."""

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from sercore.analysis import (
    condition_bars,
    confusion,
    confusion_figure,
    describe,
    embed_2d,
    learning_curves,
    maps_table,
    pairwise_similarity,
    save_table,
    speaker_emotion_map,
)
from sercore.pairwise.figures import (
    embedding_grid,
    ood_figure,
    similarity_heatmap,
    sparse_label_figure,
    temperature_figure,
)

pytestmark = pytest.mark.usefixtures("one_blas_thread")  # tests/conftest.py


CAPTION = describe(dataset="synthetic-tiny", views=["mel", "egemaps"], models={"mel": "CNN", "egemaps": "MLP"},
                   repetitions=6)


def _check_files(paths, n_expected):
    assert len(paths) == n_expected
    for p in paths:
        assert p.exists() and p.stat().st_size > 0, p
    png = [p for p in paths if p.suffix == ".png"]
    img = mpimg.imread(png[0])
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    assert img[..., :3].std() > 0.01  # something was drawn
    pdf = [p for p in paths if p.suffix == ".pdf"][0]
    assert pdf.read_bytes()[:4] == b"%PDF"


def _results(conditions, gain):
    rng = np.random.default_rng(0)
    rows = []
    for view in ("mel", "egemaps"):
        for frac in (0.02, 0.1, 0.25):
            for cond, g in zip(conditions, (gain, 0.0)):
                for rep in range(6):
                    rows.append(dict(view=view, condition=cond, fraction=frac, repetition=rep,
                                     test_uar=0.4 + frac + g * (frac < 0.2) + 0.01 * rng.standard_normal()))
    return pd.DataFrame(rows)


def test_describe_states_provenance():
    assert CAPTION == ("dataset: synthetic-tiny | views: mel, egemaps | models: mel=CNN, egemaps=MLP | "
                       "repetitions: 6")


def test_sparse_label_and_ood_figures(tmp_path, capsys):
    paths = sparse_label_figure(_results(("pretrained", "supervised"), 0.1), tmp_path / "fig3", caption=CAPTION,
                                test="mannwhitney")
    _check_files(paths, 6)
    stats = pd.read_csv(tmp_path / "fig3_stats.csv")
    gained = stats[stats.fraction < 0.2]  # 6 vs 6 fully separated: exact p = 2/924, the 4 smallest of 6 tests
    assert len(stats) == 6 and (gained["rank_biserial"] == 1.0).all() and (gained["mark"] == "*").all()
    assert gained["p_holm"].to_numpy() == pytest.approx([6 * 2 / 924] * 4)
    assert (stats["test"] == "mannwhitney").all() and (stats["n"] == 6).all()
    assert stats["p_floor"].to_numpy() == pytest.approx([6 * 2 / 924] * 6)
    caption = (tmp_path / "fig3_summary.md").read_text().splitlines()[0]
    assert "repetitions: 6" in caption
    assert "Mann–Whitney U (unpaired) on repetition means, n = 6, Holm over 6" in caption
    assert "no difference" not in caption and capsys.readouterr().out == ""
    # the default, paired by repetition: 6 pairs give p ≥ 2/64, × 6 by Holm: nothing could be significant
    sparse_label_figure(_results(("pretrained", "supervised"), 0.1), tmp_path / "paired", caption=CAPTION)
    stats = pd.read_csv(tmp_path / "paired_stats.csv")
    assert (stats["test"] == "wilcoxon").all() and (stats["mark"] == "n/a (n too small)").all()
    printed = capsys.readouterr().out
    assert "With 6 repetitions no difference can reach p < 0.05; use ≥ 8 repetitions" in printed
    assert printed.strip() in (tmp_path / "paired_stats.md").read_text().splitlines()[0]
    paths = ood_figure(_results(("target", "ood"), 0.05), tmp_path / "fig4", caption=CAPTION)
    _check_files(paths, 6)
    with pytest.raises(ValueError, match="caption"):
        ood_figure(_results(("target", "ood"), 0.05), tmp_path / "x", caption="")


def test_sparse_label_figure_pairs_runs_of_each_fold(tmp_path):
    """Runs of 5 folds × 3 repetitions, pre-training + 0.05: the paired test marks every cell; the figure draws
    repetition means (over folds), as paper A does."""
    rng = np.random.default_rng(1)
    rows = []
    for view in ("mel", "egemaps"):
        for frac in (0.05, 0.25):
            for fold in range(5):
                for rep in range(3):
                    base = 0.3 + 0.04 * fold + 0.03 * rng.standard_normal()
                    for cond, shift in (("pretrained", 0.05), ("supervised", 0.0)):
                        rows.append(dict(view=view, fraction=frac, fold=fold, repetition=rep, condition=cond,
                                         test_uar=base + shift + 0.01 * rng.standard_normal()))
    runs = pd.DataFrame(rows)
    _check_files(sparse_label_figure(runs, tmp_path / "fig3", caption=CAPTION), 6)
    stats = pd.read_csv(tmp_path / "fig3_stats.csv")
    assert (stats["mark"] == "*").all() and (stats["n"] == 15).all() and (stats["W"] == 0).all()
    assert stats["p_floor"].to_numpy() == pytest.approx([4 * 2 / 2 ** 15] * 4)
    assert "Wilcoxon signed-rank (paired) on fold × repetition pairs, n = 15, Holm over 4 tests" in \
        (tmp_path / "fig3_stats.md").read_text().splitlines()[0]
    summary = pd.read_csv(tmp_path / "fig3_summary.csv")
    assert len(summary) == 8 and (summary["n"] == 3).all()  # 3 repetition means per view × condition × fraction


def test_embedding_grid_and_speaker_map(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(["neu", "hap", "sad", "ang"], 6)
    reps = {(model, view): rng.standard_normal((24, 16)) + (model != "random") * np.repeat(np.eye(4, 16) * 4, 6, 0)
            for model in ("pre-trained", "supervised", "random") for view in ("mel", "egemaps")}
    maps = maps_table(reps, labels, method="pca")
    assert maps.shape == (6 * 24, 5) and list(maps.columns) == ["model", "view", "x", "y", "emotion"]
    _check_files(embedding_grid(maps, tmp_path / "fig5", caption=CAPTION), 2)
    xy = embed_2d(rng.standard_normal((20, 8)), method="tsne", seed=0)
    spk = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "speaker": np.repeat(["1001", "1002"], 10),
                        "emotion": np.tile(["neu", "ang"], 10)})
    _check_files(speaker_emotion_map(spk, tmp_path / "clusters", caption=CAPTION), 2)


def test_embed_2d_methods_on_tiny_tables():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 3))
    assert embed_2d(X, method="tsne").shape == (5, 2)  # perplexity clipped below n_samples
    assert np.allclose(embed_2d(X, method="tsne", seed=3), embed_2d(X, method="tsne", seed=3))
    assert embed_2d(X[:, :1], method="pca")[:, 1].tolist() == [0.0] * 5
    with pytest.raises(ValueError, match="unknown method"):
        embed_2d(X, method="mds")
    with pytest.raises(ValueError, match="at least 3"):
        embed_2d(X[:2])


@pytest.mark.slow
def test_embed_2d_umap_on_a_tiny_table():
    """UMAP with n_neighbors clipped and random init below 10 samples (numba compiles ~10 s on first use)."""
    X = np.random.default_rng(0).standard_normal((8, 4))
    X[4:] += 5.0  # two well-separated groups stay apart in the map
    xy = embed_2d(X, method="umap", seed=0, n_epochs=50)
    assert xy.shape == (8, 2) and np.isfinite(xy).all()
    within = np.linalg.norm(xy[:4].mean(0) - xy[:4], axis=1).mean()
    assert np.linalg.norm(xy[:4].mean(0) - xy[4:].mean(0)) > 2 * within


def test_similarity_heatmap_and_tables(tmp_path):
    rng = np.random.default_rng(0)
    frames = []
    for fold in range(2):
        base = rng.standard_normal((120, 4))
        reps = {v: base @ rng.standard_normal((4, 8)) + rng.standard_normal((120, 8))
                for v in ("w2v2", "mel", "egemaps")}
        frames.append(pairwise_similarity(reps).assign(condition="pairwise-cl", fold=fold))
        frames.append(pairwise_similarity(reps, random=True, n_repeats=1).assign(condition="random", fold=fold))
    df = pd.concat(frames)
    paths = similarity_heatmap(df, tmp_path / "table3", caption=CAPTION)
    _check_files(paths, 8)  # figure + pwcca, cka, debiased_cka tables (no baseline columns: no caption note)
    assert (tmp_path / "table3_pwcca.md").read_text().startswith(CAPTION + "\n")
    t = pd.read_csv(tmp_path / "table3_pwcca.csv").set_index("condition")
    assert list(t.columns) == ["w2v2-mel", "w2v2-egemaps", "mel-egemaps"]
    assert t.loc["pairwise-cl", "w2v2-mel"] == pytest.approx(
        df[(df.condition == "pairwise-cl") & (df.view_b == "mel")]["pwcca"].mean())
    assert (t.loc["pairwise-cl"] > t.loc["random"]).all()
    md = save_table(t, tmp_path / "t", caption="cap")[1].read_text()
    assert md.startswith("cap\n\n|") and "w2v2-mel" in md


def test_temperature_and_confusion_figures(tmp_path):
    rows = []
    for fold in range(2):
        for view in ("mel", "egemaps"):
            rows.append(dict(fold=fold, view=view, condition="supervised", temperature=np.nan, frozen=np.nan,
                             val_uar=0.5, val_wa=0.52, test_uar=0.49, test_wa=0.5))
            for tau in (0.1, 0.5):
                for frozen in (True, False):
                    s = 0.55 + 0.1 * tau - 0.05 * frozen + 0.01 * fold
                    rows.append(dict(fold=fold, view=view, condition="pairwise-cl", temperature=tau,
                                     frozen=frozen, val_uar=s, val_wa=s, test_uar=s, test_wa=s))
    paths = temperature_figure(pd.DataFrame(rows), tmp_path / "table4", caption=CAPTION)
    _check_files(paths, 4)
    t = pd.read_csv(tmp_path / "table4.csv")
    best = t.loc[t["average_rank_test"].idxmin()]
    assert best["temperature"] == 0.5 and not best["frozen"] and best["average_rank_test"] == 1.0
    cm = confusion(["neu", "neu", "ang", "sad"], ["neu", "ang", "ang", "sad"], labels=["neu", "ang", "sad"])
    _check_files(confusion_figure(cm, tmp_path / "cm", caption=CAPTION), 2)


def test_condition_bars(tmp_path):
    results = _results(("cluster_contrastive", "supervised"), 0.1)
    _check_files(condition_bars(results, tmp_path / "bars", caption=CAPTION, title="paper B"), 2)
    _check_files(condition_bars(results, tmp_path / "flat", caption=CAPTION, col=None), 2)
    with pytest.raises(ValueError, match="test_wa"):
        condition_bars(results, tmp_path / "x", caption=CAPTION, value="test_wa")


def test_condition_bars_against_a_baseline(tmp_path):
    """Paper B's bars with each variant tested against supervised on the runs' twins (3 folds × 3 repetitions)."""
    rng = np.random.default_rng(2)
    rows = []
    for frac in (1.0, 0.1):
        for fold in range(3):
            for rep in range(3):
                base = 0.4 + 0.05 * fold + 0.02 * rng.standard_normal()
                for cond, shift in (("supervised", 0.0), ("cluster_contrastive", 0.06), ("speaker_probe", 0.0)):
                    rows.append(dict(fraction=frac, fold=fold, repetition=rep, condition=cond,
                                     test_uar=base + shift + 0.01 * rng.standard_normal()))
    paths = condition_bars(pd.DataFrame(rows), tmp_path / "bars", caption=CAPTION, baseline="supervised")
    assert {p.name for p in paths} >= {"bars.png", "bars_stats.csv", "bars_stats.md"}
    stats = pd.read_csv(tmp_path / "bars_stats.csv").set_index(["a", "fraction"])
    assert (stats["b"] == "supervised").all() and (stats["m"] == 4).all() and (stats["n"] == 9).all()
    assert (stats.loc["cluster_contrastive", "mark"] == "*").all()  # 9 pairs: p = 2/512, × 4 = 0.016
    assert (stats.loc["speaker_probe", "mark"] == "ns").all()
    flat = condition_bars(pd.DataFrame(rows).query("fraction == 1.0"), tmp_path / "flat", caption=CAPTION, col=None,
                          baseline="supervised", test="mannwhitney")
    assert "Mann–Whitney U (unpaired) on repetition means, n = 3" in (tmp_path / "flat_stats.md").read_text()
    assert (pd.read_csv(tmp_path / "flat_stats.csv")["mark"] == "n/a (n too small)").all() and len(flat) == 4


def test_learning_curves_from_hand_made_histories(tmp_path):
    pre = {f"fold {f}": pd.DataFrame(dict(epoch=np.arange(1, 6 + f), train_loss=np.linspace(4, 2, 5 + f),
                                          val_loss=[4.0, 3.0, 2.5, 2.7, 2.9, 3.1][:5 + f], seconds=1.0))
           for f in range(2)}  # fold 1 ran one epoch longer
    fine = pd.DataFrame(dict(epoch=[1, 2, 3, 4], train_loss=[1.5, 1.2, 1.0, 0.9], val_uar=[0.3, 0.55, 0.5, 0.45],
                             val_wa=[0.3, 0.5, 0.5, 0.5], lr=1e-3))
    paths = learning_curves(tmp_path / "curves", caption=CAPTION, pretrain=pre, finetune=fine)
    _check_files(paths, 4)
    best = pd.read_csv(tmp_path / "curves_best.csv")
    assert best[["stage", "run", "epochs", "best_epoch"]].values.tolist() == [
        ["pre-training", "fold 0", 5, 3], ["pre-training", "fold 1", 6, 3], ["fine-tuning", "0", 4, 2]]
    assert best["best"].tolist() == pytest.approx([2.5, 2.5, 0.55])
    only_fine = learning_curves(tmp_path / "fine", caption=CAPTION, finetune=[fine, fine.assign(val_uar=0.99)])
    _check_files(only_fine, 4)
    with pytest.raises(ValueError, match="val_loss"):
        learning_curves(tmp_path / "x", caption=CAPTION, pretrain=fine)
    with pytest.raises(ValueError, match="pretrain and/or finetune"):
        learning_curves(tmp_path / "x", caption=CAPTION)


def test_error_bars_of_bounded_metrics_stay_in_0_1(tmp_path):
    from sercore.analysis.figures import ci_band
    near_one = [1.0, 1.0, 0.97, 1.0]
    assert ci_band("test_uar")(near_one)[1] == 1.0 and ci_band("test_loss")(near_one)[1] > 1.0
    results = pd.DataFrame(dict(condition=["a"] * 4 + ["b"] * 4, fraction=0.1, test_uar=near_one + near_one[::-1]))
    paths = condition_bars(results, tmp_path / "bars", caption=CAPTION)
    _check_files(paths, 2)


def test_paper_budget_keeps_paper_a_u_test_on_repetition_means(tmp_path):
    """``--budget paper``: the figure tests as paper A did: two-sided U on the 10 repetition means (each over the
    folds) per view × fraction, Holm over the cells, ``*``/``ns``, computed here from scipy directly."""
    from scipy import stats as st

    from sercore.notebook.settings import run_settings

    test = run_settings(budget="paper", workers=1).test
    rng = np.random.default_rng(3)
    rows = []
    for view, gain in (("mel", 0.04), ("egemaps", 0.0)):
        for frac in (0.02, 0.25):
            for fold in range(5):
                for rep in range(10):
                    base = 0.4 + 0.03 * fold
                    for cond, shift in (("pairwise-cl", gain), ("supervised", 0.0)):
                        rows.append(dict(view=view, fraction=frac, fold=fold, repetition=rep, condition=cond,
                                         test_uar=base + shift + 0.02 * rng.standard_normal()))
    runs = pd.DataFrame(rows)
    sparse_label_figure(runs, tmp_path / "fig3", caption=CAPTION, a="pairwise-cl", test=test)
    stats = pd.read_csv(tmp_path / "fig3_stats.csv")
    means = runs.groupby(["view", "fraction", "condition", "repetition"])["test_uar"].mean()
    p = np.array([st.mannwhitneyu(means[v, f, "pairwise-cl"], means[v, f, "supervised"]).pvalue
                  for v, f in zip(stats["view"], stats["fraction"])])
    order = np.argsort(p)
    holm = np.empty(4)
    holm[order] = np.minimum(np.maximum.accumulate((4 - np.arange(4)) * p[order]), 1.0)
    assert test == "mannwhitney" and (stats["test"] == "mannwhitney").all() and (stats["n"] == 10).all()
    assert stats["p"].to_numpy() == pytest.approx(p) and stats["p_holm"].to_numpy() == pytest.approx(holm)
    assert stats["mark"].tolist() == ["*" if h < 0.05 else "ns" for h in holm]
    assert set(stats["mark"]) == {"*", "ns"}  # mel gained 0.04, egemaps nothing


def test_tables_saved_inside_appended_columns_get_them_once(tmp_path):
    """What ``Experiment.figure`` relies on: the tables a figure function saves get the chance columns as written,
    with no file read back; outside the block, tables are saved as given."""
    from sercore.analysis.chance import with_chance
    from sercore.analysis.tables import appended_columns

    table = pd.DataFrame({"view": ["mel"], "test_uar": [0.5]})
    with appended_columns(lambda t: with_chance(t, 4, uar=True)):
        save_table(table, tmp_path / "inside", caption=CAPTION)
    save_table(table, tmp_path / "outside", caption=CAPTION)
    assert list(pd.read_csv(tmp_path / "inside.csv").columns) == ["view", "test_uar", "n_classes", "chance_uar"]
    assert list(pd.read_csv(tmp_path / "outside.csv").columns) == ["view", "test_uar"]
    assert (tmp_path / "inside.md").read_text().startswith(CAPTION + "\n\n| view")
