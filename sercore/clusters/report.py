"""Paper B's notebook steps on a prepared :class:`sercore.notebook.experiment.Experiment`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sercore.analysis import embed_2d
from sercore.analysis.overview import pooled
from sercore.clusters.analysis import SpeakerClusterAnalysis
from sercore.clusters.evaluate import evaluate_cluster_pretraining
from sercore.clusters.pretrain import ClusterPretrainConfig


def cluster_analysis(exp, *, views=None, n_permutations: int = 200, seed: int = 0, **analysis_kw) -> dict:
    """Run :class:`SpeakerClusterAnalysis` on every view (variable-length views pooled to mean ‖ std).

    Returns tables ``per_speaker``, ``summary`` and ``global``, each with a ``view`` column, over all labelled
    utterances of the corpus (every emotion, so k = the speaker's number of emotions).
    """
    frames = {"per_speaker": [], "summary": [], "global": []}
    ids = exp.manifest["utt_id"].astype(str).tolist()
    speakers, emotions = exp.manifest["speaker"].astype(str).to_numpy(), exp.manifest["emotion"].astype(str).to_numpy()
    for view in views or exp.views:
        model = SpeakerClusterAnalysis(n_permutations=n_permutations, seed=seed, **analysis_kw)
        model.fit(pooled(exp.features[view], ids), speakers, emotions)
        frames["per_speaker"].append(model.per_speaker_.assign(view=view))
        frames["summary"].append(model.summary_.assign(view=view))
        frames["global"].append(model.global_.assign(view=view))
    return {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}


def cluster_maps(exp, *, view: str = "speaker", n_speakers: int = 4, methods=("tsne", "umap"),
                 seed: int = 0) -> pd.DataFrame:
    """2-D maps of the L2-normalised embeddings of ``n_speakers`` speakers (the first in sorted order), one per
    method: tidy ``[method, x, y, speaker, emotion]`` for :func:`sercore.analysis.speaker_emotion_map`."""
    chosen = sorted(exp.manifest["speaker"].astype(str).unique())[:n_speakers]
    rows = exp.manifest[exp.manifest["speaker"].astype(str).isin(chosen)]
    X = pooled(exp.features[view], rows["utt_id"].astype(str).tolist())
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    frames = []
    for method in methods:
        xy = embed_2d(X, method=method, seed=seed)
        frames.append(pd.DataFrame({"method": method, "x": xy[:, 0], "y": xy[:, 1],
                                    "speaker": rows["speaker"].astype(str).to_numpy(),
                                    "emotion": rows["emotion"].astype(str).to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def cluster_contrastive_experiment(exp, *, encoder_view: str = "egemaps", speaker_view: str = "speaker",
                                   fractions=(1.0, 0.1), settings, variants=None, engine=None) -> pd.DataFrame:
    """Every cluster-contrastive variant and baseline on ``exp``'s folds → one tidy table.

    The pre-training budget follows ``settings.pretrain`` (epochs, patience, seed); the unlabelled pool is every
    utterance of the corpus (all emotions) of the fold's training speakers. ``engine``: a name or Engine
    (default: the local engine with ``settings.workers`` processes).
    """
    pre = settings.pretrain
    configs = {"pretrain": ClusterPretrainConfig(max_epochs=pre.max_epochs, patience=pre.patience, seed=pre.seed,
                                                     precision=pre.precision),
               "finetune": settings.finetune, "pairwise": pre}
    kw = {} if variants is None else {"variants": variants}
    missing = [v for v in (encoder_view, speaker_view) if v not in exp.features]
    if missing:
        raise KeyError(f"views {missing} are not available ({exp.unavailable or 'not asked for'}); "
                       f"available: {exp.views}")
    return evaluate_cluster_pretraining(exp.manifest, exp.task, exp.splits, exp.features, encoder_view=encoder_view,
                                        speaker_view=speaker_view, fractions=fractions,
                                        repetitions=settings.repetitions, configs=configs,
                                        device=exp.device, folds=exp.folds, seed=pre.seed, engine=engine,
                                        workers=settings.workers, **kw)
