"""Test-set representations of one fold from three kinds of view encoders (paper A, Figures 5/6 and Table 3).

``pre-trained``: Pairwise-CL encoders after pre-training, before any label is seen; ``supervised``: the same
encoders trained from scratch on all training labels; ``random``: freshly initialised encoders (MLP inputs
still z-normalised with the training fold's statistics). Every representation is the 128-d encoder output.

:func:`alignment_table` compares the views pair by pair (PWCCA, linear and debiased CKA) on the test set or, when
the test set is too small for the representations' width, on every utterance of the fold, next to a random-vector
baseline of the same size.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import pandas as pd

from sercore.analysis import MEASURES, pairwise_similarity
from sercore.analysis.stats import span
from sercore.analysis.tables import require_columns
from sercore.engine import CallJob
from sercore.pairwise.grids import PairwiseGrid
from sercore.pairwise.pretrain import pretrain_pairwise_cached
from sercore.training import (
    default_encoder,
    embed,
    fold_data,
    folds_of,
    normalize_if_needed,
    supervised_baseline,
    training_engine,
)
from sercore.training.grid import ExperimentData

MODELS = ("pre-trained", "supervised", "random")
SAMPLES = ("test", "all", "auto")


@dataclass
class FoldRepresentations:
    """``vectors[(model, view)]``: ``[N, 128]`` on the fold's test utterances ``ids`` with ``labels``;
    ``other_vectors[(model, view)]``: the same encoders on the fold's training and validation utterances
    ``other_ids`` (empty when not computed)."""

    fold: int
    ids: list[str]
    labels: list[str]
    vectors: dict[tuple[str, str], np.ndarray]
    other_ids: list[str] = field(default_factory=list)
    other_vectors: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def by_model(self, model: str, *, samples: str = "test") -> dict[str, np.ndarray]:
        """``{view: [N, 128]}`` of one model kind on the test set (``samples="test"``) or on the test set
        followed by the training and validation utterances (``"all"``)."""
        if samples not in ("test", "all"):
            raise ValueError(f"samples must be 'test' or 'all'; got {samples!r}")
        if samples == "all" and not self.other_ids:
            raise ValueError(f"fold {self.fold}: no training/validation representations to use samples='all'")
        out = {view: z for (m, view), z in self.vectors.items() if m == model}
        if samples == "all":
            out = {view: np.concatenate([z, self.other_vectors[(model, view)]]) for view, z in out.items()}
        return out


def fold_representations(data: ExperimentData, fold: int, config: PairwiseGrid | None = None, *,
                         models: Sequence[str] = MODELS) -> FoldRepresentations:
    """Encode the test set of ``fold`` with pre-trained, supervised and random encoders of ``config.views``
    (default every view), on ``config.device``.

    Pre-training (``config.pretrain``) uses all of ``data.features`` (the fold's training/validation pool, never
    its test group); the supervised encoders (``config.finetune``) use all labels of the training groups, model
    selection on the validation group. The fold's labelled training and validation utterances are encoded too
    (``other_ids``/``other_vectors``), for alignment on all utterances when the test set is small.
    """
    config = config or PairwiseGrid()
    features, views, device = data.features, config.views_of(data), config.device
    fd = fold_data(data.manifest, data.task, data.splits, fold, label_col=data.label_col)
    other_ids = list(fd.train_ids) + list(fd.val_ids)
    vectors: dict[tuple[str, str], np.ndarray] = {}
    other: dict[tuple[str, str], np.ndarray] = {}

    def encode(model, view, encoder):
        vectors[(model, view)] = embed(encoder, features[view], fd.test_ids, device)
        if other_ids:
            other[(model, view)] = embed(encoder, features[view], other_ids, device)

    if "pre-trained" in models:
        encoders = pretrain_pairwise_cached(features, fd.pool_train, fd.pool_val, config=config.pretrain,
                                              device=device).encoders
        for view in views:
            encode("pre-trained", view, encoders[view])
    for view in views:
        if "supervised" in models:
            result = supervised_baseline(features[view], fd.train_ids, fd.train_labels, fd.val_ids,
                                         fd.val_labels, config=config.finetune, device=device)
            encode("supervised", view, result.model.encoder)
        if "random" in models:
            encoder = default_encoder(features[view], seed=config.finetune.seed)
            normalize_if_needed(encoder, features[view], fd.pool_train)
            encode("random", view, encoder)
    return FoldRepresentations(fold, list(fd.test_ids), list(fd.test_labels), vectors, other_ids, other)


def folds_representations(data: ExperimentData, config: PairwiseGrid | None = None, *,
                          models: Sequence[str] = MODELS) -> list[FoldRepresentations]:
    """:func:`fold_representations` of each of ``data.folds`` (default all), the folds run in parallel as jobs
    of ``config``'s engine."""
    config = config or PairwiseGrid()
    quiet = replace(config, engine=None)  # what travels with each job: the engine stays here
    jobs = [CallJob(_fold_job, (data.manifest, data.task, data.splits, data.label_col, fold, quiet, tuple(models)))
            for fold in folds_of(data.splits, data.folds)]
    return config.job_engine().run(jobs, data.features)


def _fold_job(arg, features) -> FoldRepresentations:
    manifest, task, splits, label_col, fold, config, models = arg
    data = ExperimentData(manifest, task, splits, features, label_col=label_col)
    return fold_representations(data, fold, config, models=models)


def choose_samples(n_test: int, width: int, n_all: int, samples: str = "auto", *, per_dim: int = 10) -> str:
    """``"test"`` or ``"all"``: ``"auto"`` takes all utterances when the test set has fewer than ``per_dim``
    samples per dimension (``n_test < per_dim * width``) and there are more utterances than the test set."""
    if samples not in SAMPLES:
        raise ValueError(f"samples must be one of {SAMPLES}; got {samples!r}")
    if samples == "auto":
        return "all" if n_test < per_dim * width and n_all > n_test else "test"
    return samples


def alignment_table(reps: Sequence[FoldRepresentations], *, seed: int = 0, n_repeats: int = 10,
                    samples: str = "auto", variance: float | None = 0.99, per_dim: int = 10,
                    engine=None) -> pd.DataFrame:
    """PWCCA, linear CKA and debiased CKA for every pair of views, per fold and model kind, with baselines.

    ``samples``: ``"test"`` (each fold's test set, as paper A), ``"all"`` (test, training and validation
    utterances of the fold: the encoders have seen the latter, so this measures alignment on the data they
    were fitted to) or ``"auto"`` (all when the test set has fewer than ``per_dim`` samples per dimension of
    the representations, see :func:`choose_samples`). ``variance``: PWCCA's SVD step. When the samples cannot
    hold both widths (``2 width > n - 1``) PWCCA keeps at most ``(n - 1) // 2`` directions (``max_dims``).

    Every row carries its baseline: random vectors with the same number of samples, width and singular values
    as the pair's representations (:func:`sercore.analysis.matched_baseline`, ``n_repeats`` draws), as
    ``<m>_baseline`` (mean), ``<m>_baseline_sd`` (spread) and ``<m>_minus_baseline``, for ``m`` in
    ``pwcca, cka, debiased_cka``. The ``random vectors`` rows (paper A's "Random" row) hold, per fold and pair,
    those baselines averaged over the model kinds.

    Columns ``fold, condition, pair, view_a, view_b, pwcca, cka, debiased_cka``, the baseline columns, and
    ``samples`` (the choice made), ``n_samples`` (rows used), ``n_test``, ``width``, ``variance``, ``max_dims``
    (0 when not needed), ``n_repeats``: enough for a caption (:func:`alignment_note`).
    The folds run in parallel as jobs of ``engine`` (a name or Engine; default: one after another here).
    """
    kw = dict(seed=seed, n_repeats=n_repeats, samples=samples, variance=variance, per_dim=per_dim)
    frames = training_engine(engine).run([CallJob(_fold_alignment, (rep, kw)) for rep in reps])
    out = pd.concat(frames, ignore_index=True)
    out["pair"] = out["view_a"] + "-" + out["view_b"]
    first = ["fold", "condition", "pair", "view_a", "view_b", *MEASURES]
    return out[first + [c for c in out.columns if c not in first]]


def _fold_alignment(arg, features=None) -> pd.DataFrame:
    """The rows of one fold of :func:`alignment_table` (``arg``: the fold's representations, its keywords)."""
    rep, kw = arg
    models = list(dict.fromkeys(m for m, _ in rep.vectors))
    width = max(z.shape[1] for z in rep.vectors.values())
    n_test = len(rep.ids)
    choice = choose_samples(n_test, width, n_test + len(rep.other_ids), kw["samples"], per_dim=kw["per_dim"])
    if choice == "all" and not rep.other_ids:
        warnings.warn(f"fold {rep.fold}: samples='all' asked but only test representations exist; using "
                      f"the test set (n={n_test})")
        choice = "test"
    n = n_test + (len(rep.other_ids) if choice == "all" else 0)
    reduction = _reduction(n, width)
    info = dict(fold=rep.fold, samples=choice, n_samples=n, n_test=n_test, width=width,
                variance=np.nan if kw["variance"] is None else kw["variance"],
                max_dims=reduction.get("max_dims", 0), n_repeats=kw["n_repeats"])
    tables = [pairwise_similarity(rep.by_model(model, samples=choice), baseline=True, seed=kw["seed"],
                                  n_repeats=kw["n_repeats"], variance=kw["variance"], **reduction)
              .assign(condition=model, **info) for model in models]
    return pd.concat(tables + [_random_rows(tables).assign(condition="random vectors", **info)])


def _random_rows(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Per pair: every model kind's baseline (mean and spread) averaged over the kinds, as the scores of the
    ``random vectors`` condition (their own baseline is themselves: ``minus_baseline`` = 0)."""
    both = pd.concat(tables)
    cols = [c for c in both.columns if c.endswith(("_baseline", "_baseline_sd"))]
    rows = both.groupby(["view_a", "view_b"], sort=False)[cols].mean().reset_index()
    for m in MEASURES:
        rows[m], rows[f"{m}_minus_baseline"] = rows[f"{m}_baseline"], 0.0
    return rows


def _reduction(n_samples: int, width: int) -> dict:
    """CCA needs rank_x + rank_y < n_samples: with fewer utterances than that, keep the top principal
    directions of each representation (SVCCA-style), recorded in the table's ``max_dims`` column."""
    if 2 * width <= n_samples - 1:
        return {}
    return {"max_dims": max(1, (n_samples - 1) // 2)}


def similarity_table(df: pd.DataFrame, value: str = "pwcca", *, condition_col: str = "condition") -> pd.DataFrame:
    """Paper A's Table 3: rows = conditions, columns = view pairs ``a-b``, cells = mean of ``value`` over folds.

    ``df`` is tidy with ``condition_col``, ``view_a``, ``view_b`` and ``value`` (e.g. the rows of
    :func:`sercore.analysis.pairwise_similarity` for each fold and condition, concatenated).
    """
    require_columns(df, [condition_col, "view_a", "view_b", value], "similarity_table")
    d = df.assign(pair=df["view_a"].astype(str) + "-" + df["view_b"].astype(str))
    table = d.pivot_table(index=condition_col, columns="pair", values=value, aggfunc="mean", sort=False)
    table.columns.name = None
    return table


def alignment_note(df: pd.DataFrame) -> str:
    """A caption line stating the samples, PWCCA's reduction and the baseline of an alignment table
    (:func:`alignment_table`); ``""`` when the table lacks those columns."""
    if not {"samples", "n_samples", "n_test", "width"} <= set(df.columns):
        return ""
    parts = []
    for choice, g in df.groupby("samples", sort=True):
        folds = g["fold"].nunique() if "fold" in g else 1
        if choice == "all":
            parts.append(f"samples: all utterances of the fold (n={span(g['n_samples'])}; test sets n="
                         f"{span(g['n_test'])}, too few for width {span(g['width'])}), {folds} fold(s)")
        else:
            parts.append(f"samples: test set (n={span(g['n_samples'])}, width {span(g['width'])}), "
                         f"{folds} fold(s)")
    if "variance" in df and df["variance"].notna().any():
        reduction = f"PWCCA after SVD to {100 * df['variance'].dropna().iloc[0]:g} % of the variance"
    else:
        reduction = "PWCCA on all directions"
    if "max_dims" in df and (df["max_dims"] > 0).any():
        reduction += f", at most {span(df.loc[df['max_dims'] > 0, 'max_dims'])} directions"
    parts.append(reduction)
    if "n_repeats" in df:
        parts.append(f"baseline: random vectors with the same n, width and singular values, "
                     f"{span(df['n_repeats'])} draws (mean ± sd); (+x) under a score = score minus its baseline")
    return " | ".join(parts)
