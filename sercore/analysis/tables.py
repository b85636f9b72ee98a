"""Result tables: saving (CSV + Markdown) and the summaries both papers use."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from sercore.analysis.stats import mean_ci_t, metric_bounds

__all__ = ["save_table", "summary_table", "require_columns", "appended_columns", "METRICS"]

METRICS = ("val_uar", "val_wa", "test_uar", "test_wa")
_APPEND: ContextVar[Callable[[pd.DataFrame], pd.DataFrame] | None] = ContextVar("appended_columns", default=None)


@contextmanager
def appended_columns(add: Callable[[pd.DataFrame], pd.DataFrame] | None) -> Iterator[None]:
    """Inside, every table :func:`save_table` writes passes through ``add`` first (e.g. a notebook's chance level
    appended to the tables a figure function writes); None: tables as given."""
    token = _APPEND.set(add)
    try:
        yield
    finally:
        _APPEND.reset(token)


def require_columns(df: pd.DataFrame, cols, where: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: columns {missing} not in the table (has {list(df.columns)})")


def save_table(df: pd.DataFrame, path_stem, *, caption: str | None = None, floatfmt: str = ".4f") -> list[Path]:
    """Write ``<path_stem>.csv`` and ``<path_stem>.md`` (caption as the Markdown's first line); return the paths.

    A non-default index is written as columns. Inside :func:`appended_columns`, its ``add`` is applied first.
    """
    add = _APPEND.get()
    df = add(df) if add is not None else df
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
                  confidence: float = 0.95, bounds="auto") -> pd.DataFrame:
    """Mean, Student-t CI and count of ``value`` per group of ``by`` (e.g. view × condition × fraction).

    ``bounds``: the CI is cut to this range; ``"auto"`` (default) uses :func:`metric_bounds` of ``value``
    ([0, 1] for UAR, WA, F1...), ``None`` leaves it as is.
    """
    by = list(by)
    bounds = metric_bounds(value) if isinstance(bounds, str) and bounds == "auto" else bounds
    require_columns(results, by + [value], "summary_table")
    rows = []
    for key, g in results.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        v = g[value].dropna().to_numpy()
        m, lo, hi = mean_ci_t(v, confidence, bounds=bounds) if len(v) else (np.nan,) * 3
        rows.append(dict(zip(by, key), mean=m, ci_low=lo, ci_high=hi, n=len(v)))
    table = pd.DataFrame(rows)
    table.attrs["value"] = value  # what "mean" is the mean of (read by sercore.analysis.chance.reports_uar)
    return table
