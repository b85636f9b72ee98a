"""Running a grid's fine-tuning jobs and the tidy result table that both papers' grids return.

A grid builds :class:`~sercore.training.jobs.FinetuneJob` s (and its own job types), runs them with
:func:`run_rows` on an engine (runs done before come from :mod:`sercore.training.finetune_cache`) and turns the
rows into a table with :func:`result_table`. ``SUPERVISED`` names the from-scratch condition in every grid.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from sercore.engine import as_engine
from sercore.training.finetune_cache import run_cached
from sercore.training.jobs import HISTORY, PER_SPEAKER

RESULT_COLUMNS = ["fold", "view", "condition", "repetition", "seed", "val_uar", "val_wa", "test_uar", "test_wa"]
SUPERVISED = "supervised"
WORKER_PRELOAD = ("sercore.training", "torch._dynamo")  # what training workers import before their first job


def training_engine(engine=None, *, workers: int | None = 1, address: str | None = None):
    """The engine a grid runs on: ``engine`` as is when it is an Engine, else one by name (default the local engine
    with ``workers`` processes) whose workers preload the training code."""
    return as_engine(engine, workers=workers, address=address, preload=WORKER_PRELOAD)


RUN_KEYS = ("fold", "view", "condition", "pretrain_data", "temperature", "frozen", "fraction", "repetition")


def run_name(keys: dict) -> str:
    """A learning curve's run name: ``fold=0 view=mel ...``."""
    return " ".join(f"{k}={v}" for k, v in keys.items())


def run_rows(engine, jobs: Sequence, features, histories: dict | None = None) -> list[dict]:
    """Result rows of ``jobs`` in order, each with the ``node`` it ran on; fine-tuning runs done before come from
    the result cache (:mod:`sercore.training.finetune_cache`). Fine-tuning rows' per-epoch validation
    UAR goes to ``histories["finetune"]`` (when a dict is given): one row per run × epoch with ``RUN_KEYS``,
    ``run``, ``epoch``, ``val_uar``; their test UAR per test speaker to ``histories["per_speaker"]``: one row per
    run × speaker with ``RUN_KEYS``, ``speaker``, ``n_test``, ``uar``."""
    rows = [dict(o.value, node=o.node) for o in run_cached(engine, jobs, features)]
    curves = [row.pop(HISTORY, None) for row in rows]
    speakers = [row.pop(PER_SPEAKER, None) or [] for row in rows]
    if histories is not None:
        histories["per_speaker"] = pd.DataFrame(
            [dict({k: row[k] for k in RUN_KEYS if k in row}, **s) for row, per in zip(rows, speakers) for s in per])
        records = []
        for row, curve in zip(rows, curves):
            keys = {k: row[k] for k in RUN_KEYS if k in row}
            records += [dict(keys, run=run_name(keys), epoch=e, val_uar=v)
                        for e, v in enumerate(curve or [])]  # 0-based, as the runs report their best epoch
        histories["finetune"] = pd.DataFrame(records)
    return rows


def result_table(rows: list[dict], grid_cols: Sequence[str]) -> pd.DataFrame:
    """The tidy result table of both papers: ``RESULT_COLUMNS``, then ``grid_cols``, then the rest (``n_labels``,
    ``best_epoch``, ``node``, ...) in the rows' order."""
    table = pd.DataFrame(rows)
    extra = [c for c in table.columns if c not in RESULT_COLUMNS and c not in grid_cols]
    return table[RESULT_COLUMNS + list(grid_cols) + extra]


