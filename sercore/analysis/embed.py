"""2-D maps of representations: t-SNE (scikit-learn), UMAP (umap-learn) and PCA."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["embed_2d", "maps_table"]

METHODS = ("tsne", "umap", "pca")


def _check_table(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"embed_2d: X must be 2-D (n_samples, n_features); got shape {X.shape}")
    if X.shape[0] < 3:
        raise ValueError(f"embed_2d: need at least 3 samples for a 2-D map; got {X.shape[0]}")
    if not np.isfinite(X).all():
        raise ValueError("embed_2d: X contains NaN or infinite values")
    return X


def embed_2d(X, *, method: str = "tsne", seed: int = 0, **kw) -> np.ndarray:
    """Map ``X [N, D]`` to ``[N, 2]`` with ``method`` in ``tsne``, ``umap``, ``pca``; extra ``kw`` go to the library.

    t-SNE's ``perplexity`` (default 30) is clipped to ``(N - 1) / 3`` and UMAP's ``n_neighbors`` (default 15)
    to ``N - 1`` so tiny tables work; UMAP uses a random initialisation below 10 samples (its spectral
    initialisation needs more). PCA of a single-feature table pads the second coordinate with zeros.
    """
    if method not in METHODS:
        raise ValueError(f"embed_2d: unknown method {method!r}; choose one of {METHODS}")
    X = _check_table(X)
    n = X.shape[0]
    if method == "pca":
        from sklearn.decomposition import PCA
        k = min(2, X.shape[1])
        out = PCA(n_components=k, random_state=seed, **kw).fit_transform(X)
        return np.pad(out, ((0, 0), (0, 2 - k)))
    if method == "tsne":
        from sklearn.manifold import TSNE
        kw["perplexity"] = min(kw.get("perplexity", 30.0), max(1.0, (n - 1) / 3))
        kw.setdefault("init", "pca" if X.shape[1] >= 2 else "random")
        return TSNE(n_components=2, random_state=seed, **kw).fit_transform(X)
    import umap  # slow import (numba): only when asked for
    kw["n_neighbors"] = int(min(kw.get("n_neighbors", 15), n - 1))
    if n < 10:
        kw.setdefault("init", "random")
    return umap.UMAP(n_components=2, random_state=seed, n_jobs=1, **kw).fit_transform(X)


def maps_table(representations: dict, labels, *, method: str = "tsne", seed: int = 0,
               names: tuple[str, str] = ("model", "view"), label_name: str = "emotion", **kw) -> pd.DataFrame:
    """Tidy table of 2-D maps for a figure grid.

    ``representations``: ``{(row, col): array [N, D]}``, e.g. ``{("pre-trained", "mel"): Z, ...}``, all on the
    same ``N`` samples whose ``labels`` (length N) colour the points. Returns columns
    ``[names[0], names[1], x, y, label_name]``.
    """
    labels = np.asarray(labels)
    frames = []
    for key, Z in representations.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"maps_table: keys must be (row, column) pairs; got {key!r}")
        Z = np.asarray(Z)
        if len(Z) != len(labels):
            raise ValueError(f"maps_table: {key} has {len(Z)} rows but labels has {len(labels)}")
        xy = embed_2d(Z, method=method, seed=seed, **kw)
        frames.append(pd.DataFrame({names[0]: key[0], names[1]: key[1], "x": xy[:, 0], "y": xy[:, 1],
                                    label_name: labels}))
    if not frames:
        raise ValueError("maps_table: representations is empty")
    return pd.concat(frames, ignore_index=True)
