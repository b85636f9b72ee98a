"""SpeakerClusterAnalysis: intra-speaker and global emotion clusters with permutation p-values."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from sercore.clusters.analysis import SpeakerClusterAnalysis, contingency_scores, permutation_test

EMOTIONS = np.array(["ang", "hap", "neu", "sad"])


def _corpus(*, n_speakers=4, n_emotions=3, per=15, dim=16, emotion_scale=1.0, speaker_scale=3.0, noise=0.1,
            shared_emotions=False, seed=0):
    """Speaker centre + emotion offset (per speaker, or shared across speakers) + noise."""
    rng = np.random.default_rng(seed)
    X, spk, emo = [], [], []
    shared = rng.normal(size=(n_emotions, dim))
    for s in range(n_speakers):
        centre = speaker_scale * rng.normal(size=dim)
        offsets = shared if shared_emotions else rng.normal(size=(n_emotions, dim))
        for e in range(n_emotions):
            X.append(centre + emotion_scale * offsets[e] + noise * rng.normal(size=(per, dim)))
            spk += [f"spk{s}"] * per
            emo += [EMOTIONS[e]] * per
    return np.concatenate(X), np.array(spk), np.array(emo)


def test_contingency_scores_match_sklearn_on_random_labelings():
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(5, 60))
        clusters = rng.integers(0, rng.integers(1, 6), n)
        labels = np.unique(rng.integers(0, rng.integers(1, 5), n), return_inverse=True)[1]
        got = contingency_scores(clusters, labels[None, :])
        assert got["nmi"][0] == pytest.approx(normalized_mutual_info_score(labels, clusters), abs=1e-10)
        assert got["ari"][0] == pytest.approx(adjusted_rand_score(labels, clusters), abs=1e-10)
        majority = sum(np.bincount(labels[clusters == c]).max() for c in np.unique(clusters))
        assert got["purity"][0] == pytest.approx(majority / n)


def test_permutation_test_p_value_formula():
    clusters = np.repeat([0, 1, 2], 20)
    perfect = clusters.copy()
    p, null = permutation_test(clusters, perfect, n_permutations=99, rng=np.random.default_rng(0))
    assert p == {"purity": 0.01, "nmi": 0.01, "ari": 0.01}  # (1 + 0) / (1 + 99): no shuffle is as good
    assert null["ari"].shape == (99,) and abs(null["ari"].mean()) < 0.05
    p_same, _ = permutation_test(clusters, np.zeros(60, dtype=int), n_permutations=20, rng=np.random.default_rng(0))
    assert p_same["ari"] == 1.0  # a constant labeling: every shuffle ties the observed value


def test_clusters_equal_emotions_give_high_scores_and_small_p():
    X, spk, emo = _corpus()
    ana = SpeakerClusterAnalysis(k_grid=(2, 4), n_permutations=50, seed=0).fit(X, spk, emo)
    main = ana.per_speaker_[ana.per_speaker_["setting"] == "n_emotions"]
    assert len(main) == 4 and (main["k"] == 3).all()
    for m in ("purity", "nmi", "ari"):
        assert main[m].min() > 0.99
        assert np.allclose(main[f"p_{m}"], 1 / 51)
    summary = ana.summary_.set_index("setting")
    assert summary.loc["n_emotions", "frac_sig_ari"] == 1.0
    assert summary.loc["n_emotions", "p_mean_nmi"] == pytest.approx(1 / 51)
    assert set(summary.index) == {"n_emotions", "k=2", "k=4"}
    assert summary.loc["k=2", "purity_mean"] < summary.loc["n_emotions", "purity_mean"]
    for s in np.unique(spk):  # labels_ reproduce each speaker's emotion partition
        assert adjusted_rand_score(emo[spk == s], ana.labels_[spk == s]) == pytest.approx(1.0)


def test_independent_labels_give_low_scores_and_large_p():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6 * 40, 8))
    spk = np.repeat([f"s{i}" for i in range(6)], 40)
    emo = rng.choice(EMOTIONS, size=len(X))
    ana = SpeakerClusterAnalysis(k_grid=(2,), n_permutations=100, seed=0).fit(X, spk, emo)
    main = ana.per_speaker_[ana.per_speaker_["setting"] == "n_emotions"]
    assert main["ari"].abs().max() < 0.1 and main["nmi"].mean() < 0.15  # NMI is biased up at small n
    assert main["p_ari"].mean() > 0.25
    summary = ana.summary_.set_index("setting")
    assert summary.loc["n_emotions", "p_mean_ari"] > 0.05
    assert summary.loc["n_emotions", "frac_sig_nmi"] <= 1 / 3


def test_global_clusters_track_shared_emotions_not_speakers():
    X, spk, emo = _corpus(n_speakers=3, emotion_scale=3.0, speaker_scale=0.3, shared_emotions=True, seed=5)
    ana = SpeakerClusterAnalysis(k_grid=(), n_permutations=30, seed=0).fit(X, spk, emo)
    g = ana.global_.set_index("target")
    assert g.loc["emotion", "k"] == 3 and g.loc["emotion", "n"] == len(X)
    assert g.loc["emotion", "ari"] > 0.99 and g.loc["emotion", "p_ari"] == pytest.approx(1 / 31)
    assert g.loc["speaker", "nmi"] < 0.05 and g.loc["speaker", "p_nmi"] > 0.05
    assert adjusted_rand_score(emo, ana.global_labels_) > 0.99


def test_fixed_k_and_skips_are_reported():
    X, spk, emo = _corpus(n_speakers=3, per=4)
    emo[spk == "spk2"] = "neu"  # one emotion only: nothing to compare with
    with pytest.warns(UserWarning, match="skipped"):
        ana = SpeakerClusterAnalysis(k=2, k_grid=(12,), n_permutations=10).fit(X, spk, emo)
    skipped = ana.skipped_
    assert set(skipped.loc[skipped["speaker"] == "spk2", "setting"]) == {"k=2", "k=12"}
    assert skipped.loc[(skipped["speaker"] == "spk0") & (skipped["setting"] == "k=12"), "reason"].str.contains(
        "12 utterance").all()
    assert set(ana.per_speaker_["setting"]) == {"k=2"} and len(ana.per_speaker_) == 2
    assert (ana.labels_[spk == "spk2"] == -1).all() and (ana.labels_[spk != "spk2"] >= 0).all()


def test_bad_inputs_raise_clear_errors():
    X, spk, emo = _corpus(n_speakers=2, per=5)
    ana = SpeakerClusterAnalysis(n_permutations=5)
    with pytest.raises(ValueError, match=r"X must be \(n_samples, n_features\)"):
        ana.fit(X[:, 0], spk, emo)
    with pytest.raises(ValueError, match="speakers must have one entry per row"):
        ana.fit(X, spk[:-1], emo)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ana.fit(bad, spk, emo)
    with pytest.raises(ValueError, match="all-zero"):
        ana.fit(np.zeros_like(X), spk, emo)
    with pytest.raises(ValueError, match="k must be"):
        SpeakerClusterAnalysis(k=1)


def test_global_speaker_clusters_use_the_number_of_speakers():
    # 5 well-separated speakers, 3 emotions: k = 3 cannot recover the speakers, k = 5 does
    X, spk, emo = _corpus(n_speakers=5, n_emotions=3, per=8, emotion_scale=0.3, speaker_scale=4.0, seed=2)
    ana = SpeakerClusterAnalysis(k_grid=(), n_permutations=20, seed=0).fit(X, spk, emo)
    g = ana.global_.set_index("target")
    assert g.loc["emotion", "k"] == 3 and g.loc["speaker", "k"] == 5
    assert g.loc["speaker", "ari"] > 0.99 and g.loc["speaker", "p_ari"] == pytest.approx(1 / 21)
    assert adjusted_rand_score(spk, ana.global_speaker_labels_) > 0.99
    assert len(np.unique(ana.global_labels_)) == 3


def test_global_clustering_with_one_speaker_is_skipped_for_the_speaker_only():
    X, spk, emo = _corpus(n_speakers=1, n_emotions=3, per=10)
    with pytest.warns(UserWarning, match="against speaker skipped"):
        ana = SpeakerClusterAnalysis(k_grid=(), n_permutations=5).fit(X, spk, emo)
    assert list(ana.global_["target"]) == ["emotion"]
    assert (ana.global_speaker_labels_ == -1).all() and (ana.global_labels_ >= 0).all()
