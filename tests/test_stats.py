"""Metrics, intervals, tests and rank tables against values computed by hand."""

import warnings

import numpy as np
import pandas as pd
import pytest

from sercore.analysis import (
    TOO_FEW,
    attainable_p,
    average_ranks,
    bootstrap_ci,
    compare_conditions,
    confusion,
    holm,
    holm_floor,
    macro_f1,
    mann_whitney,
    mean_ci_t,
    metric_bounds,
    needed_n,
    power_note,
    summary_table,
    uar,
    wa,
    wilcoxon_paired,
)
from sercore.pairwise.figures import temperature_table

Y_TRUE = ["neu"] * 4 + ["ang"] * 2
Y_PRED = ["neu", "neu", "neu", "ang", "ang", "neu"]


def test_metrics_of_a_known_confusion():
    # recalls: neu 3/4, ang 1/2; F1: neu 2*3/(2*3+1+1) = 0.75, ang 2*1/(2+1+1) = 0.5
    assert uar(Y_TRUE, Y_PRED) == pytest.approx(0.625)
    assert wa(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx(0.625)
    cm = confusion(Y_TRUE, Y_PRED, labels=["neu", "ang", "sad"])
    assert cm.loc["neu"].tolist() == [3, 1, 0] and cm.loc["ang"].tolist() == [1, 1, 0]
    assert cm.loc["sad"].sum() == 0 and cm.index.name == "true"
    with pytest.raises(ValueError, match="hap"):
        confusion(Y_TRUE, Y_PRED[:-1] + ["hap"], labels=["neu", "ang"])
    with pytest.raises(ValueError, match="length"):
        uar(Y_TRUE, Y_PRED[:-1])


def test_mean_ci_t_by_hand():
    m, lo, hi = mean_ci_t([1, 2, 3, 4, 5])
    half = 2.7764451051977987 * np.sqrt(2.5) / np.sqrt(5)  # t_{0.975, 4} * s / sqrt(n)
    assert (m, lo, hi) == pytest.approx((3.0, 3.0 - half, 3.0 + half))
    assert mean_ci_t([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    m1, lo1, hi1 = mean_ci_t([0.5])
    assert m1 == 0.5 and np.isnan(lo1) and np.isnan(hi1)
    with pytest.raises(ValueError, match="NaN"):
        mean_ci_t([1.0, np.nan])


def test_bootstrap_ci_values_and_paired_labels():
    v = np.random.default_rng(0).normal(10.0, 2.0, size=200)
    est, lo, hi = bootstrap_ci(v, n_boot=2000, seed=1)
    _, tlo, thi = mean_ci_t(v)
    assert est == pytest.approx(v.mean()) and lo < est < hi
    assert (hi - lo) == pytest.approx(thi - tlo, rel=0.2)  # bootstrap and t intervals agree for normal data
    assert bootstrap_ci(v, n_boot=2000, seed=1) == (est, lo, hi)
    y_true = np.array(Y_TRUE * 10)
    y_pred = np.array(Y_PRED * 10)
    est, lo, hi = bootstrap_ci((y_true, y_pred), uar, n_boot=300, seed=0)
    assert est == pytest.approx(0.625) and 0.4 < lo < est < hi < 0.85
    with pytest.raises(ValueError, match="metric"):
        bootstrap_ci((y_true, y_pred))


def test_mann_whitney_fully_separated():
    r = mann_whitney([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
    assert r["U"] == 25 and r["rank_biserial"] == 1.0 and r["n_a"] == r["n_b"] == 5
    assert r["p"] == pytest.approx(2 / 252)  # exact two-sided: 2 of C(10, 5) orderings are this extreme
    r = mann_whitney([1, 2, 3], [4, 5, 6, 7])
    assert r["U"] == 0 and r["rank_biserial"] == -1.0
    tied = mann_whitney([1.0, 1.0, 1.0], [1.0, 1.0])
    assert tied["p"] == 1.0 and tied["rank_biserial"] == 0.0
    with pytest.raises(ValueError, match="b is empty"):
        mann_whitney([1.0], [])


def test_holm_on_a_known_vector():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02 0.03 0.06 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([0.02]) == pytest.approx([0.02])


def test_compare_conditions_marks_and_holm():
    rows = []
    for view, frac, a_vals, b_vals in [("mel", 0.1, [6, 7, 8, 9, 10], [1, 2, 3, 4, 5]),
                                      ("mel", 0.25, [11, 12, 13, 14, 15], [1, 2, 3, 4, 5]),
                                      ("egemaps", 0.1, [1, 2, 3, 4, 5], [1, 2, 3, 4, 5]),
                                      ("egemaps", 0.25, [1, 2, 3], [])]:
        rows += [dict(view=view, fraction=frac, condition="pre", repetition=i, test_uar=v)
                 for i, v in enumerate(a_vals)]
        rows += [dict(view=view, fraction=frac, condition="sup", repetition=i, test_uar=v)
                 for i, v in enumerate(b_vals)]
    out = compare_conditions(pd.DataFrame(rows), by=["view", "fraction"], condition_col="condition",
                             a="pre", b="sup", test="mannwhitney").set_index(["view", "fraction"])
    assert out.loc[("mel", 0.1), "p_holm"] == pytest.approx(3 * 2 / 252)
    assert out.loc[("egemaps", 0.1), "p_holm"] == pytest.approx(1.0)
    assert out["mark"].to_dict() == {("egemaps", 0.1): "ns", ("egemaps", 0.25): "n/a", ("mel", 0.1): "*",
                                     ("mel", 0.25): "*"}
    assert (out["a"] == "pre").all() and (out["b"] == "sup").all() and (out["test"] == "mannwhitney").all()
    assert out.loc[("mel", 0.25), "mean_a"] == 13 and out.loc[("mel", 0.25), "rank_biserial"] == 1.0
    assert out.loc[("mel", 0.1), "p_floor"] == pytest.approx(3 * 2 / 252) and out.loc[("mel", 0.1), "m"] == 3
    with pytest.raises(ValueError, match="'ood'"):
        compare_conditions(pd.DataFrame(rows), by="view", a="pre", b="ood")


def test_average_ranks_with_ties():
    t = pd.DataFrame({"m1": [0.9, 0.8, 0.8], "m2": [0.5, 0.7, 0.6]}, index=["a", "b", "c"])
    # m1 ranks 1, 2.5, 2.5; m2 ranks 3, 1, 2
    assert average_ranks(t, ["m1", "m2"]).tolist() == [2.0, 1.75, 2.25]
    assert average_ranks(t, ["m1", "m2"], higher_is_better=False).tolist() == [2.0, 2.25, 1.75]
    with pytest.raises(ValueError, match="m3"):
        average_ranks(t, ["m3"])


def test_temperature_and_summary_tables():
    rows = []
    for fold in range(2):
        for view, off in (("mel", 0.0), ("egemaps", -0.1)):
            rows.append(dict(fold=fold, view=view, condition="supervised", temperature=np.nan, frozen=np.nan,
                             val_uar=0.5 + off, val_wa=0.5 + off, test_uar=0.5 + off, test_wa=0.5 + off))
            for tau, score in ((0.1, 0.6), (0.5, 0.7)):
                rows.append(dict(fold=fold, view=view, condition="pairwise", temperature=tau, frozen=True,
                                 val_uar=score + off + 0.01 * fold, val_wa=score + off, test_uar=score + off,
                                 test_wa=score + off))
    table = temperature_table(pd.DataFrame(rows))
    assert len(table) == 3 and table.columns[0] == "mel/val_uar"
    assert table.loc[("pairwise", 0.5, True), "mel/val_uar"] == pytest.approx(0.705)
    assert table["average_rank_test"].tolist() == [2.0, 1.0, 3.0]  # rows sorted: tau 0.1, tau 0.5, supervised
    s = summary_table(pd.DataFrame(rows), by=["view", "condition"], value="test_uar")
    assert s.loc[(s.view == "mel") & (s.condition == "pairwise"), "n"].item() == 4


def test_bounded_metrics_have_clipped_intervals():
    near_one = [1.0, 1.0, 0.97, 1.0]
    m, lo, hi = mean_ci_t(near_one)
    assert hi > 1.0  # the plain Student-t interval leaves [0, 1]
    assert mean_ci_t(near_one, bounds=(0, 1)) == pytest.approx((m, lo, 1.0))
    assert mean_ci_t([0.0, 0.02, 0.0], bounds=(0, 1))[1] == 0.0
    assert metric_bounds("test_uar") == metric_bounds("val_wa") == metric_bounds("macro_f1") == (0.0, 1.0)
    assert metric_bounds("train_loss") is None and metric_bounds("pwcca_minus_baseline") is None
    with pytest.raises(ValueError, match="bounds"):
        mean_ci_t(near_one, bounds=(1, 0))
    est, lo, hi = bootstrap_ci([0.9, 1.0, 1.0, 0.95, 1.0, 1.0], method="BCa", bounds=(0, 1))
    assert (est, lo, hi) == pytest.approx((0.975, 0.9333333333333333, 1.0), abs=1e-9)  # seed 0; hi cut to the bound
    rows = pd.DataFrame(dict(view="mel", test_uar=near_one, train_loss=[2.0, 2.0, 1.97, 2.0]))
    s = summary_table(rows, by=["view"])
    assert s["ci_high"].iloc[0] == 1.0 and s["ci_low"].iloc[0] == pytest.approx(lo_t := mean_ci_t(near_one)[1])
    assert lo_t < 1.0
    assert summary_table(rows, by=["view"], bounds=None)["ci_high"].iloc[0] > 1.0
    assert summary_table(rows, by=["view"], value="train_loss")["ci_high"].iloc[0] > 2.0  # unbounded metric


@pytest.mark.parametrize("kind", ["int", "str"])
def test_uar_and_wa_equal_sklearn_bit_for_bit(kind):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    rng = np.random.default_rng(0)
    for trial in range(200):
        n, k = int(rng.integers(1, 40)), int(rng.integers(1, 6))
        y_true, y_pred = rng.integers(0, k, n), rng.integers(0, k + 1, n)  # class k: predicted, never true
        if kind == "str":
            y_true, y_pred = np.array([f"c{v}" for v in y_true]), np.array([f"c{v}" for v in y_pred])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns about the predicted-only class
            want = balanced_accuracy_score(y_true, y_pred)
        assert uar(y_true, y_pred) == want, (trial, y_true, y_pred)
        assert wa(y_true, y_pred) == accuracy_score(y_true, y_pred)


def test_metrics_refuse_labels_of_different_types():
    with pytest.raises(ValueError, match="different types"):
        uar(["neu", "ang"], [0, 1])


def _matched_runs(shift=0.05, folds=5, repetitions=3, noise=0.01, seed=0):
    """Runs as the grids write them: per view × fraction × fold × repetition a supervised run and its pre-trained
    twin (same fold, same labelled subset), UAR = the fold's level + the draw's + ``shift`` for pre-training."""
    rng = np.random.default_rng(seed)
    rows = []
    for view in ("mel", "egemaps", "speaker"):
        for frac in (0.02, 0.05, 0.1, 0.25):
            for fold in range(folds):
                for rep in range(repetitions):
                    base = 0.35 + 0.05 * fold + 0.03 * rng.standard_normal()
                    key = dict(view=view, fraction=frac, fold=fold, repetition=rep, seed=rep)
                    rows.append(dict(key, condition="supervised", test_uar=base))
                    shifted = base + shift + noise * rng.standard_normal()
                    rows.append(dict(key, condition="pairwise-cl", test_uar=shifted))
    return pd.DataFrame(rows)


def test_paired_test_finds_a_known_shift_the_u_test_cannot():
    runs = _matched_runs()
    paired = compare_conditions(runs, by=["view", "fraction"], a="pairwise-cl", b="supervised")
    assert (paired["test"] == "wilcoxon").all() and (paired["n"] == 15).all() and (paired["m"] == 12).all()
    assert (paired["mark"] == "*").all() and (paired["rank_biserial"] == 1.0).all()
    assert paired["p_holm"].to_numpy() == pytest.approx([12 * 2 / 2 ** 15] * 12)
    assert paired["p_floor"].to_numpy() == pytest.approx([12 * 2 / 2 ** 15] * 12)
    assert ((paired["ci_low"] < 0.05) & (0.05 < paired["ci_high"]) & (paired["ci_low"] > 0.04)).all()
    assert paired["diff"].to_numpy() == pytest.approx(0.05, abs=0.01)
    means = runs.groupby(["view", "fraction", "condition", "repetition"])["test_uar"].mean().reset_index()
    unpaired = compare_conditions(means, by=["view", "fraction"], a="pairwise-cl", b="supervised", test="mannwhitney")
    # 3 vs 3: min p = 2 / C(6, 3) = 0.1, × 12 by Holm: no cell could be significant, so none says "ns"
    assert (unpaired["mark"] == TOO_FEW).all() and (unpaired["p_floor"] == 1.0).all() and (unpaired["n"] == 3).all()
    note = power_note(unpaired, unit="repetition means")
    assert "Mann–Whitney U" in note and "With 3 repetitions no difference can reach p < 0.05; use ≥ 6" in note
    note = power_note(paired, unit="fold × repetition pairs", per_repetition=5)
    assert "Wilcoxon signed-rank" in note and "n = 15, Holm over 12 tests" in note and "no difference" not in note


def test_paired_test_without_a_shift_says_ns_and_pairs_only_twins():
    runs = _matched_runs(shift=0.0, noise=0.02)
    out = compare_conditions(runs, by=["view", "fraction"], a="pairwise-cl", b="supervised")
    assert set(out["mark"]) == {"ns"}
    lonely = runs.drop(index=runs.index[(runs["condition"] == "supervised") & (runs["fold"] == 0)])
    out = compare_conditions(lonely, by=["view", "fraction"], a="pairwise-cl", b="supervised")  # fold 0: no twins
    assert (out["n"] == 4 * 3).all() and (out["n_a"] == 5 * 3).all() and (out["n_b"] == 4 * 3).all()
    with pytest.raises(ValueError, match="ambiguous"):
        compare_conditions(runs, by="view", a="pairwise-cl", b="supervised", pair_on=["fold"])
    with pytest.raises(ValueError, match="pair_on"):
        compare_conditions(runs.drop(columns=["fold", "repetition"]), by="view", a="pairwise-cl", b="supervised")
    with pytest.raises(ValueError, match="test must be one of"):
        compare_conditions(runs, by="view", a="pairwise-cl", b="supervised", test="ttest")


def test_wilcoxon_paired_by_hand():
    r = wilcoxon_paired([2, 3, 4, 5, 6], [1, 1, 1, 1, 1])  # differences 1..5, all positive
    assert (r["W"], r["n"], r["rank_biserial"], r["diff"]) == (0.0, 5, 1.0, 3.0)
    assert r["p"] == pytest.approx(2 / 2 ** 5)  # exact: 2 of the 2^5 sign patterns are this extreme
    r = wilcoxon_paired([1, -2, 3, 4, 5], [0, 0, 0, 0, 0])  # T+ = 1+3+4+5 = 13, T- = 2
    assert r["rank_biserial"] == pytest.approx(11 / 15) and r["W"] == 2.0
    assert wilcoxon_paired([1.0, 2.0], [1.0, 2.0])["p"] == 1.0
    with pytest.raises(ValueError, match="length"):
        wilcoxon_paired([1.0, 2.0], [1.0])


def test_attainable_p_and_holm_floor():
    assert [attainable_p("wilcoxon", n) for n in (1, 3, 5, 15)] == pytest.approx([1.0, 0.25, 0.0625, 2 / 2 ** 15])
    assert attainable_p("mannwhitney", 3) == pytest.approx(0.1) and attainable_p("mannwhitney", 5, 5) == \
        pytest.approx(2 / 252)
    assert attainable_p("wilcoxon", 0) == 1.0
    assert holm_floor([0.01] * 4) == pytest.approx([0.04] * 4)
    # a test with a larger floor may rank after the others: 3 × 0.001, then 2 × 0.02 bounds both others
    assert holm_floor([0.001, 0.02, 0.02]) == pytest.approx([0.003, 0.04, 0.04])
    assert holm_floor([0.001, 0.03]) == pytest.approx([0.002, 0.03])
    assert needed_n("wilcoxon", 12) == 9 and needed_n("mannwhitney", 12) == 6 and needed_n("mannwhitney", 1) == 4


def test_power_note_when_only_some_tests_are_hopeless():
    runs = _matched_runs(repetitions=2)
    runs = runs[~((runs["view"] == "mel") & (runs["fold"] > 0))]  # mel: 2 pairs left, the others 10
    out = compare_conditions(runs, by=["view", "fraction"], a="pairwise-cl", b="supervised")
    mel = out["view"] == "mel"
    assert (out.loc[mel, "mark"] == TOO_FEW).all() and (out.loc[~mel, "mark"] == "*").all()
    assert out.loc[mel, "p_floor"].min() >= 0.05 and (out.loc[~mel, "p_floor"] < 0.05).all()
    note = power_note(out, unit="fold × repetition pairs", per_repetition=5)
    assert "n = 2–10" in note and "4 of 12 tests could not reach p < 0.05 with their n (n/a)" in note
