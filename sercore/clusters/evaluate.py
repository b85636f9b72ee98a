"""Evaluation of cluster-contrastive pre-training (paper B) against its baselines, fold by fold.

Per fold: pre-train on the emotion-unlabelled ``manifest`` utterances of the fold's training speakers (validation
speakers for early stopping; never a test speaker — checked), then fine-tune on a fraction of the labelled
``task_manifest`` training utterances and score validation and test. Pre-training runs once per fold and variant;
repetitions redraw the labelled subset and the fine-tuning seed (``seed + repetition``).
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..data.splits import LeakageError, assert_no_leakage, split_ids
from ..featureset import FeatureSet
from ..train import FinetuneConfig, PretrainConfig, finetune, pretrain_pairwise, scores, supervised_baseline
from .pretrain import VARIANTS, ClusterPretrainConfig, pretrain_cluster_contrastive
from .sampler import pseudo_labels

COLUMNS = ["fold", "view", "condition", "fraction", "repetition", "seed", "val_uar", "val_wa", "test_uar",
           "test_wa", "n_train"]
BASELINES = ("supervised", "speaker_probe", "wav2vec2_frozen", "pairwise_cl")
PROBE_C = (0.01, 0.1, 1.0, 10.0)


def labelled_subset(ids, labels, fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """A stratified ``fraction`` of ``ids`` (at least one per class), drawn with ``seed``; all when fraction = 1."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    ids, labels = np.asarray(ids).astype(str), np.asarray(labels).astype(str)
    if fraction == 1:
        return ids.tolist(), labels.tolist()
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        keep.extend(rng.choice(idx, size=max(1, int(round(fraction * len(idx)))), replace=False))
    keep = np.sort(keep)
    return ids[keep].tolist(), labels[keep].tolist()


def pretraining_ids(manifest: pd.DataFrame, splits: pd.DataFrame, fold: int) -> tuple[list[str], list[str]]:
    """Pre-training ids of ``fold``: ``manifest`` utterances of its training speakers, and of its validation speakers.

    Raises ``LeakageError`` if any of them is a test utterance or belongs to a test speaker of the fold.
    """
    part = splits[splits["fold"] == fold]
    speakers = {s: set(part.loc[part["split"] == s, "speaker"].astype(str)) for s in ("train", "val", "test")}
    spk = manifest["speaker"].astype(str)
    train = manifest.loc[spk.isin(speakers["train"]), "utt_id"].astype(str).tolist()
    val = manifest.loc[spk.isin(speakers["val"]), "utt_id"].astype(str).tolist()
    used = manifest[manifest["utt_id"].astype(str).isin(set(train) | set(val))]
    leaked = sorted(set(used["speaker"].astype(str)) & speakers["test"])
    leaked_ids = sorted(set(used["utt_id"].astype(str)) & set(split_ids(splits, fold, "test")))
    if leaked or leaked_ids:
        raise LeakageError(f"fold {fold}: pre-training would use test speaker(s) {leaked[:5]} / test utterance(s) "
                           f"{leaked_ids[:5]}")
    return train, val


def _task_split(task_manifest: pd.DataFrame, splits: pd.DataFrame, fold: int, split: str) -> tuple[list, list]:
    ids = set(split_ids(splits, fold, split))
    rows = task_manifest[task_manifest["utt_id"].astype(str).isin(ids)]
    if rows.empty:
        raise ValueError(f"fold {fold}: no task_manifest utterance in the {split} split")
    return rows["utt_id"].astype(str).tolist(), rows["emotion"].astype(str).tolist()


def speaker_probe(features: FeatureSet, train, val, test, *, seed: int = 0) -> dict[str, float]:
    """Linear probe (standardised logistic regression, C picked on validation UAR) on raw speaker embeddings."""
    X = {name: features.numpy_fixed(features.positions(ids)) for name, (ids, _) in
         (("train", train), ("val", val), ("test", test))}
    best = None
    for c in PROBE_C:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))
        model.fit(X["train"], train[1])
        val_uar, val_wa = scores(np.asarray(val[1]), model.predict(X["val"]))
        if best is None or val_uar > best[0]:
            best = (val_uar, val_wa, model)
    test_uar, test_wa = scores(np.asarray(test[1]), best[2].predict(X["test"]))
    return {"val_uar": best[0], "val_wa": best[1], "test_uar": test_uar, "test_wa": test_wa}


def evaluate_cluster_pretraining(manifest: pd.DataFrame, task_manifest: pd.DataFrame, splits: pd.DataFrame,
                                 features: dict[str, FeatureSet], *, encoder_view: str, speaker_view: str = "speaker",
                                 fractions=(1.0, 0.1), repetitions: int = 1, variants=VARIANTS,
                                 configs: dict | None = None, device="cpu", baselines=BASELINES, folds=None,
                                 seed: int = 0, use_speaker_ids: bool = True, pairwise_views=None) -> pd.DataFrame:
    """Fine-tuning results of every pre-training variant and baseline → one tidy table (``COLUMNS``).

    ``manifest``: pre-training utterances with speakers (emotion labels unused); ``task_manifest``: labelled
    task utterances; ``splits``: ``make_splits`` table covering the task utterances. ``features[view]`` must hold
    every utterance used. ``configs`` keys: ``pretrain`` (ClusterPretrainConfig), ``finetune`` (FinetuneConfig),
    ``pairwise`` (PretrainConfig), ``pseudo`` (kwargs of ``pseudo_labels``). Conditions: ``cluster_<variant>``,
    ``supervised`` (same encoder from scratch, tuned), ``speaker_probe`` (logistic regression on ``speaker_view``),
    ``wav2vec2_frozen`` (supervised on the frozen wav2vec2 view when given and not the encoder view) and
    ``pairwise_cl`` (``pretrain_pairwise`` on ``pairwise_views``, default all views given, then fine-tuned).
    With ``use_speaker_ids=False`` pre-training uses pseudo-speakers from global clustering.
    """
    configs = dict(configs or {})
    for name in (encoder_view, speaker_view):
        if name not in features:
            raise KeyError(f"features has no view {name!r}; given: {sorted(features)}")
    unknown = sorted(set(variants) - set(VARIANTS)) + sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown variant(s)/baseline(s) {unknown}; variants {VARIANTS}, baselines {BASELINES}")
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad or repetitions < 1:
        raise ValueError(f"fractions must lie in (0, 1] (got {list(fractions)}) and repetitions >= 1 (got {repetitions})")
    assert_no_leakage(splits)
    ctx = _Context(manifest, task_manifest, splits, features, encoder_view, speaker_view, configs, device, seed,
                   use_speaker_ids, list(pairwise_views or features))
    rows = []
    for fold in (sorted(splits["fold"].unique()) if folds is None else folds):
        rows.extend(ctx.run_fold(int(fold), fractions, repetitions, variants, baselines))
    return pd.DataFrame(rows, columns=COLUMNS)


class _Context:
    """Holds the inputs of one evaluation; ``run_fold`` does one fold."""

    def __init__(self, manifest, task_manifest, splits, features, encoder_view, speaker_view, configs, device,
                 seed, use_speaker_ids, pairwise_views):
        self.manifest, self.task, self.splits, self.features = manifest, task_manifest, splits, features
        self.encoder_view, self.speaker_view, self.device, self.seed = encoder_view, speaker_view, device, seed
        self.pretrain_cfg = configs.get("pretrain") or ClusterPretrainConfig(seed=seed)
        self.finetune_cfg = configs.get("finetune") or FinetuneConfig()
        self.pairwise_cfg = configs.get("pairwise") or PretrainConfig(seed=seed)
        self.pseudo_kwargs = dict(configs.get("pseudo") or {})
        self.use_speaker_ids, self.pairwise_views = use_speaker_ids, pairwise_views

    def run_fold(self, fold, fractions, repetitions, variants, baselines) -> list[dict]:
        train_ids, val_ids = pretraining_ids(self.manifest, self.splits, fold)
        split = {s: _task_split(self.task, self.splits, fold, s) for s in ("train", "val", "test")}
        encoders = {f"cluster_{v}": (self.encoder_view, self._cluster_pretrain(train_ids, val_ids, v)) for v in variants}
        if "pairwise_cl" in baselines:
            encoders.update(self._pairwise(train_ids, val_ids))
        rows = []
        for fraction in fractions:
            for rep in range(repetitions):
                seed = self.seed + rep
                labelled = labelled_subset(*split["train"], fraction, seed)
                base = {"fold": fold, "fraction": fraction, "repetition": rep, "seed": seed}
                for condition, (view, encoder) in encoders.items():
                    rows.append({**base, "view": view, "condition": condition,
                                 **self._finetune(encoder, view, labelled, split, seed)})
                rows.extend({**base, **r} for r in self._baselines(baselines, labelled, split, seed))
        return rows

    def _pseudo(self, ids) -> tuple[np.ndarray, np.ndarray]:
        fs = self.features[self.speaker_view]
        X = fs.numpy_fixed(fs.positions(ids))
        speakers = None
        if self.use_speaker_ids:
            speakers = self.manifest.set_index(self.manifest["utt_id"].astype(str)).loc[ids, "speaker"].astype(str)
        return pseudo_labels(X, None if speakers is None else speakers.values,
                             **{"seed": self.seed, **self.pseudo_kwargs})

    def _cluster_pretrain(self, train_ids, val_ids, variant):
        spk, clu = self._pseudo(train_ids)
        val_spk, val_clu = self._pseudo(val_ids)
        result = pretrain_cluster_contrastive(self.features[self.encoder_view], train_ids, spk, clu,
                                              config=self.pretrain_cfg, device=self.device, variant=variant,
                                              val_ids=val_ids, val_speakers=val_spk, val_clusters=val_clu)
        return result.encoder

    def _pairwise(self, train_ids, val_ids) -> dict:
        views = self.pairwise_views
        if len(views) < 2 or self.encoder_view not in views:
            warnings.warn(f"pairwise_cl skipped: needs >= 2 views including {self.encoder_view!r}, got {views}")
            return {}
        result = pretrain_pairwise({v: self.features[v] for v in views}, train_ids, val_ids,
                                   config=self.pairwise_cfg, device=self.device)
        return {"pairwise_cl": (self.encoder_view, result.encoders[self.encoder_view])}

    def _finetune(self, encoder, view, labelled, split, seed) -> dict:
        config = replace(self.finetune_cfg, seed=seed)
        result = finetune(encoder, self.features[view], *labelled, *split["val"], config=config, device=self.device,
                          test_ids=split["test"][0], test_labels=split["test"][1])
        return {k: result.metrics[k] for k in ("val_uar", "val_wa", "test_uar", "test_wa", "n_train")}

    def _supervised(self, view, labelled, split, seed) -> dict:
        config = replace(self.finetune_cfg, seed=seed)
        result = supervised_baseline(self.features[view], *labelled, *split["val"], config=config, device=self.device,
                                     test_ids=split["test"][0], test_labels=split["test"][1],
                                     norm_ids=split["train"][0])
        return {k: result.metrics[k] for k in ("val_uar", "val_wa", "test_uar", "test_wa", "n_train")}

    def _baselines(self, baselines, labelled, split, seed) -> list[dict]:
        rows = []
        if "supervised" in baselines:
            rows.append({"view": self.encoder_view, "condition": "supervised",
                         **self._supervised(self.encoder_view, labelled, split, seed)})
        if "wav2vec2_frozen" in baselines and "wav2vec2" in self.features and self.encoder_view != "wav2vec2":
            rows.append({"view": "wav2vec2", "condition": "wav2vec2_frozen",
                         **self._supervised("wav2vec2", labelled, split, seed)})
        if "speaker_probe" in baselines:
            probe = speaker_probe(self.features[self.speaker_view], labelled, split["val"], split["test"], seed=seed)
            rows.append({"view": self.speaker_view, "condition": "speaker_probe", **probe,
                         "n_train": len(labelled[0])})
        return rows
