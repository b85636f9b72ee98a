"""The glue every notebook shares: corpus → task → splits → cached features, with provenance.

A notebook calls :func:`prepare` once with its parameters and gets an :class:`Experiment`: the full manifest
(the unlabelled pre-training pool), the labelled task (the 4 target emotions), the stored splits, one
``FeatureSet`` per available view, the views that were unavailable and why, and the models actually used.
:func:`configs` turns the notebook's ``quick``/``epochs`` parameters into training configs.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from .cache import extract_features
from .config import usable_cores
from .data import load_dataset, make_splits, save_splits, target_subset
from .featureset import FeatureSet
from .provenance import write_params
from .train import FinetuneConfig, PretrainConfig
from .views import _REGISTRY, ViewUnavailable, accepted_parameters, available_views, get_view

TARGETS = ("neu", "hap", "sad", "ang")
METRICS = ("val_uar", "val_wa", "test_uar", "test_wa")


@dataclass
class Experiment:
    """Everything a notebook needs: data, splits, features and what was actually used."""

    dataset: str
    manifest: pd.DataFrame
    task: pd.DataFrame
    splits: pd.DataFrame
    features: dict[str, FeatureSet]
    folds: list[int]
    output_dir: Path
    seed: int = 0
    device: str = "cpu"
    unavailable: dict[str, str] = field(default_factory=dict)
    models: dict[str, dict] = field(default_factory=dict)

    @property
    def views(self) -> list[str]:
        """The views whose features are available, in the order asked for."""
        return list(self.features)

    def summary(self) -> str:
        """A few lines: corpus size, task, folds, views and models used, unavailable views."""
        lines = [f"{self.dataset}: {len(self.manifest)} utterances, {self.manifest['speaker'].nunique()} speakers, "
                 f"emotions {dict(self.manifest['emotion'].value_counts().sort_index())}",
                 f"task: {len(self.task)} utterances of {sorted(self.task['emotion'].unique())}; "
                 f"folds {self.folds} of {self.splits['fold'].nunique()}"]
        for view, fs in self.features.items():
            model = self.models.get(view, {}).get("model", view)
            lines.append(f"view {view}: {fs.feature_shape} per {'frame' if fs.variable else 'utterance'} ({model})")
        lines += [f"view {v} unavailable: {why}" for v, why in self.unavailable.items()]
        return "\n".join(lines)

    def caption(self, *, repetitions: int | None = None, views: Sequence[str] | None = None, **extra) -> str:
        """A provenance line for figure captions: dataset, views, models actually used, repetitions."""
        from .analysis import describe

        views = list(views or self.views)
        models = {v: self.models.get(v, {}).get("model", v) for v in views}
        if self.unavailable:
            extra["unavailable"] = ", ".join(self.unavailable)
        return describe(dataset=self.dataset, views=views, models=models, repetitions=repetitions,
                        folds=",".join(map(str, self.folds)), **extra)

    def write_params(self, params: dict, **extra) -> Path:
        """``params.json`` in the output folder: notebook parameters, models used, unavailable views, seed."""
        record = dict(extra, unavailable_views=self.unavailable, n_utterances=len(self.manifest),
                      n_task=len(self.task), folds=self.folds)
        return write_params(self.output_dir, params, models=self.models, seed=self.seed, extra=record)


def _load(dataset: str, data_root, size: str, dataset_params: dict | None) -> pd.DataFrame:
    params = dict(dataset_params or {})
    if dataset == "default":
        params.setdefault("size", size)
    return load_dataset(dataset, root=data_root, **params)


def _view(name: str, params: dict, device: str):
    params = dict(params)
    if name in available_views() and "device" in accepted_parameters(_REGISTRY[name]):
        params.setdefault("device", device)
    return get_view(name, **params)


def _extract(manifest, views, view_params, workers, on_error, device) -> tuple[dict, dict, dict]:
    features, unavailable, models = {}, {}, {}
    for name in views:
        try:
            view = _view(name, (view_params or {}).get(name, {}), device)
            fs = extract_features(manifest, view, workers=workers, on_error=on_error)
        except ViewUnavailable as err:
            unavailable[name] = str(err)
            warnings.warn(f"view {name!r} skipped: {err}", stacklevel=3)
            continue
        features[name] = fs
        models[name] = dict(fs.meta.get("provenance") or {}, view=name, version=fs.meta.get("version"))
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


def prepare(dataset: str = "default", data_root: str | None = None, *, size: str = "default",
            views: Sequence[str] = ("egemaps", "mel", "speaker"), folds: Sequence[int] | None = None,
            n_folds: int = 5, seed: int = 0, output_dir: str | Path = ".", offline: bool = False,
            workers: int | None = None, view_params: dict | None = None, dataset_params: dict | None = None,
            targets: Sequence[str] = TARGETS, merge: dict | None = None, on_error: str = "skip",
            device: str = "cpu", quick: bool = False) -> Experiment:
    """Load ``dataset``, build the 4-class task and the folds, extract (or read cached) features of ``views``.

    Views whose model cannot be loaded are skipped with a warning and listed in ``unavailable``; utterances
    whose audio is bad are skipped (``on_error="skip"``) and reported by the cache. The splits are written to
    ``output_dir/splits.csv`` and checked for speaker leakage. ``quick`` with no ``folds`` runs the first fold only.
    """
    if offline:
        os.environ["SERCORE_OFFLINE"] = os.environ["HF_HUB_OFFLINE"] = "1"
    data_root, folds = data_root or None, (list(folds) or None) if folds is not None else None
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = _load(dataset, data_root, size, dataset_params)
    features, unavailable, models = _extract(manifest, views, view_params, workers, on_error, device)
    if not features:
        raise RuntimeError(f"no view could be extracted for {dataset}: {unavailable}")
    manifest = _common_ids(manifest, features)
    task = target_subset(manifest, emotions=tuple(targets), merge={"exc": "hap"} if merge is None else merge)
    splits = make_splits(manifest, n_folds=n_folds, seed=seed)
    save_splits(splits, output_dir / "splits.csv")
    all_folds = sorted(int(f) for f in splits["fold"].unique())
    chosen = (all_folds[:1] if quick else all_folds) if folds is None else [int(f) for f in folds]
    if not set(chosen) <= set(all_folds):
        raise ValueError(f"folds {chosen} not in the {len(all_folds)} folds of {dataset}: {all_folds}")
    return Experiment(dataset, manifest, task, splits, features, chosen, output_dir, seed, device,
                      unavailable, models)


@dataclass
class Settings:
    """Training budget of a notebook run."""

    pretrain: PretrainConfig
    finetune: FinetuneConfig
    repetitions: int
    workers: int


def run_settings(*, quick: bool = False, repetitions: int = 10, epochs: int | None = None,
                 finetune_epochs: int | None = None, seed: int = 0, workers: int | None = None) -> Settings:
    """Configs, repetitions (2 in quick mode) and fine-tuning workers (the usable cores) for a notebook."""
    pretrain, finetune = configs(quick=quick, epochs=epochs, finetune_epochs=finetune_epochs, seed=seed)
    workers = workers if workers is not None else usable_cores()
    return Settings(pretrain, finetune, min(repetitions, 2) if quick else repetitions, workers)


def fold_means(results: pd.DataFrame, *, by: Sequence[str], values: Sequence[str] = METRICS) -> pd.DataFrame:
    """Mean of ``values`` over folds for each group of ``by`` (e.g. one UAR per view × condition × fraction ×
    repetition: the unit of paper A's confidence intervals and U-tests)."""
    return results.groupby(list(by), dropna=False)[list(values)].mean().reset_index()


def configs(*, quick: bool = False, epochs: int | None = None, finetune_epochs: int | None = None,
            temperature: float = 0.5, seed: int = 0, batch_size: int = 128) -> tuple[PretrainConfig, FinetuneConfig]:
    """Pre-training and fine-tuning configs: the paper's settings, shortened in quick mode or by ``epochs``.

    Quick mode (tests, smoke runs): 4 pre-training and 8 fine-tuning epochs. ``epochs`` caps pre-training
    (paper: 100, patience 30); ``finetune_epochs`` caps fine-tuning (patience: a fifth of it, at least 5).
    """
    pre_epochs = min(epochs or 4, 4) if quick else (epochs or 100)
    fine_epochs = min(finetune_epochs or 8, 8) if quick else (finetune_epochs or 100)
    pretrain = PretrainConfig(max_epochs=pre_epochs, patience=min(30, max(5, pre_epochs // 3)),
                              temperature=temperature, seed=seed, batch_size=batch_size)
    finetune = FinetuneConfig(max_epochs=fine_epochs, patience=max(5, fine_epochs // 5), seed=seed)
    return pretrain, finetune
