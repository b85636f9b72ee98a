"""Representation similarity: PWCCA (Morcos et al. 2018) and linear CKA (Kornblith et al. 2019).

Inputs are tables ``(n_samples, n_features)``: the same samples (rows) seen by two representations.

PWCCA here differs from the reference code (google/svcca ``pwcca.py``) where that code is wrong:

* it works for unequal widths in either order (the reference indexes ``acts1`` with ``y_idxs`` and adds
  ``neuron_means2`` to it when the second layer is the narrower one, which raises or gives wrong weights);
* the projection weights are always taken from the side you ask for (``weights_from``), not silently from the
  narrower layer;
* neurons are centred before the weights are computed (the reference adds the means back, so a large mean
  changes the weights);
* constant and duplicate directions are dropped by an SVD rank threshold, so rank-deficient inputs give finite
  numbers; a table with too few samples for its rank is refused (or reduced with ``max_dims``).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

__all__ = ["PWCCAResult", "pwcca", "cca_correlations", "linear_cka", "random_baseline",
           "pairwise_similarity"]

_WEIGHT_SIDES = ("x", "y", "mean")


@dataclass(frozen=True)
class PWCCAResult:
    """Result of :func:`pwcca`.

    ``score`` = ``sum(weights * correlations)``; ``correlations`` are the ``k = min(rank_x, rank_y)`` canonical
    correlations in decreasing order; ``weights`` (sum 1) follow ``weights_from``; ``mean_cca`` is the
    unweighted mean of the correlations (plain CCA similarity).
    """

    score: float
    weights: np.ndarray
    correlations: np.ndarray
    mean_cca: float
    weights_from: str
    rank_x: int
    rank_y: int
    n_samples: int


def _check_pair(X, Y) -> tuple[np.ndarray, np.ndarray]:
    """Validate two tables with the same rows; return them as float64 arrays."""
    out = []
    for name, A in (("X", X), ("Y", Y)):
        A = np.asarray(A, dtype=np.float64)
        if A.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {A.shape}")
        if A.shape[0] < 2 or A.shape[1] < 1:
            raise ValueError(f"{name} needs at least 2 samples and 1 feature; got shape {A.shape}")
        if not np.isfinite(A).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        out.append(A)
    if out[0].shape[0] != out[1].shape[0]:
        raise ValueError(f"X and Y must have the same number of samples (rows); got {out[0].shape[0]} "
                         f"and {out[1].shape[0]}")
    return out[0], out[1]


def _basis(A: np.ndarray, name: str, epsilon: float, max_dims: int | None) -> np.ndarray:
    """Orthonormal basis ``[n, r]`` of the centred columns of ``A``, dropping directions below ``epsilon``.

    A singular value counts when it exceeds ``epsilon`` times the largest one (constant and duplicate
    features add none). ``max_dims`` keeps only the top principal directions (SVCCA-style reduction).
    """
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    if s.size == 0 or s[0] <= np.finfo(float).tiny:
        raise ValueError(f"{name} has no variance: every feature is constant over the samples")
    r = int(np.sum(s > epsilon * s[0]))
    if max_dims is not None:
        r = min(r, max_dims)
    return U[:, :r]


def _canonical(X, Y, epsilon, max_dims):
    """Centre, reduce and return ``(Xc, Yc, Hx [n,k], Hy [n,k], rho [k])`` (unit-norm canonical variates)."""
    if epsilon <= 0 or epsilon >= 1:
        raise ValueError(f"epsilon must be in (0, 1); got {epsilon}")
    if max_dims is not None and max_dims < 1:
        raise ValueError(f"max_dims must be a positive integer or None; got {max_dims}")
    X, Y = _check_pair(X, Y)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Ux, Uy = _basis(Xc, "X", epsilon, max_dims), _basis(Yc, "Y", epsilon, max_dims)
    n, rx, ry = X.shape[0], Ux.shape[1], Uy.shape[1]
    # Centred data live in an (n-1)-dim space: two subspaces with rx + ry > n-1 must share directions,
    # which would show up as spurious correlations of 1.
    if rx + ry > n - 1:
        raise ValueError(
            f"too few samples for CCA: n_samples={n} but the centred ranks are X:{rx} (of {X.shape[1]} "
            f"features) and Y:{ry} (of {Y.shape[1]}); need rank_x + rank_y <= n_samples - 1. Use more "
            f"samples or reduce with max_dims <= {(n - 1) // 2}")
    P, rho, Qt = np.linalg.svd(Ux.T @ Uy, full_matrices=False)
    k = min(rx, ry)
    Hx, Hy = Ux @ P[:, :k], Uy @ Qt.T[:, :k]
    return Xc, Yc, Hx, Hy, np.clip(rho[:k], 0.0, 1.0), rx, ry


def cca_correlations(X, Y, *, epsilon: float = 1e-6, max_dims: int | None = None) -> np.ndarray:
    """Canonical correlations ``[k]`` (decreasing) between ``X [n, dx]`` and ``Y [n, dy]``, ``k = min(ranks)``."""
    return _canonical(X, Y, epsilon, max_dims)[4]


def _projection_weights(A_centred: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Morcos et al.'s weights: ``alpha_i = sum_j |<h_i, a_j>|`` over neurons ``a_j``, normalised to sum 1."""
    alpha = np.abs(H.T @ A_centred).sum(axis=1)
    return alpha / alpha.sum()


def pwcca(X, Y, *, epsilon: float = 1e-6, max_dims: int | None = None,
          weights_from: str = "x") -> PWCCAResult:
    """Projection-weighted CCA similarity between ``X [n, dx]`` and ``Y [n, dy]`` (rows = the same samples).

    Canonical correlations ``rho_i`` (``i < k = min(rank_x, rank_y)``) are averaged with weights
    ``alpha_i = sum_j |<h_i, x_j>|``: how much of each centred neuron ``x_j`` of X lies along X's canonical
    variate ``h_i`` (Morcos et al. 2018, weights from the first argument). With ``weights_from="x"`` (default)
    the score is therefore not symmetric: ``pwcca(X, Y)`` weights by X, ``pwcca(Y, X)`` by Y, and
    ``pwcca(X, Y, weights_from="y") == pwcca(Y, X)``. ``weights_from="mean"`` averages the two weight vectors
    (equivalently the two scores) and is symmetric. Only the ``k`` canonical pairs enter (as in the reference),
    so a narrow representation lying inside a wide one scores 1 in both orders. Invariant to invertible linear
    maps of either side (all correlations are then 1), to offsets and to scaling.

    ``epsilon``: directions whose singular value is below ``epsilon`` × the largest are dropped (constant and
    duplicate features). ``max_dims``: keep only each side's top principal directions first (SVCCA-style).
    Raises ``ValueError`` when ``rank_x + rank_y > n_samples - 1`` (CCA would report spurious correlations of
    1), naming the ranks and suggesting ``max_dims``; and on constant tables, NaN, or mismatched rows.
    """
    if weights_from not in _WEIGHT_SIDES:
        raise ValueError(f"weights_from must be one of {_WEIGHT_SIDES}; got {weights_from!r}")
    Xc, Yc, Hx, Hy, rho, rx, ry = _canonical(X, Y, epsilon, max_dims)
    if weights_from == "x":
        w = _projection_weights(Xc, Hx)
    elif weights_from == "y":
        w = _projection_weights(Yc, Hy)
    else:
        w = 0.5 * (_projection_weights(Xc, Hx) + _projection_weights(Yc, Hy))
    return PWCCAResult(score=float(np.sum(w * rho)), weights=w, correlations=rho,
                       mean_cca=float(rho.mean()), weights_from=weights_from, rank_x=rx, rank_y=ry,
                       n_samples=Xc.shape[0])


def linear_cka(X, Y) -> float:
    """Linear CKA (Kornblith et al. 2019) between ``X [n, dx]`` and ``Y [n, dy]``; symmetric, in [0, 1].

    ``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` on centred columns. Invariant to orthogonal maps and
    isotropic scaling only (not to general invertible linear maps). Raises ``ValueError`` on a constant table.
    """
    X, Y = _check_pair(X, Y)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    # Unit-Frobenius scaling first: avoids overflow for large activations and leaves CKA unchanged.
    for name, A in (("X", Xc), ("Y", Yc)):
        if np.linalg.norm(A) <= np.finfo(float).tiny:
            raise ValueError(f"{name} has no variance: every feature is constant over the samples")
    Xc, Yc = Xc / np.linalg.norm(Xc), Yc / np.linalg.norm(Yc)
    if Xc.shape[0] < min(Xc.shape[1], Yc.shape[1]):  # fewer samples than features: use n x n Gram matrices
        Kx, Ky = Xc @ Xc.T, Yc @ Yc.T
        num, dx, dy = np.sum(Kx * Ky), np.linalg.norm(Kx), np.linalg.norm(Ky)
    else:
        num, dx, dy = np.linalg.norm(Yc.T @ Xc) ** 2, np.linalg.norm(Xc.T @ Xc), np.linalg.norm(Yc.T @ Yc)
    return float(np.clip(num / (dx * dy), 0.0, 1.0))


def random_baseline(n_samples: int, dx: int, dy: int, *, seed: int = 0, n_repeats: int = 10,
                    **pwcca_kw) -> dict:
    """PWCCA and linear CKA between independent standard-normal tables ``[n_samples, dx]``, ``[n_samples, dy]``.

    The "random vectors of matching shapes" baseline (paper A, Table 3). Returns
    ``dict(pwcca_mean, pwcca_std, cka_mean, cka_std, n_repeats, n_samples, dx, dy)``.
    """
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1; got {n_repeats}")
    rng = np.random.default_rng(seed)
    p, c = [], []
    for _ in range(n_repeats):
        X, Y = rng.standard_normal((n_samples, dx)), rng.standard_normal((n_samples, dy))
        p.append(pwcca(X, Y, **pwcca_kw).score)
        c.append(linear_cka(X, Y))
    return dict(pwcca_mean=float(np.mean(p)), pwcca_std=float(np.std(p)), cka_mean=float(np.mean(c)),
                cka_std=float(np.std(c)), n_repeats=n_repeats, n_samples=n_samples, dx=dx, dy=dy)


def pairwise_similarity(representations: dict, *, random: bool = False, seed: int = 0,
                        n_repeats: int = 10, weights_from: str = "mean", **pwcca_kw) -> pd.DataFrame:
    """PWCCA and linear CKA for every unordered pair of views.

    ``representations``: ``{view: array [n, d]}`` on the same samples (e.g. one fold's test set). Returns one
    row per pair with columns ``view_a, view_b, pwcca, cka``. ``weights_from="mean"`` (default) makes the
    PWCCA of a pair independent of the order of the views. With ``random=True`` every pair is replaced by
    random vectors of the same shapes (:func:`random_baseline`, mean over ``n_repeats``).
    """
    rows = []
    for a, b in combinations(list(representations), 2):
        A, B = np.asarray(representations[a]), np.asarray(representations[b])
        if random:
            r = random_baseline(A.shape[0], A.shape[1], B.shape[1], seed=seed, n_repeats=n_repeats,
                                weights_from=weights_from, **pwcca_kw)
            rows.append(dict(view_a=a, view_b=b, pwcca=r["pwcca_mean"], cka=r["cka_mean"]))
        else:
            rows.append(dict(view_a=a, view_b=b, cka=linear_cka(A, B),
                             pwcca=pwcca(A, B, weights_from=weights_from, **pwcca_kw).score))
    return pd.DataFrame(rows, columns=["view_a", "view_b", "pwcca", "cka"])
