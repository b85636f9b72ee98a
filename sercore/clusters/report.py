"""Paper B's notebook steps on an experiment's data (:class:`~sercore.training.grid.ExperimentData`; a notebook's
``Experiment`` is one): the speaker-cluster analysis and its maps. The cluster-contrastive evaluation is
:func:`sercore.clusters.evaluate.evaluate_cluster_pretraining` with a ``ClusterGrid``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sercore.analysis import embed_2d
from sercore.analysis.overview import pooled
from sercore.clusters.analysis import SpeakerClusterAnalysis
from sercore.training.grid import ExperimentData


def cluster_analysis(exp: ExperimentData, *, views=None, n_permutations: int = 200, seed: int = 0,
                     **analysis_kw) -> dict:
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


def cluster_maps(exp: ExperimentData, *, view: str = "speaker", n_speakers: int = 4, methods=("tsne", "umap"),
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
