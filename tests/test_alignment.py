"""alignment_table on synthetic representations of EmoDB's size: the sample choice, the random-vector baseline,
and the figure that reports both."""

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from sercore.pairwise.figures import similarity_heatmap
from sercore.pairwise.representations import FoldRepresentations, alignment_note, alignment_table, choose_samples

N, SPEAKERS, EMOTIONS, WIDTH = 500, 10, 7, 128
VIEWS = ("w2v2", "mel", "egemaps")


pytestmark = pytest.mark.usefixtures("one_blas_thread")  # tests/conftest.py


def _latent(rng, speaker, emotion):
    """Speaker and emotion factors plus continuous ones: the structure views of one utterance share."""
    return np.hstack([rng.standard_normal((SPEAKERS, 4))[speaker], rng.standard_normal((EMOTIONS, 4))[emotion],
                      rng.standard_normal((len(speaker), 8))])


def _view(Z, rng):
    """A 128-d encoder output: the latent through random weights plus noise with a decaying spectrum."""
    W = rng.standard_normal((Z.shape[1], WIDTH)) / np.sqrt(Z.shape[1])
    basis = np.linalg.qr(rng.standard_normal((WIDTH, WIDTH)))[0]
    noise = rng.standard_normal((len(Z), WIDTH)) * np.arange(1, WIDTH + 1) ** -0.5 @ basis
    return Z @ W + noise


def _emodb_like(seed=0) -> FoldRepresentations:
    """500 utterances of 10 speakers, one speaker (~50 utterances) as the test fold; model kinds ``shared``
    (the views encode one common latent) and ``independent`` (each view its own unrelated latent)."""
    rng = np.random.default_rng(seed)
    speaker, emotion = np.repeat(np.arange(SPEAKERS), N // SPEAKERS), rng.integers(0, EMOTIONS, N)
    Z = _latent(rng, speaker, emotion)
    reps = {("shared", v): _view(Z, rng) for v in VIEWS}
    reps.update({("independent", v): _view(rng.standard_normal(Z.shape), rng) for v in VIEWS})
    test = speaker == 0
    ids = np.array([f"u{i:03d}" for i in range(N)])
    return FoldRepresentations(0, list(ids[test]), [str(e) for e in emotion[test]],
                               {k: z[test] for k, z in reps.items()}, list(ids[~test]),
                               {k: z[~test] for k, z in reps.items()})


@pytest.fixture(scope="module")
def emodb_table():
    with threadpool_limits(limits=1):
        return alignment_table([_emodb_like()])


def test_auto_uses_all_utterances_when_the_test_set_is_small(emodb_table):
    t = emodb_table
    assert (t["samples"] == "all").all() and (t["n_samples"] == N).all() and (t["n_test"] == 50).all()
    assert (t["max_dims"] == 0).all() and (t["width"] == WIDTH).all() and (t["n_repeats"] == 10).all()
    assert set(t["condition"]) == {"shared", "independent", "random vectors"}
    assert choose_samples(50, 128, 500) == "all" and choose_samples(2000, 128, 5000) == "test"
    assert choose_samples(50, 128, 50) == "test"  # nothing more to take
    assert choose_samples(2000, 128, 5000, "all") == "all"
    with pytest.raises(ValueError, match="samples"):
        choose_samples(50, 128, 500, "train")


def test_random_vector_baseline_is_low_and_separates_shared_from_independent(emodb_table):
    t = emodb_table.set_index(["condition", "pair"])
    random = t.loc["random vectors"]
    assert (random["pwcca"] <= 0.35).all()  # at EmoDB's size (measured ~0.24)
    assert (random["pwcca_baseline_sd"] > 0).all()
    shared, independent = t.loc["shared"], t.loc["independent"]
    assert (shared["pwcca_baseline"] <= 0.35).all() and (independent["pwcca_baseline"] <= 0.35).all()
    assert (shared["pwcca"] > shared["pwcca_baseline"] + 10 * shared["pwcca_baseline_sd"]).all()
    assert (shared["pwcca_minus_baseline"] > 0.3).all()
    # independent views score within the baseline's spread, not above it
    assert (independent["pwcca_minus_baseline"] < 4 * independent["pwcca_baseline_sd"] + 0.005).all()
    assert (independent["cka_minus_baseline"] < 4 * independent["cka_baseline_sd"] + 0.005).all()
    assert (independent["debiased_cka"].abs() < 0.02).all() and (shared["debiased_cka"] > 0.5).all()
    assert np.allclose(t["pwcca_minus_baseline"], t["pwcca"] - t["pwcca_baseline"])


def test_test_set_only_shows_the_small_sample_bias():
    with threadpool_limits(limits=1):
        t = alignment_table([_emodb_like()], samples="test", n_repeats=3)
    assert (t["samples"] == "test").all() and (t["n_samples"] == 50).all() and (t["max_dims"] == 24).all()
    random = t[t["condition"] == "random vectors"]
    assert (random["pwcca"] > 0.5).all()  # what notebook 06 showed on EmoDB's test sets (measured ~0.6)


def test_all_without_training_representations_falls_back_with_a_warning():
    rep = _emodb_like()
    rep = FoldRepresentations(rep.fold, rep.ids, rep.labels, {k: v[:, :8] for k, v in rep.vectors.items()})
    with pytest.warns(UserWarning, match="only test representations"):
        t = alignment_table([rep], samples="all", n_repeats=2)
    assert (t["samples"] == "test").all() and (t["n_samples"] == 50).all()
    with pytest.raises(ValueError, match="samples='all'"):
        rep.by_model("shared", samples="all")


def test_heatmap_caption_states_the_samples_and_the_baseline(emodb_table, tmp_path):
    note = alignment_note(emodb_table)
    assert "all utterances" in note and "n=500" in note and "n=50" in note and "99 %" in note
    assert "10 draws" in note
    paths = similarity_heatmap(emodb_table, tmp_path / "alignment", caption="dataset: synthetic")
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    md = (tmp_path / "alignment_pwcca.md").read_text()
    assert md.startswith("dataset: synthetic | samples: all utterances")
    delta = pd.read_csv(tmp_path / "alignment_pwcca_minus_baseline.csv").set_index("condition")
    assert (delta.loc["shared"] > 0.3).all() and (delta.loc["random vectors"] == 0).all()
    assert (tmp_path / "alignment_debiased_cka.csv").exists()
