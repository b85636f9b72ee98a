"""Metrics, confidence intervals and significance tests for result tables.

Metrics come from scikit-learn (UAR and WA are two lines of NumPy, see below), intervals and tests from
``scipy.stats``. Holm's correction is written by hand because statsmodels is not a dependency (it is five lines).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as st
from sklearn import metrics as skm

__all__ = ["uar", "wa", "macro_f1", "confusion", "mean_ci_t", "bootstrap_ci", "metric_bounds", "mann_whitney",
           "wilcoxon_paired", "holm", "attainable_p", "holm_floor", "needed_n", "compare_conditions", "average_ranks",
           "power_note", "repetition_means", "sampling_unit", "compare_runs", "TESTS", "TEST_NAMES", "TOO_FEW"]

# Metrics that live in [0, 1], named alone or with a split prefix (``test_uar``, ``val_wa``...).
BOUNDED = ("uar", "wa", "f1", "macro_f1", "accuracy", "acc", "purity", "nmi", "recall", "precision")


def _labels_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D; got shapes {y_true.shape} and {y_pred.shape}")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred differ in length: {len(y_true)} vs {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("y_true and y_pred are empty")
    if (y_true.dtype.kind in "USO") != (y_pred.dtype.kind in "USO"):
        raise ValueError(f"y_true and y_pred hold labels of different types ({y_true.dtype} and {y_pred.dtype})")
    return y_true, y_pred


# UAR and WA are computed here rather than by sklearn's balanced_accuracy_score/accuracy_score (same values, same
# float operations): their input validation costs ~4 ms per UAR+WA pair (measured), close to a tenth of a small
# fine-tuning run that scores its validation set every epoch.
def uar(y_true, y_pred) -> float:
    """Unweighted average recall (mean of per-class recalls over the classes present in ``y_true``)."""
    y_true, y_pred = _labels_pair(y_true, y_pred)
    _, inverse = np.unique(y_true, return_inverse=True)
    recalls = np.bincount(inverse, weights=y_true == y_pred) / np.bincount(inverse)
    return float(np.mean(recalls))


def wa(y_true, y_pred) -> float:
    """Weighted accuracy as used in SER papers: plain accuracy over all utterances."""
    y_true, y_pred = _labels_pair(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def macro_f1(y_true, y_pred) -> float:
    """Macro-averaged F1 over the classes of ``y_true`` and ``y_pred``."""
    return float(skm.f1_score(*_labels_pair(y_true, y_pred), average="macro", zero_division=0))


def confusion(y_true, y_pred, labels: Sequence) -> pd.DataFrame:
    """Confusion counts as a frame: rows = true label, columns = predicted label, in ``labels`` order."""
    y_true, y_pred = _labels_pair(y_true, y_pred)
    unknown = sorted(set(map(str, np.unique(np.concatenate([y_true, y_pred])))) - set(map(str, labels)))
    if unknown:
        raise ValueError(f"labels {unknown} occur in y_true/y_pred but not in labels={list(labels)}")
    m = skm.confusion_matrix(y_true, y_pred, labels=list(labels))
    return pd.DataFrame(m, index=pd.Index(labels, name="true"), columns=pd.Index(labels, name="predicted"))


def _values(values, name="values") -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return v


def metric_bounds(name: str) -> tuple[float, float] | None:
    """``(0, 1)`` for a metric bounded to [0, 1] (UAR, WA, F1, accuracy, purity, NMI; also ``test_uar``,
    ``val_wa``...), else ``None``."""
    base = str(name).lower()
    for prefix in ("train_", "val_", "test_"):
        base = base.removeprefix(prefix)
    return (0.0, 1.0) if base in BOUNDED else None


def _clip(low: float, high: float, bounds) -> tuple[float, float]:
    """The interval cut to ``bounds = (lo, hi)`` (a mean of values in [0, 1] cannot lie outside it)."""
    if bounds is None:
        return low, high
    lo, hi = bounds
    if lo > hi:
        raise ValueError(f"bounds must be (low, high) with low <= high; got {bounds}")
    return float(np.clip(low, lo, hi)), float(np.clip(high, lo, hi))


def mean_ci_t(values, confidence: float = 0.95, *, bounds: tuple[float, float] | None = None
              ) -> tuple[float, float, float]:
    """``(mean, low, high)``: Student-t confidence interval of the mean, cut to ``bounds`` when given
    (e.g. ``(0, 1)`` for UAR, WA, F1: see :func:`metric_bounds`).

    With one value the interval is undefined and ``low``/``high`` are NaN; with identical values it is a point.
    """
    v = _values(values)
    m = float(v.mean())
    if v.size < 2:
        return m, float("nan"), float("nan")
    sem = float(st.sem(v))
    if sem == 0.0:
        return m, m, m
    low, high = st.t.interval(confidence, v.size - 1, loc=m, scale=sem)
    return (m, *_clip(float(low), float(high), bounds))


def bootstrap_ci(data, metric: Callable | None = None, *, n_boot: int = 1000, confidence: float = 0.95,
                 seed: int = 0, method: str = "percentile", bounds: tuple[float, float] | None = None
                 ) -> tuple[float, float, float]:
    """``(estimate, low, high)``: bootstrap confidence interval (``scipy.stats.bootstrap``), cut to ``bounds``.

    ``data`` is either a 1-D array of values (``metric`` defaults to the mean) or a pair
    ``(y_true, y_pred)`` resampled together (``metric(y_true, y_pred)``, e.g. :func:`uar`, required).
    ``bounds``: e.g. ``(0, 1)`` for a bounded metric (BCa intervals can otherwise leave the range).
    """
    if isinstance(data, tuple):
        if metric is None:
            raise ValueError("bootstrap_ci on (y_true, y_pred) needs a metric, e.g. metric=uar")
        y_true, y_pred = _labels_pair(*data)
        sample, kw = (y_true, y_pred), dict(paired=True)
        est = metric(y_true, y_pred)
    else:
        v = _values(data, "data")
        metric = metric or np.mean
        sample, kw = (v,), {}
        est = metric(v)
    if len(sample[0]) < 2:
        return float(est), float("nan"), float("nan")
    res = st.bootstrap(sample, metric, n_resamples=n_boot, confidence_level=confidence, vectorized=False,
                       method=method, random_state=np.random.default_rng(seed), **kw)
    return (float(est), *_clip(float(res.confidence_interval.low), float(res.confidence_interval.high), bounds))


def mann_whitney(a, b) -> dict:
    """Two-sided Mann–Whitney U test of ``a`` against ``b``.

    Returns ``dict(U, p, rank_biserial, n_a, n_b)``; ``U`` counts pairs where ``a`` wins (ties ½) and
    ``rank_biserial = 2U / (n_a n_b) - 1`` is +1 when every ``a`` exceeds every ``b``, -1 for the reverse.
    """
    a, b = _values(a, "a"), _values(b, "b")
    res = st.mannwhitneyu(a, b, alternative="two-sided")
    u = float(res.statistic)
    p = float(res.pvalue) if np.isfinite(res.pvalue) else 1.0  # all values tied: no evidence of a difference
    return dict(U=u, p=p, rank_biserial=2.0 * u / (a.size * b.size) - 1.0, n_a=int(a.size), n_b=int(b.size))


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values, in the input order (statsmodels' ``multipletests``)."""
    from statsmodels.stats.multitest import multipletests

    return multipletests(_values(pvalues, "pvalues"), method="holm")[1]


TESTS = ("wilcoxon", "mannwhitney")
TEST_NAMES = {"wilcoxon": "Wilcoxon signed-rank (paired)", "mannwhitney": "Mann–Whitney U (unpaired)"}
TOO_FEW = "n/a (n too small)"


def wilcoxon_paired(a, b, confidence: float = 0.95) -> dict:
    """Two-sided Wilcoxon signed-rank test of the paired differences ``a - b`` (``a[i]`` is paired with ``b[i]``).

    Returns ``dict(W, p, rank_biserial, diff, ci_low, ci_high, n)``: ``diff`` is the mean paired difference with
    its Student-t ``confidence`` interval; ``rank_biserial = (T+ - T-) / (T+ + T-)`` over the ranks of the non-zero
    |differences| (matched-pairs rank-biserial correlation: +1 when every ``a`` beats its twin). Zero differences
    are left out of the test (``zero_method="wilcox"``); all zero: ``p = 1``.
    """
    a, b = _values(a, "a"), _values(b, "b")
    if a.size != b.size:
        raise ValueError(f"paired samples differ in length: {a.size} vs {b.size}")
    d = a - b
    diff, low, high = mean_ci_t(d, confidence)
    nonzero = d[d != 0]
    out = dict(W=0.0, p=1.0, rank_biserial=0.0, diff=diff, ci_low=low, ci_high=high, n=int(d.size))
    if nonzero.size:
        res = st.wilcoxon(nonzero, alternative="two-sided")
        ranks = st.rankdata(np.abs(nonzero))
        t_plus = float(ranks[nonzero > 0].sum())
        out.update(W=float(res.statistic), p=float(res.pvalue), rank_biserial=(2 * t_plus - ranks.sum()) / ranks.sum())
    return out


def attainable_p(test: str, n_a: int, n_b: int | None = None) -> float:
    """The smallest two-sided p ``test`` can give with these sample sizes (no ties): scipy's p of the most
    extreme outcome. ``wilcoxon``: ``n_a`` pairs (exact, 2 / 2^n, for n ≤ 50); ``mannwhitney``: ``n_a`` vs ``n_b``
    values (exact 2 / C(n_a + n_b, n_a) up to 8 per side, else the normal approximation scipy uses)."""
    _check_test(test)
    n_b = n_a if n_b is None else n_b
    if min(n_a, n_b) < 1:
        return 1.0
    if test == "wilcoxon":
        return float(st.wilcoxon(np.arange(1.0, n_a + 1)).pvalue)
    return float(st.mannwhitneyu(np.arange(n_a) + n_b, np.arange(n_b), alternative="two-sided").pvalue)


def holm_floor(floors) -> np.ndarray:
    """Per test, the smallest Holm-adjusted p it could reach, given each test's smallest raw p ``floors``.

    With equal floors this is ``m × floor``; a test whose floor is larger than others' may do better by
    ranking after them (the other tests at their floors, each adjusted p at least the ones before it).
    """
    f = _values(floors, "floors")
    m, out = f.size, np.empty(f.size)
    for i, fi in enumerate(f):
        before = np.sort(np.delete(f, i)[np.delete(f, i) <= fi])
        steps = np.maximum.accumulate(np.concatenate([[0.0], (m - np.arange(before.size)) * before]))
        out[i] = min(max(steps[k], (m - k) * fi) for k in range(before.size + 1))
    return out.clip(max=1.0)


def needed_n(test: str, m: int, alpha: float = 0.05, limit: int = 1000) -> int | None:
    """The fewest pairs (``wilcoxon``) or values per condition (``mannwhitney``) with which one of ``m`` equal
    Holm-corrected tests can reach ``p < alpha``; None beyond ``limit``."""
    return next((n for n in range(1, limit + 1) if m * attainable_p(test, n) < alpha), None)


def _check_test(test: str) -> None:
    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}; got {test!r}")


def _pairs(g: pd.DataFrame, condition_col: str, cond: str, value: str, pair_on: list[str], key) -> pd.Series:
    rows = g[g[condition_col] == cond].dropna(subset=[value])
    dup = rows.duplicated(pair_on)
    if dup.any():
        raise ValueError(f"compare_conditions: {int(dup.sum())} row(s) of {cond!r} in group {key} repeat a "
                         f"{' × '.join(pair_on)} key, so the pairs are ambiguous; average them or pass pair_on=")
    return rows.set_index(pair_on)[value]


def _one_test(g, key, by, condition_col, a, b, value, test, pair_on) -> dict:
    if test == "mannwhitney":
        va, vb = (g.loc[g[condition_col] == c, value].dropna() for c in (a, b))
    else:
        va, vb = (_pairs(g, condition_col, c, value, pair_on, key) for c in (a, b))
    row = dict(zip(by, key), a=a, b=b, test=test, n_a=len(va), n_b=len(vb), mean_a=np.nan, mean_b=np.nan)
    if not (len(va) and len(vb)):
        return dict(row, n=0, p=np.nan)
    row.update(mean_a=float(va.mean()), mean_b=float(vb.mean()))
    if test == "mannwhitney":
        res = mann_whitney(va, vb)
        return dict(row, n=min(len(va), len(vb)), diff=row["mean_a"] - row["mean_b"], U=res["U"], p=res["p"],
                    rank_biserial=res["rank_biserial"])
    both = pd.concat([va.rename("a"), vb.rename("b")], axis=1, join="inner")
    if both.empty:
        return dict(row, n=0, p=np.nan)
    return dict(row, **wilcoxon_paired(both["a"], both["b"]))


def compare_conditions(df: pd.DataFrame, *, by, condition_col: str = "condition", a, b: str,
                       value: str = "test_uar", alpha: float = 0.05, test: str = "wilcoxon",
                       pair_on: Sequence[str] | None = None) -> pd.DataFrame:
    """Condition ``a`` (a name, or a list: each against ``b``) against ``b`` within each group of ``by``,
    Holm-adjusted over every test of the call.

    ``test="wilcoxon"`` (the default) pairs the rows of ``a`` and ``b`` that share ``pair_on`` (default: the
    columns ``fold`` and ``repetition`` that ``df`` has) and runs :func:`wilcoxon_paired`. The grids give each
    pre-trained run a twin trained from scratch on the same fold with the same labelled subset and seed, so
    the fold's test set and the label draw cancel in the difference. Why Wilcoxon over the pairs of every fold
    and repetition: given the folds' pre-trained encoders (what paper A's test also holds fixed), the pairs are
    independent, and the signed-rank test needs only that each difference be symmetric about 0 under the null,
    not that the folds share a distribution. A hierarchical bootstrap over folds would generalise over
    encoders too, but with 3-5 folds its intervals have no reliable coverage. Unpaired rows are left out.
    ``test="mannwhitney"``: paper A's two-sided U test, one value per row (pass repetition means).

    One row per test: the ``by`` columns, ``a, b, test, n_a, n_b, n`` (pairs, or the smaller sample),
    ``mean_a, mean_b, diff`` (Wilcoxon: mean paired difference with ``ci_low, ci_high``, its 95% CI), ``W`` or
    ``U``, ``p, rank_biserial``, ``m`` (tests in the Holm family), ``p_floor`` (the smallest adjusted p this
    test could reach with its n, :func:`attainable_p` and :func:`holm_floor`), ``p_holm``, ``mark``: ``*`` when
    ``p_holm < alpha``, ``"n/a (n too small)"`` when ``p_floor >= alpha`` (no result could be significant),
    else ``ns``; a group lacking a condition gets NaN statistics, ``mark = "n/a"`` and is left out.
    """
    _check_test(test)
    by = [by] if isinstance(by, str) else list(by)
    conditions = [a] if isinstance(a, str) else list(a)
    if pair_on is None:
        pair_on = [c for c in ("fold", "repetition") if c in df.columns] if test == "wilcoxon" else []
        if test == "wilcoxon" and not pair_on:
            raise ValueError("compare_conditions: the paired test needs a fold and/or repetition column to pair "
                             "runs; pass pair_on= or test='mannwhitney'")
    pair_on = list(pair_on)
    missing = [c for c in by + pair_on + [condition_col, value] if c not in df.columns]
    if missing:
        raise ValueError(f"compare_conditions: columns {missing} not in the table (has {list(df.columns)})")
    for cond in conditions + [b]:
        if not (df[condition_col] == cond).any():
            raise ValueError(f"compare_conditions: no rows with {condition_col} == {cond!r}; "
                             f"found {sorted(df[condition_col].astype(str).unique())}")
    rows = []
    for cond in conditions:
        for key, g in (df.groupby(by, sort=True) if by else [((), df)]):
            key = key if isinstance(key, tuple) else (key,)
            rows.append(_one_test(g, key, by, condition_col, cond, b, value, test, pair_on))
    out = pd.DataFrame(rows)
    ok = out["p"].notna()
    out["m"] = int(ok.sum())
    out["p_floor"] = out["p_holm"] = np.nan
    if ok.any():
        floors = [attainable_p(test, r.n) if test == "wilcoxon" else attainable_p(test, r.n_a, r.n_b)
                  for r in out[ok].itertuples()]
        out.loc[ok, "p_floor"] = holm_floor(floors)
        out.loc[ok, "p_holm"] = holm(out.loc[ok, "p"])
    out["mark"] = np.where(~ok, "n/a", np.where(out["p_floor"] >= alpha, TOO_FEW,
                                                 np.where(out["p_holm"] < alpha, "*", "ns")))
    order = by + ["a", "b", "test", "n_a", "n_b", "n", "mean_a", "mean_b", "diff", "ci_low", "ci_high", "W", "U", "p",
                  "rank_biserial", "m", "p_floor", "p_holm", "mark"]
    present = set(out.columns) | {"diff", "rank_biserial"}  # also when no group had both conditions
    return out.reindex(columns=[c for c in order if c in present])


def repetition_means(runs: pd.DataFrame, by: Sequence[str], value: str = "test_uar") -> pd.DataFrame:
    """One ``value`` per ``by`` × ``repetition``: the mean over folds, paper A's unit; a table without a
    ``fold`` column (already one row per repetition) comes back as it is."""
    if "fold" not in runs.columns:
        return runs
    return runs.groupby(list(by) + ["repetition"], dropna=False)[value].mean().reset_index()


def sampling_unit(runs: pd.DataFrame, test: str) -> tuple[str, int]:
    """``(what test runs on, units one repetition adds)`` for a grid's run table: fold × repetition pairs (one
    per fold) for ``wilcoxon``, repetition means (one) for ``mannwhitney``."""
    _check_test(test)
    if test == "mannwhitney":
        return "repetition means", 1
    if "fold" in runs.columns:
        return "fold × repetition pairs", max(1, int(runs["fold"].nunique()))
    return "repetition pairs", 1


def compare_runs(runs: pd.DataFrame, *, by, condition_col: str = "condition", a, b: str, value: str = "test_uar",
                 alpha: float = 0.05, test: str = "wilcoxon") -> pd.DataFrame:
    """:func:`compare_conditions` on a grid's run table (one row per fold × repetition × condition...), each
    test on its unit: ``wilcoxon`` pairs the runs with their twins of the same fold and repetition,
    ``mannwhitney`` (paper A) compares the repetition means over folds (:func:`repetition_means`)."""
    by = [by] if isinstance(by, str) else list(by)
    data = repetition_means(runs, by + [condition_col], value) if test == "mannwhitney" else runs
    return compare_conditions(data, by=by, condition_col=condition_col, a=a, b=b, value=value, alpha=alpha,
                              test=test)


def power_note(tests: pd.DataFrame, *, alpha: float = 0.05, unit: str = "", per_repetition: int = 1) -> str:
    """One caption sentence on a :func:`compare_conditions` table: the test, ``unit`` (what it ran on), n, the
    Holm family and the smallest adjusted p it could reach; when no test could reach ``alpha``, it says so and
    how many repetitions would (``per_repetition``: units one repetition adds, e.g. the folds for pairs)."""
    done = tests[tests["p"].notna()]
    if done.empty:
        return "no test: a condition is missing"
    names = ", ".join(TEST_NAMES[t] for t in dict.fromkeys(done["test"]))
    n, m = span(done["n"]), span(done["m"])
    text = (f"test: {names}{' on ' + unit if unit else ''}, n = {n}, Holm over {m} tests; smallest attainable "
            f"adjusted p {done['p_floor'].min():.2g}")
    hopeless = done["mark"] == TOO_FEW
    if hopeless.all():
        reps = span(done["n"] / per_repetition)
        need = needed_n(done["test"].iloc[0], int(done["m"].max()), alpha)
        more = f"; use ≥ {-(-need // per_repetition)} repetitions" if need else ""
        folds = f" ({per_repetition} fold{'s' * (per_repetition > 1)})" if unit.startswith("fold") else ""
        text += f". With {reps} repetitions{folds} no difference can reach p < {alpha:g}{more}"
    elif hopeless.any():
        text += f". {int(hopeless.sum())} of {len(done)} tests could not reach p < {alpha:g} with their n (n/a)"
    return text


def span(values) -> str:
    """``"3"`` or ``"2–5"``: the range of ``values`` for a caption (whole numbers printed as such)."""
    lo, hi = float(np.min(values)), float(np.max(values))
    text = (lambda v: str(int(v))) if lo.is_integer() and hi.is_integer() else (lambda v: f"{v:g}")
    return text(lo) if lo == hi else f"{text(lo)}–{text(hi)}"


def average_ranks(table: pd.DataFrame, metric_cols: Sequence[str], higher_is_better: bool = True) -> pd.Series:
    """Mean rank over ``metric_cols`` (each column ranked, 1 = best, ties get their average rank).

    As in paper A's Table 4. Returns a Series named ``average_rank`` on ``table``'s index.
    """
    missing = [c for c in metric_cols if c not in table.columns]
    if missing:
        raise ValueError(f"average_ranks: columns {missing} not in the table (has {list(table.columns)})")
    if len(metric_cols) == 0:
        raise ValueError("average_ranks: metric_cols is empty")
    ranks = table[list(metric_cols)].rank(axis=0, ascending=not higher_is_better, method="average")
    return ranks.mean(axis=1).rename("average_rank")
