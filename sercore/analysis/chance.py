"""Chance level, class set and protocol: what every reported UAR is read against (issue 33).

UAR (unweighted average recall) of a guess — a constant class, or random labels — is 1/K with K classes, whatever
the class balance, so ``chance_uar = 1 / n_classes``. :func:`with_chance` adds ``n_classes`` and ``chance_uar`` to a
result table; :func:`class_line` and :func:`protocol_line` are the caption parts naming the class set and the
fold scheme (speaker-disjoint or not, how many folds, speaker-(in)dependent validation).
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

CHANCE_COLUMNS = ("n_classes", "chance_uar")


def chance_columns(n_classes: int) -> dict:
    """``{"n_classes": K, "chance_uar": 1/K}``: the UAR of guessing with K classes."""
    k = int(n_classes)
    return {"n_classes": k, "chance_uar": 1.0 / k if k else float("nan")}


def reports_uar(table: pd.DataFrame) -> bool:
    """True when ``table`` holds UAR values: a column named ``*uar*``, or ``attrs["value"]`` naming one (the
    summaries of :func:`sercore.analysis.tables.summary_table`)."""
    names = [str(c) for c in table.columns] + [str(table.attrs.get("value", ""))]
    return any("uar" in name.lower() for name in names)


def with_chance(table: pd.DataFrame, n_classes: int, *, uar: bool | None = None,
                speaker_dependent: bool | None = None) -> pd.DataFrame:
    """``table`` with ``n_classes`` and ``chance_uar`` appended when it reports a UAR (``uar``: None reads
    :func:`reports_uar`; True when the caller knows, e.g. tests on UAR values) and lacks them (else as is), and
    ``speaker_dependent`` (whether test speakers were also in training) when given. The other columns and their
    values are untouched."""
    uar = reports_uar(table) if uar is None else uar
    if not uar:
        return table
    out = table.copy()
    if not set(CHANCE_COLUMNS) <= set(map(str, table.columns)):
        for name, value in chance_columns(n_classes).items():
            out[name] = value
    if speaker_dependent is not None and "speaker_dependent" not in out.columns:
        out["speaker_dependent"] = bool(speaker_dependent)
    return out


def class_line(classes: Sequence[str]) -> str:
    """``"4 (ang, hap, neu, sad); chance UAR 0.25"``: the class set and its chance level, for captions."""
    classes = sorted(map(str, classes))
    return f"{len(classes)} ({', '.join(classes)}); chance UAR {chance_columns(len(classes))['chance_uar']:.3g}"


def protocol_line(splits: pd.DataFrame) -> str:
    """The fold scheme of ``splits`` for captions: folds, scheme, speaker-(in)dependence of test and validation
    (:func:`sercore.data.splits.describe_splits`)."""
    from sercore.data.splits import describe_splits

    return describe_splits(splits)
