"""Result tables: saving (CSV + Markdown) and the summaries behind paper A's tables."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .stats import average_ranks, mean_ci_t

__all__ = ["save_table", "summary_table", "similarity_table", "temperature_table"]

METRICS = ("val_uar", "val_wa", "test_uar", "test_wa")


def _require(df: pd.DataFrame, cols, where: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: columns {missing} not in the table (has {list(df.columns)})")


def save_table(df: pd.DataFrame, path_stem, *, caption: str | None = None, floatfmt: str = ".4f") -> list[Path]:
    """Write ``<path_stem>.csv`` and ``<path_stem>.md`` (caption as the Markdown's first line); return the paths.

    A non-default index is written as columns.
    """
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    flat = df if isinstance(df.index, pd.RangeIndex) else df.reset_index()
    csv, md = stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".md")
    flat.to_csv(csv, index=False)
    # tabulate prints booleans (and object columns holding them) as numbers: show them as text.
    as_text = {c: str for c in flat.columns if flat[c].dtype == bool or flat[c].dtype == object}
    text = flat.astype(as_text).to_markdown(index=False, floatfmt=floatfmt)
    md.write_text((f"{caption}\n\n" if caption else "") + text + "\n")
    return [csv, md]


def summary_table(results: pd.DataFrame, *, by: Sequence[str], value: str = "test_uar",
                  confidence: float = 0.95) -> pd.DataFrame:
    """Mean, Student-t CI and count of ``value`` per group of ``by`` (e.g. view × condition × fraction)."""
    by = list(by)
    _require(results, by + [value], "summary_table")
    rows = []
    for key, g in results.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        v = g[value].dropna().to_numpy()
        m, lo, hi = mean_ci_t(v, confidence) if len(v) else (np.nan,) * 3
        rows.append(dict(zip(by, key), mean=m, ci_low=lo, ci_high=hi, n=len(v)))
    return pd.DataFrame(rows)


def similarity_table(df: pd.DataFrame, value: str = "pwcca", *, condition_col: str = "condition") -> pd.DataFrame:
    """Paper A's Table 3: rows = conditions, columns = view pairs ``a-b``, cells = mean of ``value`` over folds.

    ``df`` is tidy with ``condition_col``, ``view_a``, ``view_b`` and ``value`` (e.g. the rows of
    :func:`sercore.analysis.pairwise_similarity` for each fold and condition, concatenated).
    """
    _require(df, [condition_col, "view_a", "view_b", value], "similarity_table")
    d = df.assign(pair=df["view_a"].astype(str) + "-" + df["view_b"].astype(str))
    table = d.pivot_table(index=condition_col, columns="pair", values=value, aggfunc="mean", sort=False)
    table.columns.name = None
    return table


def temperature_table(results: pd.DataFrame, *, config_cols: Sequence[str] = ("condition", "temperature", "frozen"),
                      view_col: str = "view", metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Paper A's Table 4: one row per configuration, columns ``<view>/<metric>`` (mean over folds and
    repetitions), plus ``average_rank_val`` and ``average_rank_test`` (ranks over the val_/test_ columns,
    1 = best). Configurations with missing values (e.g. no temperature for the supervised baseline) are kept.
    """
    config_cols, metrics = list(config_cols), list(metrics)
    _require(results, config_cols + [view_col] + metrics, "temperature_table")
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
