"""What both papers' grids share: the data a grid runs on (:class:`ExperimentData`), its configuration
(:class:`GridConfig`, which each paper extends), running its fine-tuning jobs, and the tidy result table.

A grid is ``grid(data, config)``: ``data`` an :class:`ExperimentData` (a notebook's ``Experiment`` is one),
``config`` a typed dataclass, so every setting (fractions, temperatures, budgets) travels as a field. It builds
:class:`~sercore.training.jobs.FinetuneJob` s (and its own job types), runs them with :func:`run_rows` on an engine
(runs done before come from :mod:`sercore.training.finetune_cache`) and turns the rows into a table with
:func:`result_table`. ``SUPERVISED`` names the from-scratch condition in every grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from sercore.engine import as_engine
from sercore.features.featureset import FeatureSet
from sercore.training.finetune import FinetuneConfig
from sercore.training.finetune_cache import run_cached
from sercore.training.folds import FoldData, fold_data, folds_of
from sercore.training.jobs import HISTORY, PER_SPEAKER

RESULT_COLUMNS = ["fold", "view", "condition", "repetition", "seed", "val_uar", "val_wa", "test_uar", "test_wa"]
SUPERVISED = "supervised"
WORKER_PRELOAD = ("sercore.training", "torch._dynamo")  # what training workers import before their first job


@dataclass
class ExperimentData:
    """The data of an experiment: what every grid and notebook step runs on.

    ``manifest``: every utterance (the unlabelled pre-training pool, e.g. IEMOCAP-10); ``task``: the labelled task
    (e.g. IEMOCAP-4; its ``utt_id`` s are a subset of the manifest's); ``splits``: the folds (``make_splits`` over
    the manifest); ``features``: view name → ``FeatureSet`` covering the manifest; ``folds``: the folds to run
    (None: all); ``dataset``: the corpus' name; ``unavailable``: views asked for that could not be extracted, and why.
    """

    manifest: pd.DataFrame
    task: pd.DataFrame
    splits: pd.DataFrame
    features: dict[str, FeatureSet]
    folds: list[int] | None = None
    dataset: str = ""
    label_col: str = "emotion"
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def views(self) -> list[str]:
        """The views whose features are available, in the order asked for."""
        return list(self.features)

    def fold_datas(self) -> list[FoldData]:
        """Each chosen fold's ids and labels (``sercore.training.folds.fold_data``), checked for leakage."""
        return [fold_data(self.manifest, self.task, self.splits, fold, label_col=self.label_col)
                for fold in folds_of(self.splits, self.folds)]

    def require_views(self, *views: str) -> None:
        """Raise ``KeyError`` naming the missing views, why they are missing, and the available ones."""
        missing = [v for v in views if v not in self.features]
        if missing:
            why = {v: self.unavailable.get(v, "not asked for") for v in missing}
            raise KeyError(f"views {missing} are not available ({why}); available: {self.views}")


@dataclass(frozen=True)
class GridConfig:
    """What every grid of both papers takes: the fine-tuning, how often, where. Each paper's grids extend it with
    their own fields (``sercore.pairwise.grids.PairwiseGrid``, ``sercore.clusters.evaluate.ClusterGrid``).

    Repetition r of a setting fine-tunes with seed ``finetune.seed + r`` and draws its labelled subset with it.
    """

    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    repetitions: int = 1  # runs per setting
    fractions: tuple[float, ...] = (0.02, 0.05, 0.10, 0.25)  # labelled fraction of each class (sparse-label grids)
    views: tuple[str, ...] | None = None  # views fine-tuned (None: every view of the data)
    device: str = "cpu"  # torch device of every run
    engine: Any = None  # an Engine or a name (None: the local engine with ``workers`` processes)
    workers: int = 1  # processes of the local engine

    def __post_init__(self):
        if self.repetitions < 1:
            raise ValueError(f"repetitions must be >= 1, got {self.repetitions}")
        bad = [f for f in self.fractions if not 0 < f <= 1]
        if bad:
            raise ValueError(f"fractions must lie in (0, 1], got {list(self.fractions)}")
        object.__setattr__(self, "fractions", tuple(float(f) for f in self.fractions))
        if self.views is not None:
            object.__setattr__(self, "views", tuple(self.views))

    def views_of(self, data: ExperimentData) -> list[str]:
        """The views to fine-tune: ``views``, or every view of ``data``."""
        return list(self.views or data.features)

    def job_engine(self):
        """The engine the grid's jobs run on (see :func:`training_engine`)."""
        return training_engine(self.engine, workers=self.workers)


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


