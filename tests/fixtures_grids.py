"""In-memory corpora for the grid, engine and cluster tests (no audio: manifests and FeatureSets only).

``make_grid_corpus``: paper A's grids (5 sessions × 2 speakers × 6 emotions, a fixed and a sequence view);
``cluster_features`` / ``cluster_evaluation_corpus`` / ``evaluation_configs`` / ``evaluation_grid``: paper B's
evaluation.
The ``grid_corpus`` fixture (tests/conftest.py) is ``make_grid_corpus()`` once per module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sercore.clusters.evaluate import ClusterGrid
from sercore.clusters.pretrain import ClusterPretrainConfig
from sercore.data import make_splits
from sercore.features.featureset import FeatureSet
from sercore.pairwise.pretrain import PretrainConfig
from sercore.training import FinetuneConfig

EMOTIONS = ["neu", "hap", "sad", "ang", "fea", "dis"]  # 4 targets + 2 out-of-distribution


def make_grid_corpus(per_emotion=3, seed=0):
    """Manifest (5 sessions × 2 speakers × 6 emotions), its 4-class task, its splits and two views of a class
    signal: ``fixed`` (10-d, MLP encoder) and ``seq`` (6-d frames, mel encoder)."""
    rng = np.random.default_rng(seed)
    rows = [(f"Ses{s}{g}_{e}_{i}", f"Ses{s}{g}", e, f"Ses{s}") for s in range(1, 6) for g in "FM"
            for e in EMOTIONS for i in range(per_emotion)]
    manifest = pd.DataFrame(rows, columns=["utt_id", "speaker", "emotion", "session"])
    manifest["path"], manifest["dataset"] = "/nowhere.wav", "synthetic"
    label = manifest["emotion"].map(EMOTIONS.index).to_numpy()
    latent = 1.5 * rng.normal(size=(6, 4))[label] + rng.normal(size=(len(manifest), 4))
    fixed = latent @ rng.normal(size=(4, 10)) + rng.normal(size=(len(manifest), 10))
    lengths = rng.integers(4, 12, size=len(manifest))
    mix = rng.normal(size=(4, 6))
    frames = np.concatenate([latent[i] @ mix + rng.normal(size=(n, 6)) for i, n in enumerate(lengths)])
    features = {"fixed": FeatureSet(manifest["utt_id"], fixed.astype(np.float32), meta={"encoder": "mlp"}),
                "seq": FeatureSet(manifest["utt_id"], frames.astype(np.float16), lengths, meta={"encoder": "mel"})}
    task = manifest[manifest["emotion"].isin(EMOTIONS[:4])].reset_index(drop=True)
    return manifest, task, make_splits(manifest), features


def speaker_data(n_speakers=5, n_clusters=3, per=10, dim=32, seed=0):
    """Embeddings of well separated speakers, each with ``n_clusters`` tight clusters: (X, speaker, cluster)."""
    rng = np.random.default_rng(seed)
    X, spk, clu = [], [], []
    for s in range(n_speakers):
        centre = 4 * rng.normal(size=dim)
        for c in range(n_clusters):
            X.append(centre + rng.normal(size=dim) + 0.05 * rng.normal(size=(per, dim)))
            spk += [s] * per
            clu += [c] * per
    return np.concatenate(X), np.array(spk), np.array(clu)


def cluster_features(seed=0):
    """Fixed 24-d features where speaker and cluster are mixed with noise through a random linear map:
    (FeatureSet, ids, speakers as str, clusters)."""
    X, spk, clu = speaker_data(n_speakers=6, n_clusters=3, per=12, dim=24, seed=seed)
    rng = np.random.default_rng(seed + 1)
    X = (X + 1.5 * rng.normal(size=X.shape)) @ rng.normal(size=(24, 24)) / 5
    ids = np.array([f"u{i:04d}" for i in range(len(X))])
    features = FeatureSet(ids, X.astype(np.float32), meta={"view": "synthetic", "encoder": "mlp"})
    return features, ids, spk.astype(str), clu


def cluster_evaluation_corpus():
    """Paper B's evaluation input: a manifest (6 speakers in 3 sessions, clusters as emotions), its splits and
    the ``egemaps`` (cluster features) and ``speaker`` (one-hot speaker plus noise) views."""
    fs, ids, spk, clu = cluster_features(seed=3)
    emotions = np.array(["neu", "hap", "sad"])[clu]
    manifest = pd.DataFrame({"utt_id": ids, "speaker": [f"S{s}" for s in spk], "emotion": emotions,
                             "session": [f"Ses{int(s) // 2 + 1}" for s in spk]})
    rng = np.random.default_rng(0)
    speaker_emb = np.stack([np.eye(6)[int(s)] * 3 for s in spk]) + rng.normal(size=(len(spk), 6))
    features = {"egemaps": fs, "speaker": FeatureSet(ids, np.hstack([speaker_emb, fs.data[:, :4]]).astype(np.float32),
                                            meta={"encoder": "mlp"})}
    return manifest, make_splits(manifest), features


def evaluation_configs(epochs: int) -> dict:
    """Tiny configs of paper B's evaluation (cluster pre-training, fine-tuning, Pairwise-CL, pseudo-labels)."""
    return {"pretrain": ClusterPretrainConfig(n_speakers=2, n_clusters=3, n_utterances=3, max_epochs=epochs, out_dim=16,
                                              proj_hidden=16, proj_dim=16, encoder_params={"hidden": 16}),
            "finetune": FinetuneConfig(max_epochs=2, batch_size=32),
            "pairwise": PretrainConfig(max_epochs=epochs, batch_size=32, proj_hidden=16, proj_dim=16),
            "pseudo": {"k": 3}}


def evaluation_grid(epochs: int, **changes) -> ClusterGrid:
    """Paper B's grid configuration with the tiny ``evaluation_configs(epochs)`` (``changes``: fields to set)."""
    return ClusterGrid(**evaluation_configs(epochs), **changes)
