"""Calibration of the synthetic corpus: emotions learnable but overlapping, speakers clearly separable.

A plain eGeMAPS + logistic-regression model with leave-one-session-out folds must land well above chance and
far from perfect on the 4-class task; speaker identification (10 classes) from eGeMAPS and from Resemblyzer
d-vectors must be far above chance. Runs on the ``small`` corpus (800 utterances, 400 of them in the target
emotions); the ``default`` corpus, measured with the same code, is quoted in ``sercore.data.synth``.
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, recall_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sercore.data.manifest import TARGET_EMOTIONS
from sercore.data.synth import load_default_corpus

pytestmark = pytest.mark.slow
SIZE = "small"


def _egemaps(paths) -> np.ndarray:
    import opensmile

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    return np.vstack([smile.process_file(p).to_numpy() for p in paths])


def _dvectors(paths) -> np.ndarray:
    import soundfile as sf
    import torch
    from resemblyzer import VoiceEncoder, preprocess_wav

    torch.set_num_threads(1)  # one process per core; more threads only fight over the cores
    encoder = VoiceEncoder("cpu", verbose=False)
    return np.vstack([encoder.embed_utterance(preprocess_wav(sf.read(p)[0], source_sr=16000)) for p in paths])


def _in_parallel(fn, paths, workers: int = 2) -> np.ndarray:
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        return np.vstack(list(pool.map(fn, np.array_split(np.asarray(paths), workers))))


def _classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))


def _loso_predictions(X, y, groups) -> np.ndarray:
    pred = np.empty(len(y), dtype=object)
    for g in np.unique(groups):
        test = groups == g
        pred[test] = _classifier().fit(X[~test], y[~test]).predict(X[test])
    return pred


def _speaker_id_accuracy(X, speakers) -> float:
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return balanced_accuracy_score(speakers, cross_val_predict(_classifier(), X, speakers, cv=folds))


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    corpus = load_default_corpus(tmp_path_factory.mktemp("corpora"), size=SIZE, seed=0, workers=2)
    df = corpus[corpus["emotion"].isin(TARGET_EMOTIONS)].reset_index(drop=True)
    return df, _in_parallel(_egemaps, df["path"]), _in_parallel(_dvectors, df["path"])


def test_egemaps_emotion_uar_is_in_the_calibrated_band(features):
    df, X, _ = features
    y, sessions = df["emotion"].to_numpy(), df["session"].to_numpy()
    assert X.shape == (len(df), 88) and np.isfinite(X).all()
    pred = _loso_predictions(X, y, sessions)
    uar = balanced_accuracy_score(y, pred)
    assert 0.45 <= uar <= 0.85, f"4-class LOSO UAR {uar:.3f} outside the calibrated band"
    recalls = recall_score(y, pred, labels=list(TARGET_EMOTIONS), average=None)
    assert recalls.min() >= 0.25, dict(zip(TARGET_EMOTIONS, recalls.round(2)))  # no class collapses
    shuffled = np.random.default_rng(0).permutation(y)
    assert balanced_accuracy_score(shuffled, _loso_predictions(X, shuffled, sessions)) < 0.37  # chance stays chance


def test_speakers_are_separable_from_egemaps(features):
    df, X, _ = features
    accuracy = _speaker_id_accuracy(X, df["speaker"].to_numpy())
    assert accuracy >= 0.7, f"speaker identification from eGeMAPS {accuracy:.3f} (chance 0.1)"


def test_speakers_are_separable_from_dvectors(features):
    df, _, D = features
    assert D.shape == (len(df), 256)
    accuracy = _speaker_id_accuracy(D, df["speaker"].to_numpy())
    assert accuracy >= 0.8, f"speaker identification from Resemblyzer d-vectors {accuracy:.3f} (chance 0.1)"
