"""A notebook's parameters and what they mean for a run: the budget table and the run settings.

``Params`` lists every parameter a notebook may take (each default written here once); ``BUDGETS`` holds the
training budgets ``quick|default|paper``; ``run_settings`` turns parameters into a ``RunSettings``: training
configs, repetitions, workers, precision and engine, which the notebooks hand to the grids as typed grid
configurations (``pairwise_grid``, ``cluster_grid``) and record in ``params.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Sequence

from sercore.clusters.evaluate import ClusterGrid
from sercore.clusters.pretrain import ClusterPretrainConfig
from sercore.core.config import resolve_device, usable_cores
from sercore.core.precision import PRECISIONS, resolve_precision
from sercore.pairwise.grids import PairwiseGrid
from sercore.pairwise.pretrain import PretrainConfig
from sercore.training import FinetuneConfig, training_engine

ENGINES = ("local", "ray")
# Parameters whose value is each experiment's own choice: a notebook's parameters cell may set them to another value
# than Params' default (its views, their options, the repetitions its test needs); it restates no other default.
EXPERIMENT_CHOICES = ("views", "view_params", "repetitions")


@dataclass
class Params:
    """Every notebook parameter with its default, written here once. A notebook's parameters cell lists its own
    parameters and those of ``EXPERIMENT_CHOICES`` it sets; ``setup`` takes every other one from here (or from
    the values papermill injected)."""

    dataset: str = "default"  # corpus name (sercore.data.available_datasets())
    data_root: str | None = None  # corpus folder (None: the generated default corpus)
    dataset_params: dict = field(default_factory=dict)  # loader options
    size: str = "default"  # size of the generated default corpus: tiny, small, default
    views: list = field(default_factory=lambda: ["egemaps", "mel", "speaker"])
    view_params: dict = field(default_factory=dict)  # per-view options
    folds: list | None = None  # folds to run (None or []: all; quick budget: the first)
    n_folds: int | None = None  # folds built by speaker (None: automatic)
    splits: str | None = None  # a splits.csv or an EmoBox fold folder to use instead of dealing folds
    repetitions: int | None = None  # runs per setting (None: the budget's)
    budget: str = "default"  # quick, default or paper (BUDGETS)
    epochs: int | None = None  # pre-training epoch cap (None: the budget's)
    finetune_epochs: int | None = None  # fine-tuning epoch cap (None: the budget's)
    precision: str = "auto"  # auto (bf16 where the device has fast bf16 kernels, else fp32), fp32 or bf16
    engine: str = "local"  # local or ray
    ray_address: str | None = None  # Ray cluster address (engine "ray")
    device: str = "cpu"  # torch device
    seed: int = 0
    quick: bool = False  # the same as budget "quick"
    offline: bool = False  # never try to download models
    strict: bool = False  # any bad file is an error
    output_dir: str = "."  # folder for figures, tables and params.json

    def __post_init__(self):
        if self.quick and self.budget not in ("default", "quick"):
            raise ValueError(f"quick=True contradicts budget={self.budget!r}")
        self.budget = "quick" if self.quick else self.budget
        self.quick = self.budget == "quick"
        for name, value, allowed in (("budget", self.budget, BUDGETS), ("precision", self.precision, PRECISIONS),
                                     ("engine", self.engine, ENGINES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        self.folds = list(self.folds) if self.folds else None
        self.data_root = self.data_root or None

    @classmethod
    def names(cls) -> list[str]:
        """The parameter names, in order."""
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class Budget:
    """How much a run trains (one row of ``BUDGETS``); each field says what its ``None`` means."""

    epochs: int  # pre-training epoch cap
    patience: int  # pre-training: epochs without a lower validation loss before stopping
    finetune_epochs: int  # fine-tuning epoch cap
    finetune_patience: int | None  # fine-tuning: epochs without a validation-UAR gain before stopping (None: never)
    repetitions: int | None = None  # runs per setting, unless given on the command line (None: the notebook's)
    max_repetitions: int | None = None  # cap on the runs per setting (None: no cap)
    first_fold_only: bool = False  # run the first fold only
    max_permutations: int | None = None  # cap on the cluster analysis' label permutations (None: no cap)
    temperatures: tuple[float, ...] | None = None  # the temperature grid's τ values (None: the notebook's)
    source_size: str | None = None  # size of a synthetic source corpus (notebook 09; None: the notebook's)
    # significance test of the grids' figures: "wilcoxon" pairs each pre-trained run with its supervised twin
    # (same fold, same labelled subset); "mannwhitney" is paper A's U test on repetition means
    test: str = "wilcoxon"


BUDGETS = {
    "quick": Budget(epochs=4, patience=5, finetune_epochs=8, finetune_patience=5, max_repetitions=2,
                    first_fold_only=True, max_permutations=20, temperatures=(0.5,), source_size="tiny"),
    "default": Budget(epochs=10, patience=5, finetune_epochs=20, finetune_patience=5),
    # paper A: ≤100 pre-training epochs, patience 30; fine-tuning ≤100 epochs with LR × 0.9 after 5 epochs
    # without a validation gain (FinetuneConfig's decay), no early stop; 10 repetitions, U test on their means
    "paper": Budget(epochs=100, patience=30, finetune_epochs=100, finetune_patience=None, repetitions=10,
                    test="mannwhitney"),
}


@dataclass
class RunSettings:
    """What the parameters mean for training: configs, repetitions, parallelism, precision, engine."""

    budget: str
    pretrain: PretrainConfig
    finetune: FinetuneConfig
    repetitions: int | None  # None: the notebook repeats nothing
    workers: int
    device: str = "cpu"
    precision: str = "auto"
    engine: str = "local"
    ray_address: str | None = None

    @property
    def precision_used(self) -> tuple[str, str]:
        """``(used, why)``: the precision training runs in on ``device`` (``auto`` resolved)."""
        return resolve_precision(self.precision, self.device)

    @property
    def test(self) -> str:
        """The budget's significance test for the grids' figures (``test=`` of ``sercore.analysis`` figures)."""
        return self.rules.test

    @property
    def rules(self) -> Budget:
        """The budget's row of ``BUDGETS``."""
        return BUDGETS[self.budget]

    def _shared(self) -> dict:
        shared = dict(finetune=self.finetune, device=self.device, engine=self.job_engine(), workers=self.workers)
        if self.repetitions is not None:
            shared["repetitions"] = self.repetitions
        return shared

    def pairwise_grid(self, **changes) -> PairwiseGrid:
        """Paper A's grid configuration of this run (``changes``: fields to set, e.g. ``fractions``)."""
        return PairwiseGrid(**{**self._shared(), "pretrain": self.pretrain, **changes})

    def cluster_grid(self, **changes) -> ClusterGrid:
        """Paper B's grid configuration of this run: cluster-contrastive pre-training with the budget of
        ``pretrain`` (epochs, patience, seed, precision), ``pretrain`` for its Pairwise-CL baseline."""
        pre = self.pretrain
        cluster = ClusterPretrainConfig(max_epochs=pre.max_epochs, patience=pre.patience, seed=pre.seed,
                                        precision=pre.precision)
        return ClusterGrid(**{**self._shared(), "pretrain": cluster, "pairwise": pre, **changes})

    def job_engine(self):
        """The job engine of the grids (``sercore.engine``): local processes, or Ray at ``ray_address``."""
        return training_engine(self.engine, workers=self.workers, address=self.ray_address)

    def permutations(self, n: int) -> int:
        """``n`` label permutations, capped by the budget."""
        return min(n, self.rules.max_permutations or n)

    def temperatures(self, taus: Sequence[float]) -> list[float]:
        """The τ grid: ``taus``, or the budget's own."""
        return list(self.rules.temperatures or taus)

    def source_size(self, size: str) -> str:
        """The size of a synthetic source corpus: ``size``, or the budget's own."""
        return self.rules.source_size or size

    def record(self) -> dict:
        """A JSON-able summary for ``params.json``."""
        return {"budget": self.budget, "rules": asdict(self.rules), "pretrain": asdict(self.pretrain),
                "finetune": asdict(self.finetune), "repetitions": self.repetitions, "test": self.test,
                "workers": self.workers,
                "device": self.device, "precision": self.precision, "precision_used": self.precision_used[0],
                "precision_note": self.precision_used[1], "engine": self.engine, "ray_address": self.ray_address}


def run_settings(params: Params | None = None, *, explicit: Sequence[str] = (), workers: int | None = None,
                 temperature: float = 0.5, **overrides) -> RunSettings:
    """The run settings of ``params`` (or of ``Params(**overrides)``).

    Caps: ``epochs``/``finetune_epochs`` given replace the budget's (the quick budget still caps them).
    Repetitions: the quick budget keeps at most 2; the paper budget uses 10 unless ``repetitions`` is in
    ``explicit`` (the names set on the command line); ``repetitions=None`` means the notebook repeats nothing.
    """
    p = params if params is not None else Params(**overrides)
    rules = BUDGETS[p.budget]
    pre_epochs, fine_epochs = p.epochs or rules.epochs, p.finetune_epochs or rules.finetune_epochs
    if p.budget == "quick":
        pre_epochs, fine_epochs = min(pre_epochs, rules.epochs), min(fine_epochs, rules.finetune_epochs)
    pretrain = _with_precision(PretrainConfig(max_epochs=pre_epochs, patience=rules.patience, temperature=temperature,
                                              seed=p.seed), p.precision)
    finetune = _with_precision(FinetuneConfig(max_epochs=fine_epochs, patience=rules.finetune_patience, seed=p.seed),
                               p.precision)
    repetitions = p.repetitions
    if repetitions is not None and rules.repetitions and "repetitions" not in explicit:
        repetitions = rules.repetitions
    if repetitions is not None and rules.max_repetitions:
        repetitions = min(repetitions, rules.max_repetitions)
    workers = workers if workers is not None else usable_cores()
    device = str(resolve_device(p.device, where="device"))  # "auto" becomes the device it picks
    return RunSettings(p.budget, pretrain, finetune, repetitions, workers, device, p.precision, p.engine,
                       p.ray_address)


def _with_precision(config, precision: str):
    """``config`` with its ``precision`` set, for configs that have that field."""
    return replace(config, precision=precision) if "precision" in {f.name for f in fields(config)} else config

