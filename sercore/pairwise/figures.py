"""Paper A's figures: sparse labels (Figure 3), target vs out-of-distribution pre-training (Figure 4), the
temperature table (Table 4), the alignment heat maps (Table 3) and the representation maps (Figures 5 and 6).

Built on the shared figure tools of :mod:`sercore.analysis.figures` (captions, PNG + PDF, the significance marks);
each saves PNG + PDF and returns the paths. The cross-corpus and upstream figures sit beside their grids
(``crosscorpus``, ``upstreams``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from sercore.analysis.figures import check_caption, condition_figure, save_figure, scatter_grid
from sercore.analysis.stats import average_ranks
from sercore.analysis.tables import METRICS, require_columns, save_table
from sercore.pairwise.representations import alignment_note, similarity_table

__all__ = ["sparse_label_figure", "ood_figure", "temperature_table", "temperature_figure", "similarity_heatmap",
           "embedding_grid"]


def sparse_label_figure(results: pd.DataFrame, path_stem, *, caption: str, a: str = "pretrained",
                        b: str = "supervised", **kw) -> list[Path]:
    """Paper A Figure 3: UAR against the labelled fraction, pre-trained (``a``) vs supervised (``b``)."""
    kw.setdefault("title", "UAR with sparse labels")
    return condition_figure(results, path_stem, caption=caption, a=a, b=b, **kw)


def ood_figure(results: pd.DataFrame, path_stem, *, caption: str, a: str = "target", b: str = "ood",
               **kw) -> list[Path]:
    """Paper A Figure 4: pre-training on target emotions (``a``) vs out-of-distribution emotions (``b``)."""
    kw.setdefault("title", "Pre-training on target vs out-of-distribution emotions")
    return condition_figure(results, path_stem, caption=caption, a=a, b=b, **kw)


def temperature_figure(results: pd.DataFrame, path_stem, *, caption: str, **table_kw) -> list[Path]:
    """Paper A Table 4 (temperature × frozen/tuned): heat map of mean metrics per view and average ranks.

    Also saves the table (:func:`temperature_table`) as ``<stem>`` CSV + Markdown.
    """
    check_caption(caption)
    table = temperature_table(results, **table_kw)
    rank_cols = [c for c in table.columns if c.startswith("average_rank")]
    metric_cols = [c for c in table.columns if c not in rank_cols]
    labels = [_row_label(k, table.index.names) for k in table.index]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(0.9 * len(metric_cols) + 4, 0.5 * len(table) + 2.2),
                                   gridspec_kw=dict(width_ratios=[len(metric_cols), max(1, len(rank_cols))]))
    sns.heatmap(table[metric_cols], annot=True, fmt=".3f", cmap="viridis", ax=ax1, cbar=False,
                yticklabels=labels, annot_kws=dict(fontsize=7))
    sns.heatmap(table[rank_cols], annot=True, fmt=".2f", cmap="viridis_r", ax=ax2, cbar=False, yticklabels=False)
    ax1.set_ylabel("")
    ax2.set_ylabel("")
    ax1.set_title("mean over folds")
    ax2.set_title("average rank (1 = best)")
    stem = Path(path_stem)
    return save_figure(fig, stem, caption=caption) + save_table(table, stem, caption=caption)


def _row_label(key, names) -> str:
    """``pairwise-cl temperature=0.5 frozen=True``; missing values (e.g. the baseline's temperature) left out."""
    key = key if isinstance(key, tuple) else (key,)
    parts = [str(key[0])] + [f"{n}={v}" for n, v in zip(names[1:], key[1:]) if not pd.isna(v)]
    return " ".join(parts)


def similarity_heatmap(df: pd.DataFrame, path_stem, *, caption: str,
                       values: Sequence[str] = ("pwcca", "cka", "debiased_cka"),
                       condition_col: str = "condition") -> list[Path]:
    """Paper A Table 3 as heat maps (conditions × view pairs, mean over folds), one panel per measure in
    ``values`` present in ``df``; also saves each table as ``<stem>_<value>`` (CSV + Markdown).

    With the baseline columns of :func:`sercore.pairwise.representations.alignment_table`, each cell also shows the
    score minus its baseline and the ``random vectors`` row its spread (mean ± sd over the draws), those tables
    are saved as ``<stem>_<value>_minus_baseline``, and the caption is extended with
    :func:`sercore.pairwise.representations.alignment_note` (samples used, PWCCA's reduction, the baseline).
    """
    check_caption(caption)
    values = [v for v in values if v in df.columns]
    if not values:
        raise ValueError(f"similarity_heatmap: none of the measures {values} is a column of the table")
    note = alignment_note(df)
    caption = f"{caption} | {note}" if note else caption
    tables = {v: similarity_table(df, v, condition_col=condition_col) for v in values}
    fig, axes = plt.subplots(1, len(values), figsize=(4.2 * len(values), 0.7 * len(tables[values[0]]) + 1.8),
                             squeeze=False)
    extra = {}
    for i, (ax, v) in enumerate(zip(axes[0], values)):
        annot, fmt = True, ".3f"
        if f"{v}_baseline_sd" in df.columns:
            delta = similarity_table(df, f"{v}_minus_baseline", condition_col=condition_col)
            spread = similarity_table(df, f"{v}_baseline_sd", condition_col=condition_col)
            extra[f"{v}_minus_baseline"] = delta
            annot, fmt = _with_baseline(tables[v], delta, spread), ""
        vmin = min(0.0, float(np.nanmin(tables[v].to_numpy())))
        sns.heatmap(tables[v], annot=annot, fmt=fmt, vmin=vmin, vmax=1, cmap="viridis", ax=ax, cbar=False,
                    yticklabels=i == 0, annot_kws=dict(fontsize=8))  # shared rows: labels once, on the left
        ax.set_title(v.replace("_", " ").upper())
        ax.set_ylabel("")
        ax.tick_params(axis="y", rotation=0)
    stem = Path(path_stem)
    paths = save_figure(fig, stem, caption=caption)
    for v, t in {**tables, **extra}.items():
        paths += save_table(t, stem.with_name(f"{stem.name}_{v}"), caption=caption)
    return paths


def _with_baseline(scores: pd.DataFrame, delta: pd.DataFrame, spread: pd.DataFrame,
                   random_row: str = "random vectors") -> np.ndarray:
    """Cell texts: ``score`` over ``(score − baseline)``; on the random-vectors row ``mean`` over ``± sd``."""
    text = np.empty(scores.shape, dtype=object)
    for i, row in enumerate(scores.index):
        for j, col in enumerate(scores.columns):
            second = (f"± {spread.loc[row, col]:.3f}" if row == random_row
                      else f"({delta.loc[row, col]:+.3f})")
            text[i, j] = f"{scores.loc[row, col]:.3f}\n{second}"
    return text


def embedding_grid(maps: pd.DataFrame, path_stem, *, caption: str, row: str = "model", col: str = "view",
                   hue: str = "emotion", row_order=None, col_order=None, title: str | None = "t-SNE of test-set "
                   "representations") -> list[Path]:
    """Paper A Figures 5/6: a grid of 2-D maps (rows e.g. pre-trained/supervised/random, columns views).

    ``maps``: tidy ``[row, col, x, y, hue]`` (see :func:`sercore.analysis.maps_table`).
    """
    check_caption(caption)
    require_columns(maps, [row, col, "x", "y", hue], "embedding_grid")
    row_order = row_order or list(dict.fromkeys(maps[row]))
    col_order = col_order or list(dict.fromkeys(maps[col]))
    return scatter_grid(maps, hue=hue, row=row, col=col, row_order=row_order, col_order=col_order,
                         hue_order=sorted(maps[hue].astype(str).unique()), palette="tab10",
                         caption=caption, path_stem=path_stem, title=title)


def temperature_table(results: pd.DataFrame, *, config_cols: Sequence[str] = ("condition", "temperature", "frozen"),
                      view_col: str = "view", metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Paper A's Table 4: one row per configuration, columns ``<view>/<metric>`` (mean over folds and
    repetitions), plus ``average_rank_val`` and ``average_rank_test`` (ranks over the val_/test_ columns,
    1 = best). Configurations with missing values (e.g. no temperature for the supervised baseline) are kept.
    """
    config_cols, metrics = list(config_cols), list(metrics)
    require_columns(results, config_cols + [view_col] + metrics, "temperature_table")
    means = results.groupby(config_cols + [view_col], dropna=False, sort=True)[metrics].mean()
    wide = means.unstack(view_col)
    wide.columns = [f"{view}/{metric}" for metric, view in wide.columns]
    views = list(dict.fromkeys(results[view_col]))
    wide = wide[[f"{v}/{m}" for v in views for m in metrics]]
    metric_cols = list(wide.columns)
    for split in ("val", "test"):
        cols = [c for c in metric_cols if c.split("/", 1)[1].startswith(split + "_")]
        if cols:
            wide[f"average_rank_{split}"] = average_ranks(wide, cols)
    return wide
