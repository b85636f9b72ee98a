"""The glue every notebook shares: parameters → corpus → task → splits → cached features → run settings.

A notebook calls :func:`setup` once, right after its parameters cell::

    exp, run = setup(globals())

and gets an :class:`Experiment` (an ``ExperimentData``: the full manifest, i.e. the unlabelled pre-training
pool; the labelled task of the 4 target emotions, the stored splits, one ``FeatureSet`` per available view, the
views that were unavailable and why; and the models actually used) and its
:class:`~sercore.notebook.settings.RunSettings` (training configs of the budget, repetitions, workers, precision,
engine; ``run.pairwise_grid()`` and ``run.cluster_grid()`` give the papers' grid configurations).
``params.json`` is written at once with every notebook parameter, the names papermill injected and the run
settings. :func:`prepare` is the data half alone.
"""

from __future__ import annotations

import ast
import inspect
import os
import time
import types
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from sercore.analysis.chance import chance_columns, class_line, protocol_line, reports_uar, with_chance
from sercore.analysis.tables import METRICS
from sercore.core.config import cache_dir, resolve_device
from sercore.core.digests import DigestMemo
from sercore.core.provenance import write_params
from sercore.data import (
    TARGET_EMOTIONS,
    bad_files,
    describe_splits,
    load_dataset,
    make_splits,
    read_splits,
    save_splits,
    speaker_dependent_test,
    target_subset,
)
from sercore.data.duplicates import leave_out_copies
from sercore.data.registry import dataset_info
from sercore.features.cache import DIGESTS, extract_features
from sercore.features.featureset import FeatureSet
from sercore.notebook.progress import extraction_line, routed_progress
from sercore.notebook.requirements import require
from sercore.notebook.settings import BUDGETS, Params, RunSettings, run_settings
from sercore.training.grid import ExperimentData
from sercore.views import ViewUnavailable, accepted_parameters, available_views, get_view, view_class


@dataclass(kw_only=True)
class Experiment(ExperimentData):
    """Everything a notebook needs: the experiment's data (an ``ExperimentData``, so every grid and notebook step
    of both papers takes it), where its results go and what was actually used."""

    output_dir: Path
    seed: int = 0
    device: str = "cpu"
    models: dict[str, dict] = field(default_factory=dict)
    settings: RunSettings | None = None  # set by setup()
    histories: dict = field(default_factory=dict)  # learning curves of the last grid (see grid())

    @property
    def classes(self) -> list[str]:
        """The task's class set (sorted emotion codes); chance UAR is 1 / its size."""
        return sorted(self.task["emotion"].astype(str).unique())

    def summary(self) -> str:
        """A few lines: corpus size, task, folds, views and models used, unavailable views."""
        lines = [f"{self.dataset}: {len(self.manifest)} utterances, {self.manifest['speaker'].nunique()} speakers, "
                 f"emotions {self.manifest['emotion'].value_counts().sort_index().to_dict()}",
                 f"task: {len(self.task)} utterances of {sorted(self.task['emotion'].unique())}; "
                 f"folds {self.folds} of {self.splits['fold'].nunique()}"]
        for view, fs in self.features.items():
            model = self.models.get(view, {}).get("model", view)
            lines.append(f"view {view}: {fs.feature_shape} per {'frame' if fs.variable else 'utterance'} ({model})")
        lines += [f"view {v} unavailable: {why}" for v, why in self.unavailable.items()]
        return "\n".join(lines)

    def caption(self, *, repetitions: int | None = None, views: Sequence[str] | None = None, **extra) -> str:
        """A provenance line for figure captions: dataset, views, models actually used, repetitions."""
        from sercore.analysis import describe

        views = list(views or self.views)
        models = {v: self.models.get(v, {}).get("model", v) for v in views}
        if self.unavailable:
            extra["unavailable"] = ", ".join(self.unavailable)
        extra.setdefault("classes", class_line(self.classes))
        extra.setdefault("protocol", protocol_line(self.splits))
        if self.settings is not None:
            repetitions = self.settings.repetitions if repetitions is None else repetitions
            used = self.settings.precision_used[0]
            shown = used if self.settings.precision == used else f"{used} ({self.settings.precision})"
            extra = dict(budget=self.settings.budget, precision=shown, **extra)
        return describe(dataset=self.dataset, views=views, models=models, repetitions=repetitions,
                        folds=",".join(map(str, self.folds)), **extra)

    def table(self, table: pd.DataFrame, name: str, **caption) -> pd.DataFrame:
        """Save ``table`` as ``<output_dir>/<name>.csv`` and ``.md`` under its caption; return it for display.
        A table reporting a UAR gets ``n_classes`` and ``chance_uar`` (the task's; ``sercore.analysis.chance``)."""
        from sercore.analysis.tables import save_table

        table = with_chance(table, len(self.classes), speaker_dependent=speaker_dependent_test(self.splits))
        save_table(table, self.output_dir / name, caption=self.caption(**caption))
        return table

    def figure(self, draw: Callable, data, name: str, *, caption: dict | None = None, **kwargs):
        """``draw(data, <output_dir>/<name>, caption=..., **kwargs)`` (PNG + PDF); returns the PNG for display."""
        from IPython.display import Image

        from sercore.analysis.tables import appended_columns

        add = None
        if isinstance(data, pd.DataFrame) and reports_uar(data):  # its tables (e.g. *_stats) are about UAR
            def add(table):
                return with_chance(table, len(self.classes), uar=True,
                                   speaker_dependent=speaker_dependent_test(self.splits))
        with appended_columns(add):
            draw(data, self.output_dir / name, caption=self.caption(**(caption or {})), **kwargs)
        return Image(str(self.output_dir / f"{name}.png"))

    def grid(self, protocol: Callable, **changes) -> pd.DataFrame:
        """A grid of paper A (``protocol(data, config, histories=...)``, e.g. ``sercore.pairwise.sparse_label_grid``)
        on this experiment with the run's ``PairwiseGrid`` (``changes``: its fields to set, e.g. ``fractions``); its
        learning curves replace ``histories``."""
        self.histories = {}
        return protocol(self, self._settings().pairwise_grid(**changes), histories=self.histories)

    def learning_curves(self, name: str = "learning_curves", **caption):
        """The last grid's learning curves (pre-training losses, fine-tuning validation UAR per condition) as
        ``<name>.png/.pdf`` and their best epochs as ``<name>_best``; returns the PNG for display."""
        from IPython.display import Image

        from sercore.analysis.figures import learning_curves

        if not self.histories:
            raise RuntimeError("no learning curves: run a grid with exp.grid(...) first")
        kept = {k: h for k, h in self.histories.items() if len(h)}  # no pre-training: encoders were given
        learning_curves(self.output_dir / name, caption=self.caption(**caption), pretrain=kept.get("pretrain"),
                        finetune=kept.get("finetune"))
        return Image(str(self.output_dir / f"{name}.png"))

    def per_speaker(self, name: str, *, by: Sequence[str] = ("view", "condition"), **caption) -> pd.DataFrame:
        """The last grid's test UAR per test speaker as ``<name>`` (one row per run × speaker) and its spread over
        speakers per group of ``by`` as ``<name>_spread`` (mean over runs per speaker, then mean, std, min,
        median, max, worst and best speaker); returns the spread for display."""
        from sercore.analysis.overview import speaker_spread

        rows = self.histories.get("per_speaker")
        if rows is None or not len(rows):
            raise RuntimeError("no per-speaker results: run a grid with exp.grid(...) first")
        table = self.table(rows, name, **caption)
        return self.table(speaker_spread(table, by=tuple(by)), f"{name}_spread", **caption)

    def representations(self, *, last_fold_only: bool = False) -> list:
        """Test-set representations (pre-trained, supervised, random encoders) of each fold, or of the last one
        only (the maps of paper A's Figures 5 and 6), the folds in parallel on the run's engine; see
        ``sercore.pairwise.representations.fold_representations``."""
        from sercore.pairwise.representations import folds_representations

        data = replace(self, folds=self.folds[-1:]) if last_fold_only else self
        return folds_representations(data, self._settings().pairwise_grid())

    def _settings(self) -> RunSettings:
        if self.settings is None:
            raise RuntimeError("this Experiment has no run settings: build it with setup(), or set .settings")
        return self.settings

    def _feature_skips(self) -> list[dict]:
        """Files a view could not use (the feature store's ``skipped``), as ``bad_files`` records."""
        return [{"path": r["path"], "reason": r["reason"], "step": "features", "view": v}
                for v, fs in self.features.items() for r in fs.meta.get("skipped", [])]

    def write_params(self, params: dict, **extra) -> Path:
        """``params.json`` in the output folder: notebook parameters, models used, unavailable views, seed."""
        record = dict(extra, unavailable_views=self.unavailable, n_utterances=len(self.manifest),
                      n_task=len(self.task), folds=self.folds, folds_scheme=describe_splits(self.splits),
                      speaker_dependent_val=bool(self.splits.attrs.get("speaker_dependent_val", False)),
                      speaker_dependent_test=speaker_dependent_test(self.splits),
                      splits_source=self.splits.attrs.get("source"),
                      classes=self.classes, n_classes=len(self.classes),
                      chance_uar=chance_columns(len(self.classes))["chance_uar"],
                      bad_files=bad_files(self.manifest) + self._feature_skips(),
                      feature_cache={v: fs.meta.get("folder") for v, fs in self.features.items()})
        return write_params(self.output_dir, params, models=self.models, seed=self.seed, extra=record)


def _load(dataset: str, data_root, size: str, dataset_params: dict | None, on_error: str) -> pd.DataFrame:
    params = dict(dataset_params or {})
    if dataset == "default":
        params.setdefault("size", size)
    if "on_error" in inspect.signature(dataset_info(dataset).loader).parameters:
        params.setdefault("on_error", on_error)
    return load_dataset(dataset, root=data_root, **params)


def _view(name: str, params: dict, device: str):
    params = dict(params)
    if name in available_views() and "device" in accepted_parameters(view_class(name)):
        params.setdefault("device", device)
    return get_view(name, **params)


def _extract(manifest, views, view_params, workers, on_error, device, engine=None) -> tuple[dict, dict, dict]:
    """Features per view; progress bars go where ``sercore.notebook.progress`` routes them, and one closing
    line per view is printed (the line a rendered notebook keeps)."""
    features, unavailable, models = {}, {}, {}
    for name in views:
        start = time.perf_counter()
        try:
            view = _view(name, (view_params or {}).get(name, {}), device)
            with routed_progress():
                fs = extract_features(manifest, view, workers=workers, on_error=on_error, engine=engine)
        except ViewUnavailable as err:
            unavailable[name] = str(err)
            warnings.warn(f"view {name!r} skipped: {err}", stacklevel=3)
            continue
        features[name] = fs
        models[name] = dict(fs.meta.get("provenance") or {}, view=name, version=fs.meta.get("version"))
        print(extraction_line(name, len(fs.ids), time.perf_counter() - start, models[name].get("model")))
    return features, unavailable, models


def _common_ids(manifest: pd.DataFrame, features: dict[str, FeatureSet]) -> pd.DataFrame:
    keep = set(manifest["utt_id"].astype(str))
    for fs in features.values():
        keep &= set(fs.ids)
    dropped = len(manifest) - len(keep)
    if dropped:
        warnings.warn(f"{dropped} utterance(s) have no features in some view (bad audio, see the cache's "
                      "meta.json 'skipped'); they are left out of every experiment", stacklevel=3)
    return manifest[manifest["utt_id"].astype(str).isin(keep)].reset_index(drop=True)


def _in_every_fold(manifest: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    """The manifest's utterances that every fold of an imported split places (the others cannot be used)."""
    counts = splits.groupby("utt_id")["fold"].nunique()
    keep = set(counts.index[counts == splits["fold"].nunique()])
    left = int((~manifest["utt_id"].astype(str).isin(keep)).sum())
    if left:
        warnings.warn(f"{left} utterance(s) are not in every fold of the splits file; they are left out", stacklevel=3)
    return manifest[manifest["utt_id"].astype(str).isin(keep)].reset_index(drop=True)


def prepare(params: Params, *, workers: int | None = None, targets: Sequence[str] = TARGET_EMOTIONS,
            merge: dict | None = None, engine=None) -> Experiment:
    """Load ``params.dataset``, build the 4-class task and the folds, extract (or read cached) the features of
    ``params.views``.

    Views whose model cannot be loaded are skipped with a warning and listed in ``unavailable``; files the
    corpus loader or the feature cache cannot use are skipped and reported, or raise (``params.strict``).
    Byte-identical copies of a file are listed in ``output_dir/duplicates.csv`` and left out of the manifest,
    task and splits (strict: a copy in another split than the file it copies is an error naming both;
    ``sercore.data.duplicates``). The splits are written to ``output_dir/splits.csv`` and checked for speaker
    leakage; ``n_folds`` None lets ``make_splits`` choose. The quick budget with no ``folds`` runs the first fold
    only. ``params.splits``: a ``splits.csv`` (ours) or a folder of EmoBox fold files read by
    ``sercore.data.read_splits`` instead of dealing folds; a split with test speakers in training runs, labelled
    speaker-dependent. ``targets``/``merge``: the task's emotions and merged labels (default exc → hap).
    ``workers``: extraction processes (None: every usable core); ``engine`` (e.g. a Ray engine) extracts the
    features' chunks as its jobs (its workers must see the data and the cache).
    """
    p, on_error = params, "raise" if params.strict else "skip"
    if p.offline:
        os.environ["SERCORE_OFFLINE"] = os.environ["HF_HUB_OFFLINE"] = "1"
    output_dir = Path(p.output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = _load(p.dataset, p.data_root, p.size, p.dataset_params, on_error)
    device = str(resolve_device(p.device, where="device"))  # "auto": CUDA, else MPS, else the CPU
    features, unavailable, models = _extract(manifest, p.views, p.view_params, workers, on_error, device, engine)
    if not features:
        raise RuntimeError(f"no view could be extracted for {p.dataset}: {unavailable}")
    manifest = _common_ids(manifest, features)
    if p.splits:  # a splits.csv or an EmoBox fold folder (sercore.data.split_files), instead of dealing folds
        if p.n_folds is not None:
            warnings.warn(f"n_folds={p.n_folds} is ignored: the folds come from {p.splits}", stacklevel=2)
        splits = read_splits(p.splits, manifest, dataset=p.dataset, seed=p.seed)
        manifest = _in_every_fold(manifest, splits)
    else:
        splits = make_splits(manifest, seed=p.seed, **({} if p.n_folds is None else {"n_folds": p.n_folds}))
    digests = DigestMemo(cache_dir() / "features" / DIGESTS).digests(manifest["path"])  # the feature cache's memo
    manifest, splits, _ = leave_out_copies(manifest, splits, digests, report=output_dir / "duplicates.csv",
                                           strict=p.strict)
    task = target_subset(manifest, emotions=tuple(targets), merge={"exc": "hap"} if merge is None else merge)
    save_splits(splits, output_dir / "splits.csv")
    all_folds = sorted(int(f) for f in splits["fold"].unique())
    first_only = BUDGETS[p.budget].first_fold_only
    chosen = (all_folds[:1] if first_only else all_folds) if p.folds is None else [int(f) for f in p.folds]
    if not set(chosen) <= set(all_folds):
        raise ValueError(f"folds {chosen} not in the {len(all_folds)} folds of {p.dataset}: {all_folds}")
    return Experiment(manifest, task, splits, features, chosen, p.dataset, unavailable=unavailable,
                      output_dir=output_dir, seed=p.seed, device=device, models=models)


def fold_means(results: pd.DataFrame, *, by: Sequence[str], values: Sequence[str] = METRICS) -> pd.DataFrame:
    """Mean of ``values`` over folds for each group of ``by`` (e.g. one UAR per view × condition × fraction ×
    repetition: the unit of paper A's confidence intervals and U-tests)."""
    return results.groupby(list(by), dropna=False)[list(values)].mean().reset_index()


_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def notebook_parameters(namespace: dict) -> dict:
    """The notebook's parameters in ``namespace`` (its globals right after the parameters cell): every public
    name that is not a module, function, class or IPython's own."""
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and k not in _IPYTHON_NAMES
            and not isinstance(v, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type))}


def injected_names(namespace: dict) -> list[str]:
    """Names papermill injected: the assignments of the last executed cell that starts with ``# Parameters``
    (papermill's injected-parameters cell), read from IPython's input history ``In``; [] outside papermill."""
    for source in reversed(list(namespace.get("In") or [])):
        if source.lstrip().startswith("# Parameters"):
            tree = ast.parse(source)
            return [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)]
    return []


def setup(namespace: dict, *, workers: int | None = None,
          requires: Sequence[str] = ()) -> tuple[Experiment, RunSettings]:
    """A notebook's one setup call: ``exp, run = setup(globals())`` right after its parameters cell.

    ``requires``: what the notebook needs of its parameters (names of
    :data:`sercore.notebook.requirements.REQUIREMENTS`, e.g. ``("pairwise",)``: at least two views); a
    parameter set that cannot work raises ``BadParameters`` here, before any data is loaded, with the message
    ``run_all.py`` gives for the same parameters.

    Parameters named like a field of ``sercore.notebook.settings.Params`` configure the data (``prepare``) and the run
    (``run_settings``); the others are the notebook's own (``fractions``, ``temperatures``, ...). Writes
    ``params.json`` with all of them, the names papermill injected and the run settings, and prints a summary.
    """
    found = notebook_parameters(namespace)
    require(requires, found)
    injected = injected_names(namespace)
    params = Params(**{k: v for k, v in found.items() if k in Params.names()})
    run = run_settings(params, explicit=injected, workers=workers)
    exp = prepare(params, engine=run.job_engine() if params.engine == "ray" else None)
    exp.settings = run
    exp.write_params(found, injected=injected, resolved=asdict(params), run=run.record(),
                     engine=run.job_engine().describe())
    print(exp.summary())
    used, why = run.precision_used
    print(f"precision: {run.precision} -> {used}" + (f" ({why})" if why else ""))
    return exp, run
