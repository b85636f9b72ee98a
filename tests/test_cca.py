"""PWCCA (plain and after SVD), linear and debiased CKA: known values, invariances, independent computations,
degenerate inputs, and the random-vector baselines."""

import numpy as np
import pytest
from scipy.linalg import qr

from sercore.analysis import (
    cca_correlations,
    debiased_cka,
    linear_cka,
    matched_baseline,
    matched_random,
    pairwise_similarity,
    pwcca,
    random_baseline,
)

pytestmark = pytest.mark.usefixtures("one_blas_thread")  # tests/conftest.py

N, DX, DY = 500, 32, 48


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _inv_sqrt(S):
    w, V = np.linalg.eigh(S)
    return V @ np.diag(w ** -0.5) @ V.T


def _reference_pwcca(X, Y):
    """Textbook CCA from covariance matrices (whitened cross-covariance), Morcos et al.'s weights from X."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Sxx, Syy, Sxy = Xc.T @ Xc, Yc.T @ Yc, Xc.T @ Yc
    Wx = _inv_sqrt(Sxx)
    U, rho, _ = np.linalg.svd(Wx @ Sxy @ _inv_sqrt(Syy))
    k = min(X.shape[1], Y.shape[1])
    H = Xc @ (Wx @ U[:, :k])  # canonical variates of X
    P, _ = qr(H, mode="economic")
    alpha = np.abs(P.T @ Xc).sum(axis=1)
    w = alpha / alpha.sum()
    return rho[:k], w, float(np.sum(w * rho[:k]))


def test_identical_inputs_give_one(rng):
    X = rng.standard_normal((N, DX))
    r = pwcca(X, X)
    assert r.score == pytest.approx(1.0, abs=1e-9)
    assert np.allclose(r.correlations, 1.0)
    assert r.weights.sum() == pytest.approx(1.0)
    assert linear_cka(X, X) == pytest.approx(1.0, abs=1e-12)


def test_invertible_map_pwcca_one_but_cka_only_for_orthogonal_and_isotropic(rng):
    X = rng.standard_normal((N, DX))
    A = rng.standard_normal((DX, DX))  # invertible with probability 1, strongly anisotropic
    assert pwcca(X, X @ A + 3.0, variance=None).score == pytest.approx(1.0, abs=1e-9)
    assert pwcca(X @ A, X, variance=None).score == pytest.approx(1.0, abs=1e-9)
    assert pwcca(X @ A, X).rank_x < DX  # the SVD step drops X @ A's weakest directions: no longer invariant
    Q, _ = np.linalg.qr(rng.standard_normal((DX, DX)))
    assert linear_cka(X, 5.0 * X @ Q - 2.0) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(X, X @ A) < 0.9  # CKA is not invariant to general linear maps (measured ~0.71)


def test_correlations_and_weights_match_textbook_cca(rng):
    X = rng.standard_normal((N, DX))
    Y = X @ rng.standard_normal((DX, DY)) + 2.0 * rng.standard_normal((N, DY))
    rho, w, score = _reference_pwcca(X, Y)
    r = pwcca(X, Y, variance=None)
    assert np.allclose(r.correlations, rho, atol=1e-8)
    assert np.allclose(cca_correlations(X, Y, variance=None), rho, atol=1e-8)
    assert np.allclose(r.weights, w, atol=1e-8)
    assert r.score == pytest.approx(score, abs=1e-8)
    assert 0.3 < r.score < 0.99


def test_weights_follow_neuron_scale_as_by_hand(rng):
    a, b, c = rng.standard_normal((3, 4000))
    X = np.column_stack([10 * a, b])  # neuron a carries 10x the projection mass of neuron b
    Y = np.column_stack([a + 0.1 * rng.standard_normal(4000), c])
    r = pwcca(X, Y)
    assert r.weights == pytest.approx([10 / 11, 1 / 11], abs=0.01)
    assert r.correlations[0] == pytest.approx(1 / np.sqrt(1.01), abs=0.005)
    assert r.score == pytest.approx((10 * r.correlations[0] + r.correlations[1]) / 11, abs=0.01)


def test_unequal_widths_either_order_and_weight_sides(rng):
    X = rng.standard_normal((N, 8))
    Y = np.column_stack([X @ rng.standard_normal((8, 8)), rng.standard_normal((N, 12))])
    for A, B in ((X, Y), (Y, X)):  # the reference code fails when the second layer is narrower
        r = pwcca(A, B, variance=None)
        assert r.correlations.shape == r.weights.shape == (8,)
        assert r.score == pytest.approx(1.0, abs=1e-9)  # the narrow side lies inside the wide one
    Z = X[:, :5] @ rng.standard_normal((5, 20)) + 0.7 * rng.standard_normal((N, 20))
    xy, yx = pwcca(X, Z), pwcca(Z, X)
    assert pwcca(X, Z, weights_from="y").score == pytest.approx(yx.score, abs=1e-12)
    assert pwcca(X, Z, weights_from="mean").score == pytest.approx(0.5 * (xy.score + yx.score), abs=1e-12)
    assert pwcca(X, Z, weights_from="mean").score == pytest.approx(pwcca(Z, X, weights_from="mean").score)
    assert abs(xy.score - yx.score) > 0.02  # default (X-weighted) PWCCA is not symmetric
    assert linear_cka(X, Z) == pytest.approx(linear_cka(Z, X), abs=1e-12)
    with pytest.raises(ValueError, match="weights_from"):
        pwcca(X, Z, weights_from="left")


def test_independent_noise_matches_random_baseline(rng):
    X, Y = rng.standard_normal((N, DX)), rng.standard_normal((N, DY))
    base = random_baseline(N, DX, DY, seed=1, n_repeats=5)
    assert set(base) >= {"pwcca_mean", "pwcca_std", "cka_mean", "cka_std", "n_repeats"}
    assert pwcca(X, Y).score == pytest.approx(base["pwcca_mean"], abs=0.02)  # measured ~0.28
    assert linear_cka(X, Y) == pytest.approx(base["cka_mean"], abs=0.02)  # measured ~0.07
    related = X @ rng.standard_normal((DX, DY)) + rng.standard_normal((N, DY))
    assert pwcca(X, related).score > base["pwcca_mean"] + 0.3
    assert random_baseline(N, DX, DY, seed=1, n_repeats=5) == base


def test_offset_and_scale_do_not_change_pwcca(rng):
    X = rng.standard_normal((N, DX))
    Y = X[:, :10] @ rng.standard_normal((10, DY)) + rng.standard_normal((N, DY))
    r, r2 = pwcca(X, Y), pwcca(1e3 * X + 1e6, Y - 50.0)
    assert r2.score == pytest.approx(r.score, abs=1e-6)
    assert np.allclose(r2.weights, r.weights, atol=1e-6)


def test_rank_deficient_and_constant_features_are_finite(rng):
    X = rng.standard_normal((N, 6))
    Y = X[:, :3] @ rng.standard_normal((3, 5)) + rng.standard_normal((N, 5))
    Xbad = np.column_stack([X, X[:, 0], np.full(N, 7.0), X[:, 1] + X[:, 2]])  # duplicate, constant, sum
    r = pwcca(Xbad, Y)
    assert r.rank_x == 6 and np.isfinite(r.score) and np.isfinite(r.weights).all()
    assert np.allclose(r.correlations, pwcca(X, Y).correlations, atol=1e-8)
    assert np.isfinite(linear_cka(Xbad, Y))
    with pytest.raises(ValueError, match="X has no variance"):
        pwcca(np.ones((N, 4)), Y)
    with pytest.raises(ValueError, match="Y has no variance"):
        linear_cka(X, np.zeros((N, 3)))
    with pytest.raises(ValueError, match="NaN"):
        pwcca(np.where(X > 3, np.nan, X), Y)
    with pytest.raises(ValueError, match="same number of samples"):
        pwcca(X, Y[:-1])


def test_fewer_samples_than_features_is_refused_or_reduced(rng):
    X, Y = rng.standard_normal((40, 64)), rng.standard_normal((40, 64))
    with pytest.raises(ValueError, match="max_dims"):
        pwcca(X, Y)
    r = pwcca(X, Y, max_dims=10)
    assert r.rank_x == r.rank_y == 10 and r.score == pytest.approx(0.4386726913303105, abs=1e-9)  # the seeded value
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)  # the n < d path uses Gram matrices: compare with the feature form
    by_features = np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    assert linear_cka(X, Y) == pytest.approx(by_features, rel=1e-9)

def test_pairwise_similarity_rows(rng):
    base = rng.standard_normal((300, 8))
    reps = {v: base @ rng.standard_normal((8, 16)) + rng.standard_normal((300, 16)) for v in ("a", "b", "c")}
    df = pairwise_similarity(reps)
    assert list(df[["view_a", "view_b"]].itertuples(index=False, name=None)) == [("a", "b"), ("a", "c"),
                                                                                  ("b", "c")]
    rand = pairwise_similarity(reps, random=True, n_repeats=2)
    assert (df["pwcca"] > rand["pwcca"] + 0.2).all() and (df["cka"] > rand["cka"]).all()
    assert (df["debiased_cka"] > rand["debiased_cka"] + 0.2).all()
    with_base = pairwise_similarity(reps, baseline=True, n_repeats=3)
    assert np.allclose(with_base["pwcca"], df["pwcca"])
    assert np.allclose(with_base["pwcca_minus_baseline"], with_base["pwcca"] - with_base["pwcca_baseline"])
    assert (with_base["pwcca_baseline_sd"] > 0).all() and (with_base["cka_minus_baseline"] > 0.2).all()


def test_variance_step_keeps_the_directions_that_explain_it(rng):
    Z = rng.standard_normal((N, 3))
    X = Z @ rng.standard_normal((3, 20)) + 0.01 * rng.standard_normal((N, 20))  # 3 strong directions + noise
    Y = Z @ rng.standard_normal((3, 10)) + 0.01 * rng.standard_normal((N, 10))
    r = pwcca(X, Y)
    assert (r.rank_x, r.rank_y) == (3, 3) and r.score > 0.99
    full = pwcca(X, Y, variance=None)
    assert (full.rank_x, full.rank_y) == (20, 10) and full.score < r.score  # the noise pairs pull it down
    assert pwcca(X, Y, variance=1.0).rank_x == 20
    assert len(cca_correlations(X, Y)) == 3
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="variance"):
            pwcca(X, Y, variance=bad)


def _gram_debiased_cka(X, Y):
    """Nguyen et al.'s formula on n x n Gram matrices of the raw (uncentred) tables."""
    n = len(X)

    def hsic(K, L):
        K, L, one = K.copy(), L.copy(), np.ones(n)
        np.fill_diagonal(K, 0.0)
        np.fill_diagonal(L, 0.0)
        return (np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
                - 2.0 / (n - 2) * (one @ K @ L @ one)) / (n * (n - 3))

    K, L = X @ X.T, Y @ Y.T
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


def test_debiased_cka_matches_gram_formula_and_removes_the_small_sample_bias(rng):
    X = rng.standard_normal((40, 12)) + 5.0
    Y = X[:, :4] @ rng.standard_normal((4, 9)) + rng.standard_normal((40, 9))
    assert debiased_cka(X, Y) == pytest.approx(_gram_debiased_cka(X, Y), abs=1e-10)
    assert debiased_cka(X, Y) == pytest.approx(debiased_cka(Y, X), abs=1e-12)
    assert debiased_cka(X, 3.0 * X - 1.0) == pytest.approx(1.0, abs=1e-9)
    A, B = rng.standard_normal((50, 64)), rng.standard_normal((50, 64))  # independent, few samples
    assert linear_cka(A, B) > 0.4  # measured ~0.55: linear CKA's bias at n < d
    assert abs(debiased_cka(A, B)) < 0.05
    with pytest.raises(ValueError, match="4 samples"):
        debiased_cka(A[:3], B[:3])
    with pytest.raises(ValueError, match="no variance"):
        debiased_cka(A, np.ones((50, 2)))


def test_matched_random_keeps_the_spectrum_and_loses_the_samples(rng):
    A = rng.standard_normal((200, 6)) @ rng.standard_normal((6, 30)) + 4.0  # rank 6, offset
    R = matched_random(A, np.random.default_rng(1))
    assert R.shape == A.shape and np.allclose(R.mean(0), 0.0, atol=1e-10)
    s_a = np.linalg.svd(A - A.mean(0), compute_uv=False)
    assert np.allclose(np.linalg.svd(R, compute_uv=False), s_a, atol=1e-8)
    assert pwcca(A, R).rank_x == pwcca(A, R).rank_y
    assert pwcca(A, R).score < 0.4  # no correspondence left between the rows


def test_matched_baseline_follows_the_used_directions_not_the_width(rng):
    low = rng.standard_normal((N, 8)) @ rng.standard_normal((8, 128))  # 128 wide, 8 directions
    other = rng.standard_normal((N, 8)) @ rng.standard_normal((8, 128))
    base = matched_baseline(low, other, n_repeats=5)
    iso = random_baseline(N, 128, 128, n_repeats=2)
    assert base["pwcca_mean"] < 0.2 < 0.4 < iso["pwcca_mean"]  # measured ~0.10 and ~0.43
    assert pwcca(low, other).score == pytest.approx(base["pwcca_mean"], abs=4 * base["pwcca_std"] + 0.01)
    assert abs(base["debiased_cka_mean"]) < 0.02 and abs(iso["debiased_cka_mean"]) < 0.02
    assert base["n_repeats"] == 5 and base["dx"] == 128
