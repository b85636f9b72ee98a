"""Do speaker embeddings form intra-speaker emotion clusters? (paper B, clustering analysis)

``SpeakerClusterAnalysis`` clusters each speaker's (L2-normalised) embeddings with k-means and scores the
clusters against the emotion labels (purity, NMI, ARI). Significance comes from a permutation null: the
clustering is fixed and the emotion labels are shuffled within the speaker, ``p = (1 + #{null >= observed}) /
(1 + n_permutations)``. The same is done for global clusters over all speakers (labels shuffled globally), with
k = the number of emotions against the emotions and k = the number of speakers against the speakers.
It only sees ``X``, so any view (speaker, eGeMAPS, wav2vec2 means...) can be compared.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from threadpoolctl import threadpool_limits

METRICS = ("purity", "nmi", "ari")
_SMALL = 2000


def _check_inputs(X, speakers, emotions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be (n_samples, n_features), got shape {X.shape}")
    speakers = np.asarray(speakers).astype(str)
    emotions = np.asarray(emotions).astype(str)
    for name, arr in (("speakers", speakers), ("emotions", emotions)):
        if arr.shape != (len(X),):
            raise ValueError(f"{name} must have one entry per row of X ({len(X)}), got shape {arr.shape}")
    if not np.isfinite(X).all():
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        raise ValueError(f"X has NaN/inf values in {len(bad)} row(s), e.g. rows {bad[:5].tolist()}")
    return X, speakers, emotions


def l2_normalize(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows raise ``ValueError`` (they have no direction)."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"X has {int((norms == 0).sum())} all-zero row(s); cannot L2-normalise them")
    return X / norms


def kmeans_labels(X: np.ndarray, k: int, *, seed: int = 0, n_init: int = 10) -> np.ndarray:
    """k-means cluster index per row of ``X`` (sklearn ``KMeans``)."""
    # one thread for small problems (one speaker): thread start-up costs more than the clustering itself
    with threadpool_limits(limits=1 if len(X) < _SMALL else None):
        return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(X)


def contingency_scores(clusters: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Purity, NMI (arithmetic normalisation, as sklearn's default) and ARI of one clustering against many labelings.

    Hand-written because sklearn scores one labeling per call; this scores ``labels: [P, n]`` (integer codes)
    against ``clusters: [n]`` at once from the ``[P, K, C]`` contingency tables. Returns arrays ``[P]``.
    """
    labels = np.atleast_2d(labels)
    n_perm, n = labels.shape
    _, clusters = np.unique(clusters, return_inverse=True)
    k, c = clusters.max() + 1, labels.max() + 1
    flat = (np.arange(n_perm)[:, None] * k + clusters[None, :]) * c + labels
    table = np.bincount(flat.ravel(), minlength=n_perm * k * c).reshape(n_perm, k, c).astype(np.float64)
    rows, cols = table.sum(axis=2), table.sum(axis=1)  # [P, K], [P, C]
    purity = table.max(axis=2).sum(axis=1) / n
    return {"purity": purity, "nmi": _nmi(table, rows, cols, n), "ari": _ari(table, rows, cols, n)}


def _entropy(counts: np.ndarray, n: int) -> np.ndarray:
    p = counts / n
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)


def _nmi(table, rows, cols, n) -> np.ndarray:
    outer = rows[:, :, None] * cols[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(table > 0, table / n * np.log(table * n / outer), 0.0)
    mi = np.clip(terms.sum(axis=(1, 2)), 0.0, None)
    h_rows, h_cols = _entropy(rows, n), _entropy(cols, n)
    both_single = ((rows > 0).sum(axis=1) == 1) & ((cols > 0).sum(axis=1) == 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        nmi = np.where(mi > 0, mi / ((h_rows + h_cols) / 2), 0.0)
    return np.where(both_single, 1.0, nmi)


def _comb2(x):
    return x * (x - 1) / 2


def _ari(table, rows, cols, n) -> np.ndarray:
    index = _comb2(table).sum(axis=(1, 2))
    sum_rows, sum_cols = _comb2(rows).sum(axis=1), _comb2(cols).sum(axis=1)
    expected = sum_rows * sum_cols / _comb2(n)
    maximum = (sum_rows + sum_cols) / 2
    denom = maximum - expected
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom == 0, 1.0, (index - expected) / denom)


def permutation_test(clusters: np.ndarray, labels: np.ndarray, *, n_permutations: int,
                     rng: np.random.Generator) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """p-values of purity/NMI/ARI of fixed ``clusters`` against ``labels`` (integer codes) under shuffled labels.

    Returns ``(p_values, null)`` where ``null[metric]`` is ``[n_permutations]``; p-values are NaN with no permutations.
    """
    observed = contingency_scores(clusters, labels[None, :])
    if n_permutations <= 0:
        return {m: float("nan") for m in METRICS}, {m: np.zeros(0) for m in METRICS}
    shuffled = rng.permuted(np.tile(labels, (n_permutations, 1)), axis=1)
    null = contingency_scores(clusters, shuffled)
    # the tolerance keeps ties (a permutation that reproduces the labels) counted despite float rounding
    p = {m: float((1 + (null[m] >= observed[m][0] - 1e-12).sum()) / (1 + n_permutations)) for m in METRICS}
    return p, null


def _score_row(clusters: np.ndarray, emotion_codes: np.ndarray, emotions: np.ndarray) -> dict[str, float]:
    return {"purity": float(contingency_scores(clusters, emotion_codes[None, :])["purity"][0]),
            "nmi": float(normalized_mutual_info_score(emotions, clusters)),
            "ari": float(adjusted_rand_score(emotions, clusters))}


class SpeakerClusterAnalysis:
    """Intra-speaker and global k-means clusters scored against emotion labels, with permutation p-values.

    Parameters: ``k`` — ``"n_emotions"`` (each speaker's number of distinct emotions) or an int, the main
    setting whose clusters go to ``labels_``; ``k_grid`` — further k values tried per speaker; ``n_permutations``
    — size of the null; ``normalize`` — L2-normalise rows first; ``seed``, ``n_init`` — passed to k-means;
    ``alpha`` — significance level of ``frac_sig_*``.

    Learned attributes (after ``fit``):
    ``per_speaker_`` — one row per speaker × setting: ``speaker, setting, k, n, n_emotions, purity, nmi, ari,
    p_purity, p_nmi, p_ari`` (``setting`` is ``"n_emotions"``/``"k=<int>"`` for the main k, ``"k=<int>"`` per grid
    value);
    ``summary_`` — per setting: ``n_speakers``, ``k_mean``, ``<metric>_mean``/``_std``, ``frac_sig_<metric>`` (fraction
    of speakers with p < ``alpha``) and ``p_mean_<metric>``, a pooled p-value of the mean over speakers (its null
    averages the speakers' within-speaker nulls at each permutation index);
    ``global_`` — global clusters scored against ``emotion`` (k = number of emotions) and against ``speaker``
    (k = number of speakers), one row per target;
    ``labels_`` — per-utterance cluster index of the main setting (local to each speaker, -1 when skipped);
    ``global_labels_`` (the emotion-target clusters), ``global_speaker_labels_`` (-1 when skipped);
    ``skipped_`` — speaker/setting pairs that could not be clustered and why.
    """

    def __init__(self, *, k="n_emotions", k_grid=(2, 3, 4, 6, 8), n_permutations: int = 200,
                 normalize: bool = True, seed: int = 0, n_init: int = 10, alpha: float = 0.05):
        if k != "n_emotions" and not (isinstance(k, (int, np.integer)) and k >= 2):
            raise ValueError(f"k must be 'n_emotions' or an int >= 2, got {k!r}")
        if any(int(g) < 2 for g in k_grid):
            raise ValueError(f"k_grid values must be >= 2, got {tuple(k_grid)}")
        if n_permutations < 0:
            raise ValueError(f"n_permutations must be >= 0, got {n_permutations}")
        self.k, self.k_grid, self.n_permutations = k, tuple(int(g) for g in k_grid), int(n_permutations)
        self.normalize, self.seed, self.n_init, self.alpha = normalize, seed, n_init, alpha

    def fit(self, X, speakers, emotions) -> "SpeakerClusterAnalysis":
        """Cluster ``X: (n_samples, n_features)`` per speaker and globally; returns ``self``."""
        X, speakers, emotions = _check_inputs(X, speakers, emotions)
        if self.normalize:
            X = l2_normalize(X)
        _, codes = np.unique(emotions, return_inverse=True)
        rng = np.random.default_rng(self.seed)
        rows, nulls, skipped = [], {}, []
        self.labels_ = np.full(len(X), -1, dtype=np.int64)
        for spk in pd.unique(speakers):
            idx = np.flatnonzero(speakers == spk)
            self._fit_speaker(X[idx], idx, str(spk), codes[idx], emotions[idx], rng, rows, nulls, skipped)
        self.per_speaker_ = pd.DataFrame(rows, columns=["speaker", "setting", "k", "n", "n_emotions", *METRICS,
                                                        *(f"p_{m}" for m in METRICS)])
        self.skipped_ = pd.DataFrame(skipped, columns=["speaker", "setting", "reason"])
        if len(self.skipped_):
            warnings.warn(f"SpeakerClusterAnalysis skipped {len(self.skipped_)} speaker/setting pair(s); see skipped_")
        self.summary_ = self._summarise(nulls)
        self.global_ = self._fit_global(X, speakers, emotions, rng)
        return self

    def _settings(self, n_emotions: int) -> list[tuple[str, int]]:
        main = ("n_emotions", n_emotions) if self.k == "n_emotions" else (f"k={int(self.k)}", int(self.k))
        grid = [(f"k={g}", g) for g in self.k_grid if f"k={g}" != main[0]]
        return [main, *grid]

    def _fit_speaker(self, Xs, idx, spk, codes, emotions, rng, rows, nulls, skipped) -> None:
        n_emotions = len(np.unique(codes))
        n_distinct = len(np.unique(Xs, axis=0))
        for i, (setting, k) in enumerate(self._settings(n_emotions)):
            reason = _skip_reason(k, len(Xs), n_distinct, n_emotions)
            if reason:
                skipped.append((spk, setting, reason))
                continue
            clusters = kmeans_labels(Xs, k, seed=self.seed, n_init=self.n_init)
            if i == 0:
                self.labels_[idx] = clusters
            p, null = permutation_test(clusters, codes, n_permutations=self.n_permutations, rng=rng)
            nulls.setdefault(setting, []).append(null)
            scores = _score_row(clusters, codes, emotions)
            rows.append({"speaker": spk, "setting": setting, "k": k, "n": len(Xs), "n_emotions": n_emotions,
                         **scores, **{f"p_{m}": p[m] for m in METRICS}})

    def _summarise(self, nulls: dict) -> pd.DataFrame:
        out = []
        for setting, part in self.per_speaker_.groupby("setting", sort=False):
            row = {"setting": setting, "n_speakers": len(part), "k_mean": part["k"].mean()}
            for m in METRICS:
                row[f"{m}_mean"], row[f"{m}_std"] = part[m].mean(), part[m].std(ddof=1)
                row[f"frac_sig_{m}"] = float((part[f"p_{m}"] < self.alpha).mean())
                row[f"p_mean_{m}"] = _pooled_p(part[m].mean(), [n[m] for n in nulls[setting]], self.n_permutations)
            out.append(row)
        return pd.DataFrame(out)

    def _fit_global(self, X, speakers, emotions, rng) -> pd.DataFrame:
        n_distinct = len(np.unique(X, axis=0))
        rows, labels = [], {}
        for target, values in (("emotion", emotions), ("speaker", speakers)):
            _, codes = np.unique(values, return_inverse=True)
            k = int(codes.max()) + 1
            labels[target] = np.full(len(X), -1, dtype=np.int64)
            reason = _skip_reason(k, len(X), n_distinct, k, what=f"{target}")
            if reason:
                warnings.warn(f"SpeakerClusterAnalysis: global clustering against {target} skipped ({reason})")
                continue
            clusters = labels[target] = kmeans_labels(X, k, seed=self.seed, n_init=self.n_init)
            p, _ = permutation_test(clusters, codes, n_permutations=self.n_permutations, rng=rng)
            rows.append({"target": target, "k": k, "n": len(X), **_score_row(clusters, codes, values),
                         **{f"p_{m}": p[m] for m in METRICS}})
        self.global_labels_, self.global_speaker_labels_ = labels["emotion"], labels["speaker"]
        return pd.DataFrame(rows, columns=["target", "k", "n", *METRICS, *(f"p_{m}" for m in METRICS)])


def _skip_reason(k: int, n: int, n_distinct: int, n_emotions: int, what: str = "emotion") -> str:
    if n_emotions < 2:
        return f"only one {what}: nothing to compare clusters with"
    if n <= k:
        return f"{n} utterance(s) for k={k} clusters (need more than k)"
    if n_distinct < k:
        return f"only {n_distinct} distinct embedding(s) for k={k} clusters"
    return ""


def _pooled_p(observed_mean: float, speaker_nulls: list[np.ndarray], n_permutations: int) -> float:
    """p-value of the mean score over speakers, from the mean of the speakers' nulls at each permutation index."""
    if n_permutations <= 0 or not speaker_nulls:
        return float("nan")
    null_mean = np.mean(np.stack(speaker_nulls), axis=0)
    return float((1 + (null_mean >= observed_mean - 1e-12).sum()) / (1 + n_permutations))
