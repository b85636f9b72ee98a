"""Pseudo-labels (speaker, intra-speaker cluster) and the batch sampler of cluster-contrastive pre-training."""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import silhouette_score
from torch.utils.data import Sampler

from sercore.clusters.analysis import kmeans_labels, l2_normalize

SPEAKER_METHODS = ("agglomerative", "kmeans")


def pseudo_speakers(X: np.ndarray, *, n_speakers: int | None = None, method: str = "agglomerative",
                    threshold: float = 0.5, seed: int = 0) -> np.ndarray:
    """Pseudo-speaker names (``pspk000``...) from a global clustering of L2-normalised speaker embeddings ``X``.

    ``agglomerative``: average linkage on cosine distance, ``n_speakers`` clusters, or — when it is None — cut
    at cosine distance ``threshold``. ``kmeans`` needs ``n_speakers``.
    """
    if method not in SPEAKER_METHODS:
        raise ValueError(f"speaker method must be one of {SPEAKER_METHODS}, got {method!r}")
    if method == "kmeans":
        if n_speakers is None:
            raise ValueError("method='kmeans' needs n_speakers; use method='agglomerative' to cut by threshold")
        codes = KMeans(n_clusters=n_speakers, n_init=10, random_state=seed).fit_predict(X)
    else:
        model = AgglomerativeClustering(n_clusters=n_speakers, metric="cosine", linkage="average",
                                        distance_threshold=None if n_speakers else threshold)
        codes = model.fit_predict(X)
    return np.array([f"pspk{c:03d}" for c in codes])


def _choose_k(X: np.ndarray, k, k_grid, seed: int) -> int:
    n_distinct = len(np.unique(X, axis=0))
    if k == "silhouette":
        candidates = [g for g in k_grid if 2 <= g < min(len(X), n_distinct + 1)]
        if not candidates:
            return 1
        scores = [silhouette_score(X, kmeans_labels(X, g, seed=seed), metric="cosine") for g in candidates]
        return candidates[int(np.argmax(scores))]
    return max(1, min(int(k), n_distinct))


def pseudo_labels(X_speaker_emb, speakers=None, *, k=4, k_grid=(2, 3, 4, 5, 6), n_speakers: int | None = None,
                  speaker_method: str = "agglomerative", speaker_threshold: float = 0.5,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(speaker, cluster)`` per utterance: k-means clusters of each speaker's L2-normalised speaker embeddings.

    ``X_speaker_emb: (n_samples, n_features)``. ``speakers``: speaker ids, or None to derive pseudo-speakers with
    ``pseudo_speakers(n_speakers=, method=speaker_method, threshold=speaker_threshold)``. ``k``: clusters per
    speaker (an int, capped at the speaker's number of distinct embeddings) or ``"silhouette"`` (best cosine
    silhouette over ``k_grid``). Cluster ids are local to each speaker. Returns ``(speakers: str [n], clusters: int
    [n])``.
    """
    X = np.asarray(X_speaker_emb, dtype=np.float64)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(f"X_speaker_emb must be a non-empty (n_samples, n_features) array, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X_speaker_emb has NaN/inf values")
    if k != "silhouette" and not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"k must be an int >= 1 or 'silhouette', got {k!r}")
    X = l2_normalize(X)
    if speakers is None:
        speakers = pseudo_speakers(X, n_speakers=n_speakers, method=speaker_method, threshold=speaker_threshold,
                                   seed=seed)
    speakers = np.asarray(speakers).astype(str)
    if speakers.shape != (len(X),):
        raise ValueError(f"speakers must have one entry per row of X_speaker_emb ({len(X)}), got {speakers.shape}")
    clusters = np.zeros(len(X), dtype=np.int64)
    for spk in np.unique(speakers):
        idx = np.flatnonzero(speakers == spk)
        k_spk = _choose_k(X[idx], k, k_grid, seed)
        if k_spk >= 2:
            clusters[idx] = kmeans_labels(X[idx], k_spk, seed=seed)
    return speakers, clusters


class SpeakerClusterBatchSampler(Sampler):
    """Batches of ``n_speakers`` speakers × ``n_clusters`` of their clusters × ``n_utterances`` utterances each.

    Yields lists of positions into ``speakers``/``clusters`` (use as ``batch_sampler``). Only clusters with ≥ 2
    utterances and speakers with ≥ 2 such clusters are used, so every anchor of a batch has a positive (same
    speaker and cluster) and a same-speaker negative; every batch has ≥ 2 speakers. Excluded speakers are listed
    in ``excluded_`` (speaker → reason) and announced with a warning; fewer than 2 usable speakers raise
    ``ValueError``. Speakers and clusters with fewer than asked are used whole. Utterances come from per-cluster
    shuffled queues and each batch takes the speakers/clusters with the most unvisited utterances (ties at random),
    so an epoch visits the utterances evenly. Deterministic for ``seed`` and ``set_epoch``.
    Batches per epoch: ``batches_per_epoch`` or ceil(usable utterances / nominal batch size).
    """

    def __init__(self, speakers, clusters, *, n_speakers: int = 4, n_clusters: int = 4, n_utterances: int = 4,
                 seed: int = 0, batches_per_epoch: int | None = None):
        for name, value in (("n_speakers", n_speakers), ("n_clusters", n_clusters), ("n_utterances", n_utterances)):
            if value < 2:
                raise ValueError(f"{name} must be >= 2 (positives and negatives need two of each), got {value}")
        speakers, clusters = np.asarray(speakers).astype(str), np.asarray(clusters)
        if speakers.shape != clusters.shape or speakers.ndim != 1:
            raise ValueError(f"speakers and clusters must be 1-D of equal length, got {speakers.shape} and "
                             f"{clusters.shape}")
        self.n_speakers, self.n_clusters, self.n_utterances = n_speakers, n_clusters, n_utterances
        self.seed, self.epoch = seed, 0
        self.groups, self.excluded_ = self._group(speakers, clusters)
        if self.excluded_:
            warnings.warn(f"SpeakerClusterBatchSampler: {len(self.excluded_)} speaker(s) excluded "
                          f"(need >= 2 clusters with >= 2 utterances): {dict(list(self.excluded_.items())[:5])}")
        if len(self.groups) < 2:
            raise ValueError(f"SpeakerClusterBatchSampler needs >= 2 usable speakers, got {len(self.groups)} "
                             f"(excluded: {self.excluded_})")
        n_usable = sum(len(ix) for spk in self.groups.values() for ix in spk.values())
        nominal = n_speakers * n_clusters * n_utterances
        self.batches_per_epoch = batches_per_epoch or max(1, math.ceil(n_usable / nominal))

    @staticmethod
    def _group(speakers: np.ndarray, clusters: np.ndarray) -> tuple[dict, dict]:
        groups, excluded = {}, {}
        for spk in np.unique(speakers):
            idx = np.flatnonzero(speakers == spk)
            by_cluster = {c: idx[clusters[idx] == c] for c in np.unique(clusters[idx])}
            usable = {c: ix for c, ix in by_cluster.items() if len(ix) >= 2}
            if len(usable) >= 2:
                groups[str(spk)] = usable
            else:
                excluded[str(spk)] = f"{len(by_cluster)} cluster(s), {len(usable)} with >= 2 utterances"
        return groups, excluded

    def set_epoch(self, epoch: int) -> None:
        """Use the batches of ``epoch`` (each epoch differs; the same seed and epoch give the same batches)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        queues = {(s, c): rng.permutation(ix).tolist() for s, by_c in self.groups.items() for c, ix in by_c.items()}
        for _ in range(self.batches_per_epoch):
            batch = []
            remaining = {s: sum(len(queues[(s, c)]) for c in by_c) for s, by_c in self.groups.items()}
            for s in _most_remaining(remaining, self.n_speakers, rng):
                left = {c: len(queues[(s, c)]) for c in self.groups[s]}
                for c in _most_remaining(left, self.n_clusters, rng):
                    batch.extend(self._draw(queues, s, c, rng))
            yield batch

    def _draw(self, queues: dict, s: str, c, rng: np.random.Generator) -> list[int]:
        queue = queues[(s, c)]
        take = min(self.n_utterances, len(self.groups[s][c]))
        if len(queue) < take:  # refill after the leftovers, without repeating them in this draw
            queue = queue + [i for i in rng.permutation(self.groups[s][c]).tolist() if i not in queue]
        queues[(s, c)] = queue[take:]
        return [int(i) for i in queue[:take]]


def _most_remaining(remaining: dict, n: int, rng: np.random.Generator) -> list:
    """The ``n`` keys with the most unvisited utterances (ties broken at random), so an epoch covers them evenly."""
    keys = list(remaining)
    tie = rng.permutation(len(keys))
    order = sorted(range(len(keys)), key=lambda i: (-remaining[keys[i]], tie[i]))
    return [keys[i] for i in order[:n]]
