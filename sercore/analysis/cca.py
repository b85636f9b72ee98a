"""Representation similarity: PWCCA after SVD (Raghu et al. 2017; Morcos et al. 2018), linear CKA (Kornblith et
al. 2019), debiased CKA (unbiased HSIC, Song et al. 2012), and random-vector baselines.

Inputs are tables ``(n_samples, n_features)``: the same samples (rows) seen by two representations.

PWCCA first keeps each side's top principal directions that explain ``variance`` (default 99 %) of its variance,
SVCCA's first step: the noisy low-variance directions would otherwise each add a canonical pair that random data
fill with spurious correlation. It differs from the reference code (google/svcca ``pwcca.py``) where that code is
wrong:

* it works for unequal widths in either order (the reference indexes ``acts1`` with ``y_idxs`` and adds
  ``neuron_means2`` to it when the second layer is the narrower one, which raises or gives wrong weights);
* the projection weights are always taken from the side you ask for (``weights_from``), not silently from the
  narrower layer;
* neurons are centred before the weights are computed (the reference adds the means back, so a large mean
  changes the weights);
* constant and duplicate directions are dropped by an SVD rank threshold, so rank-deficient inputs give finite
  numbers; a table with too few samples for its rank is refused (or reduced with ``max_dims``).

Chance levels depend on the number of samples and on how many directions each representation really uses: the
baselines here are random vectors with the same number of samples and the same width, either isotropic
(:func:`random_baseline`, paper A's "random vectors of matching shapes") or with the same singular values as the
representations they stand for (:func:`matched_baseline`), so that the SVD step keeps as many directions for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

__all__ = ["PWCCAResult", "pwcca", "cca_correlations", "linear_cka", "debiased_cka", "random_baseline",
           "matched_random", "matched_baseline", "pairwise_similarity", "MEASURES"]

MEASURES = ("pwcca", "cka", "debiased_cka")
_WEIGHT_SIDES = ("x", "y", "mean")


@dataclass(frozen=True)
class PWCCAResult:
    """Result of :func:`pwcca`.

    ``score`` = ``sum(weights * correlations)``; ``correlations`` are the ``k = min(rank_x, rank_y)`` canonical
    correlations in decreasing order; ``weights`` (sum 1) follow ``weights_from``; ``mean_cca`` is the
    unweighted mean of the correlations (plain CCA similarity). ``rank_x``/``rank_y`` are the directions kept
    on each side (after the variance and ``max_dims`` reductions).
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


def _check_variance(variance) -> None:
    if variance is not None and not 0 < variance <= 1:
        raise ValueError(f"variance must be in (0, 1] or None; got {variance}")


def _basis(A: np.ndarray, name: str, epsilon: float, max_dims: int | None, variance: float | None) -> np.ndarray:
    """Orthonormal basis ``[n, r]`` of the top principal directions of the centred columns of ``A``.

    A singular value counts when it exceeds ``epsilon`` times the largest one (constant and duplicate
    features add none); of those, the fewest leading directions that explain ``variance`` of the total are kept
    (``None``: all); ``max_dims`` caps the count.
    """
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    if s.size == 0 or s[0] <= np.finfo(float).tiny:
        raise ValueError(f"{name} has no variance: every feature is constant over the samples")
    r = int(np.sum(s > epsilon * s[0]))
    if variance is not None and variance < 1:
        explained = np.cumsum(s[:r] ** 2) / np.sum(s[:r] ** 2)
        r = min(r, int(np.searchsorted(explained, variance - 1e-12)) + 1)
    if max_dims is not None:
        r = min(r, max_dims)
    return U[:, :r]


def _canonical(X, Y, epsilon, max_dims, variance):
    """Centre, reduce and return ``(Xc, Yc, Hx [n,k], Hy [n,k], rho [k])`` (unit-norm canonical variates)."""
    if epsilon <= 0 or epsilon >= 1:
        raise ValueError(f"epsilon must be in (0, 1); got {epsilon}")
    if max_dims is not None and max_dims < 1:
        raise ValueError(f"max_dims must be a positive integer or None; got {max_dims}")
    _check_variance(variance)
    X, Y = _check_pair(X, Y)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Ux, Uy = (_basis(Xc, "X", epsilon, max_dims, variance), _basis(Yc, "Y", epsilon, max_dims, variance))
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


def cca_correlations(X, Y, *, variance: float | None = 0.99, epsilon: float = 1e-6,
                     max_dims: int | None = None) -> np.ndarray:
    """Canonical correlations ``[k]`` (decreasing) between ``X [n, dx]`` and ``Y [n, dy]``, ``k = min(ranks)``,
    after the same reductions as :func:`pwcca` (``variance=None``: plain CCA on all directions)."""
    return _canonical(X, Y, epsilon, max_dims, variance)[4]


def _projection_weights(A_centred: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Morcos et al.'s weights: ``alpha_i = sum_j |<h_i, a_j>|`` over neurons ``a_j``, normalised to sum 1."""
    alpha = np.abs(H.T @ A_centred).sum(axis=1)
    return alpha / alpha.sum()


def pwcca(X, Y, *, variance: float | None = 0.99, epsilon: float = 1e-6, max_dims: int | None = None,
          weights_from: str = "x") -> PWCCAResult:
    """Projection-weighted CCA similarity between ``X [n, dx]`` and ``Y [n, dy]`` (rows = the same samples).

    Each side is first reduced to its top principal directions that explain ``variance`` of its variance
    (default 99 %, SVCCA's first step; ``None`` or 1 keeps every direction). Canonical correlations ``rho_i``
    (``i < k = min(rank_x, rank_y)``) are then averaged with weights ``alpha_i = sum_j |<h_i, x_j>|``: how much
    of each centred neuron ``x_j`` of X lies along X's canonical variate ``h_i`` (Morcos et al. 2018, weights
    from the first argument, neurons of the unreduced table). With ``weights_from="x"`` (default) the score is
    therefore not symmetric: ``pwcca(X, Y)`` weights by X, ``pwcca(Y, X)`` by Y, and
    ``pwcca(X, Y, weights_from="y") == pwcca(Y, X)``. ``weights_from="mean"`` averages the two weight vectors
    (equivalently the two scores) and is symmetric. Only the ``k`` canonical pairs enter (as in the reference),
    so a narrow representation lying inside a wide one scores 1 in both orders. Invariant to offsets and
    scaling; without the variance step (``variance=None``) also to any invertible linear map of either side.

    ``epsilon``: directions whose singular value is below ``epsilon`` × the largest are dropped (constant and
    duplicate features). ``max_dims``: keep at most this many principal directions per side.
    Raises ``ValueError`` when ``rank_x + rank_y > n_samples - 1`` (CCA would report spurious correlations of
    1), naming the ranks and suggesting ``max_dims``; and on constant tables, NaN, or mismatched rows.
    """
    if weights_from not in _WEIGHT_SIDES:
        raise ValueError(f"weights_from must be one of {_WEIGHT_SIDES}; got {weights_from!r}")
    Xc, Yc, Hx, Hy, rho, rx, ry = _canonical(X, Y, epsilon, max_dims, variance)
    if weights_from == "x":
        w = _projection_weights(Xc, Hx)
    elif weights_from == "y":
        w = _projection_weights(Yc, Hy)
    else:
        w = 0.5 * (_projection_weights(Xc, Hx) + _projection_weights(Yc, Hy))
    return PWCCAResult(score=float(np.sum(w * rho)), weights=w, correlations=rho,
                       mean_cca=float(rho.mean()), weights_from=weights_from, rank_x=rx, rank_y=ry,
                       n_samples=Xc.shape[0])


def _centred_unit(X, Y) -> tuple[np.ndarray, np.ndarray]:
    """Centred columns scaled to unit Frobenius norm (avoids overflow; CKA does not change)."""
    X, Y = _check_pair(X, Y)
    out = []
    for name, A in (("X", X), ("Y", Y)):
        A = A - A.mean(0)
        norm = np.linalg.norm(A)
        if norm <= np.finfo(float).tiny:
            raise ValueError(f"{name} has no variance: every feature is constant over the samples")
        out.append(A / norm)
    return out[0], out[1]


def linear_cka(X, Y) -> float:
    """Linear CKA (Kornblith et al. 2019) between ``X [n, dx]`` and ``Y [n, dy]``; symmetric, in [0, 1].

    ``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` on centred columns. Invariant to orthogonal maps and
    isotropic scaling only (not to general invertible linear maps). Biased upwards at small ``n``: independent
    representations score well above 0 (see :func:`debiased_cka`). Raises ``ValueError`` on a constant table.
    """
    Xc, Yc = _centred_unit(X, Y)
    if Xc.shape[0] < min(Xc.shape[1], Yc.shape[1]):  # fewer samples than features: use n x n Gram matrices
        Kx, Ky = Xc @ Xc.T, Yc @ Yc.T
        num, dx, dy = np.sum(Kx * Ky), np.linalg.norm(Kx), np.linalg.norm(Ky)
    else:
        num, dx, dy = np.linalg.norm(Yc.T @ Xc) ** 2, np.linalg.norm(Xc.T @ Xc), np.linalg.norm(Yc.T @ Yc)
    return float(np.clip(num / (dx * dy), 0.0, 1.0))


def _hsic_unbiased(X: np.ndarray, Y: np.ndarray) -> float:
    """Song et al. (2012)'s unbiased HSIC of the linear kernels ``K = X X^T``, ``L = Y Y^T``, in feature space.

    ``[tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))`` with ``K~`` = ``K`` without its
    diagonal; every term is computed from ``X^T Y``, the row norms and the column sums (no ``n x n`` matrix).
    """
    n = X.shape[0]
    kx, ky = np.einsum("ij,ij->i", X, X), np.einsum("ij,ij->i", Y, Y)  # diagonals of K and L
    trace = np.linalg.norm(X.T @ Y) ** 2 - kx @ ky
    kx1, ly1 = X @ X.sum(0) - kx, Y @ Y.sum(0) - ky  # K~1, L~1
    return float((trace + kx1.sum() * ly1.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (kx1 @ ly1))
                 / (n * (n - 3)))


def debiased_cka(X, Y) -> float:
    """Debiased linear CKA between ``X [n, dx]`` and ``Y [n, dy]`` (needs ``n >= 4``); symmetric.

    Linear CKA with every HSIC replaced by Song et al. (2012)'s unbiased estimator (as in Kornblith et al.
    2019's code and Nguyen et al. 2021): independent representations score about 0 at any ``n`` (small
    negative values are possible), identical ones 1. Raises ``ValueError`` on a constant table or ``n < 4``.
    """
    Xc, Yc = _centred_unit(X, Y)
    if Xc.shape[0] < 4:
        raise ValueError(f"debiased CKA needs at least 4 samples; got {Xc.shape[0]}")
    hxx, hyy = _hsic_unbiased(Xc, Xc), _hsic_unbiased(Yc, Yc)
    if hxx <= 0 or hyy <= 0:
        return float("nan")  # the unbiased self-similarity of a nearly rank-one table can dip to 0 or below
    return float(_hsic_unbiased(Xc, Yc) / np.sqrt(hxx * hyy))


def _scores(X, Y, weights_from: str, **pwcca_kw) -> dict:
    return dict(pwcca=pwcca(X, Y, weights_from=weights_from, **pwcca_kw).score, cka=linear_cka(X, Y),
                debiased_cka=debiased_cka(X, Y))


def _summary(draws: list[dict], n_samples: int) -> dict:
    out = {}
    for m in MEASURES:
        values = np.array([d[m] for d in draws], dtype=float)
        out[f"{m}_mean"], out[f"{m}_std"] = float(np.nanmean(values)), float(np.nanstd(values))
    return dict(out, n_repeats=len(draws), n_samples=n_samples)


def random_baseline(n_samples: int, dx: int, dy: int, *, seed: int = 0, n_repeats: int = 10,
                    weights_from: str = "x", **pwcca_kw) -> dict:
    """PWCCA, linear CKA and debiased CKA between independent standard-normal tables ``[n_samples, dx]`` and
    ``[n_samples, dy]``: paper A's "random vectors of matching shapes" (isotropic: every direction used).

    Returns ``dict(pwcca_mean, pwcca_std, cka_mean, cka_std, debiased_cka_mean, debiased_cka_std, n_repeats,
    n_samples, dx, dy)`` (``_std``: spread over the ``n_repeats`` draws).
    """
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1; got {n_repeats}")
    rng = np.random.default_rng(seed)
    draws = [_scores(rng.standard_normal((n_samples, dx)), rng.standard_normal((n_samples, dy)), weights_from,
                     **pwcca_kw) for _ in range(n_repeats)]
    return dict(_summary(draws, n_samples), dx=dx, dy=dy)


def _spectrum(A: np.ndarray, epsilon: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Nonzero singular values ``[r]`` and right singular vectors ``[r, d]`` of the centred ``A``."""
    _, s, Vt = np.linalg.svd(A - A.mean(0), full_matrices=False)
    if s.size == 0 or s[0] <= np.finfo(float).tiny:
        raise ValueError("the table has no variance: every feature is constant over the samples")
    r = int(np.sum(s > epsilon * s[0]))
    return s[:r], Vt[:r]


def _rotated(n: int, s: np.ndarray, Vt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    G = rng.standard_normal((n, len(s)))
    Q, R = np.linalg.qr(G - G.mean(0))
    Q = Q * np.where(np.diag(R) < 0, -1.0, 1.0)  # sign fix: a Haar-distributed basis
    return (Q * s) @ Vt


def matched_random(A, rng: np.random.Generator) -> np.ndarray:
    """Random vectors standing in for ``A [n, d]``: the same shape, singular values and feature directions,
    with the samples' side drawn at random (a Haar-random orthonormal basis orthogonal to the constant).

    Equivalently ``A`` centred and then rotated by a random orthogonal map of the sample space: every property of
    the table on its own (variance spectrum, how many directions the SVD step keeps, the projection weights)
    is kept, and any correspondence with another table's samples is gone.
    """
    A = np.asarray(A, dtype=np.float64)
    return _rotated(A.shape[0], *_spectrum(A), rng)


def matched_baseline(X, Y, *, seed: int = 0, n_repeats: int = 10, weights_from: str = "x",
                     **pwcca_kw) -> dict:
    """PWCCA, linear CKA and debiased CKA between :func:`matched_random` stand-ins of ``X`` and ``Y``.

    The chance level of the pair at its own ``n`` and its own variance spectra (random vectors with the same
    number of samples, width and singular values). Returns the keys of :func:`random_baseline` (``dx, dy`` =
    the widths).
    """
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1; got {n_repeats}")
    X, Y = _check_pair(X, Y)
    rng = np.random.default_rng(seed)
    (sx, Vx), (sy, Vy), n = _spectrum(X), _spectrum(Y), X.shape[0]
    draws = [_scores(_rotated(n, sx, Vx, rng), _rotated(n, sy, Vy, rng), weights_from, **pwcca_kw)
             for _ in range(n_repeats)]
    return dict(_summary(draws, n), dx=X.shape[1], dy=Y.shape[1])


def pairwise_similarity(representations: dict, *, random: bool = False, baseline: bool = False, seed: int = 0,
                        n_repeats: int = 10, weights_from: str = "mean", **pwcca_kw) -> pd.DataFrame:
    """PWCCA, linear CKA and debiased CKA for every unordered pair of views.

    ``representations``: ``{view: array [n, d]}`` on the same samples (e.g. one fold's test set). Returns one
    row per pair with columns ``view_a, view_b, pwcca, cka, debiased_cka``. ``weights_from="mean"`` (default)
    makes the PWCCA of a pair independent of the order of the views. ``baseline=True`` adds, per measure,
    ``<m>_baseline`` and ``<m>_baseline_sd`` (mean and spread of :func:`matched_baseline` over ``n_repeats``
    draws) and ``<m>_minus_baseline``. With ``random=True`` every pair is replaced by isotropic random vectors of
    the same shapes (:func:`random_baseline`, mean over ``n_repeats``).
    """
    rows = []
    for i, (a, b) in enumerate(combinations(list(representations), 2)):
        A, B = np.asarray(representations[a]), np.asarray(representations[b])
        row = dict(view_a=a, view_b=b)
        if random:
            r = random_baseline(A.shape[0], A.shape[1], B.shape[1], seed=seed, n_repeats=n_repeats,
                                weights_from=weights_from, **pwcca_kw)
            rows.append(dict(row, **{m: r[f"{m}_mean"] for m in MEASURES}))
            continue
        row.update(_scores(A, B, weights_from, **pwcca_kw))
        if baseline:
            r = matched_baseline(A, B, seed=seed + i, n_repeats=n_repeats, weights_from=weights_from, **pwcca_kw)
            for m in MEASURES:
                row.update({f"{m}_baseline": r[f"{m}_mean"], f"{m}_baseline_sd": r[f"{m}_std"],
                            f"{m}_minus_baseline": row[m] - r[f"{m}_mean"]})
        rows.append(row)
    columns = ["view_a", "view_b", *MEASURES]
    if baseline and not random:
        columns += [f"{m}_{s}" for m in MEASURES for s in ("baseline", "baseline_sd", "minus_baseline")]
    return pd.DataFrame(rows, columns=columns)
