"""Extending the suite as the README says: a corpus, a view and an encoder kind, each added in one place.

A toy corpus (``register_dataset``), a toy view with ``[T, 2, 40]`` features that declares its own encoder kind
(``register`` + ``encoder = "toy2x40"``) and that encoder (``register_encoder``), all registered here, go
through the notebooks' path: ``setup`` → extraction → feature cache → pre-training + fine-tuning by a grid.
The grid must build the toy encoder for the toy view, not an encoder picked by the feature shape.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from golden import golden
from torch import nn

from sercore.data import registry as datasets
from sercore.data.corpora._common import corpus_root, finish
from sercore.data.manifest import ManifestError
from sercore.data.registry import BadFiles, register_dataset
from sercore.models import register_encoder
from sercore.models import registry as encoders
from sercore.models.encoders import frame_mask, masked_mean
from sercore.notebook.experiment import setup
from sercore.pairwise import sparse_label_grid
from sercore.views import SAMPLE_RATE, View, register
from sercore.views import base as views

LAYOUT = "<root>/<speaker>/<emotion>_<n>.wav"
EMOTION_HZ = {"neu": 150.0, "hap": 260.0, "sad": 120.0, "ang": 330.0, "fru": 200.0}


def load_toy(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """The toy corpus: one folder per speaker, files ``<emotion>_<n>.wav``."""
    folder, bad = corpus_root(root, "toy corpus", LAYOUT), BadFiles("toy corpus", on_error)
    rows = []
    for path in sorted(folder.glob("*/*.wav")):
        emotion = path.stem.split("_")[0]
        if emotion not in EMOTION_HZ:
            bad.add(path, f"unknown emotion {emotion!r}")
            continue
        rows.append(dict(utt_id=f"{path.parent.name}_{path.stem}", path=str(path), speaker=path.parent.name,
                         emotion=emotion, dataset="toy"))
    return finish(rows, "toy corpus", LAYOUT, bad, check_audio=check_audio)


class ToyView(View):
    """Two 40-band magnitude spectra per 20 ms frame (one per 10 ms half): ``[T, 2, 40]``."""

    name = "toy2x40"
    variable = True
    encoder = "toy2x40"

    def __init__(self, *, bands: int = 40):
        self.params = {"bands": bands}

    def extract(self, wave: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
        wave = self.check_wave(wave, sr)
        frames = wave[: len(wave) // 320 * 320].reshape(-1, 2, 160)
        spectrum = np.abs(np.fft.rfft(frames, axis=-1))[..., : self.params["bands"]]
        return np.log(spectrum + 1e-4).astype(np.float32)


class ToyEncoder(nn.Module):
    """Linear over the flattened ``[2, 40]`` frame, masked mean over time."""

    built: list["ToyEncoder"] = []
    calls = 0

    def __init__(self, frame: tuple[int, int], out_dim: int = 16):
        super().__init__()
        self.frame, self.out_dim = frame, out_dim
        self.linear = nn.Linear(frame[0] * frame[1], out_dim)

    @classmethod
    def from_shape(cls, feature_shape, out_dim: int = 16) -> "ToyEncoder":
        encoder = cls(tuple(feature_shape), out_dim)
        cls.built.append(encoder)
        return encoder

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        type(self).calls += 1
        h = torch.relu(self.linear(x.flatten(2)))
        return masked_mean(h, frame_mask(lengths, x.shape[0], x.shape[1], x.device))


@pytest.fixture
def toy_registered():
    """Register the toy corpus, view and encoder for one test, and remove them afterwards."""
    register_dataset("toy-corpus", layout=LAYOUT)(load_toy)
    register(ToyView)
    register_encoder("toy2x40")(ToyEncoder)
    ToyEncoder.built, ToyEncoder.calls = [], 0
    yield
    datasets._REGISTRY.pop("toy-corpus")
    datasets._ALIASES.pop("toycorpus")
    views._REGISTRY.pop("toy2x40")
    encoders._ENCODERS.pop("toy2x40")


@pytest.fixture
def toy_corpus(tmp_path):
    """6 speakers × 5 emotions × 4 utterances of 0.6 s: an emotion tone + a speaker tone + noise."""
    rng = np.random.default_rng(0)
    t = np.arange(int(0.6 * SAMPLE_RATE)) / SAMPLE_RATE
    for s in range(6):
        (tmp_path / f"spk{s}").mkdir()
        for emotion, hz in EMOTION_HZ.items():
            for n in range(4):
                wave = 0.3 * np.sin(2 * np.pi * hz * t) + 0.2 * np.sin(2 * np.pi * (500 + 90 * s) * t)
                wave += 0.05 * rng.standard_normal(len(t))
                sf.write(tmp_path / f"spk{s}" / f"{emotion}_{n}.wav", wave.astype(np.float32), SAMPLE_RATE)
    return tmp_path


def test_a_toy_view_trains_with_its_own_encoder_kind(toy_registered, toy_corpus, tmp_path):
    namespace = dict(dataset="toy-corpus", data_root=str(toy_corpus), views=["toy2x40", "mel"], budget="quick",
                     n_folds=3, repetitions=1, output_dir=str(tmp_path / "out"), fractions=[0.5])
    exp, run = setup(namespace, workers=1)
    assert exp.features["toy2x40"].feature_shape == (2, 40)
    assert exp.features["toy2x40"].meta["encoder"] == "toy2x40"  # written by the feature cache
    assert exp.features["mel"].meta["encoder"] == "mel"
    results = exp.grid(sparse_label_grid, fractions=namespace["fractions"])
    assert ToyEncoder.built and ToyEncoder.calls > 0  # pre-training and fine-tuning used the toy encoder
    toy = results[results["view"] == "toy2x40"]
    assert set(toy["condition"]) == {"pairwise-cl", "supervised"}
    assert toy["test_uar"].tolist() == golden([0.4375, 0.28125])  # the seeded values (one worker)
    record = json.loads((tmp_path / "out" / "params.json").read_text())
    assert record["params"]["views"] == ["toy2x40", "mel"] and record["params"]["fractions"] == [0.5]
    assert record["run"]["budget"] == "quick" and record["run"]["repetitions"] == 1
    assert sorted(exp.splits["fold"].unique()) == [0, 1, 2]


def test_a_view_without_an_encoder_kind_is_refused():
    class NoEncoder(View):
        name = "no-encoder"

    with pytest.raises(ValueError, match="'no-encoder': a registered view needs an `encoder` kind"):
        register(NoEncoder)


def test_strict_makes_a_file_the_corpus_cannot_use_fatal(toy_registered, toy_corpus, tmp_path):
    sf.write(toy_corpus / "spk0" / "oth_0.wav", np.zeros(8000, np.float32), SAMPLE_RATE)
    namespace = dict(dataset="toy-corpus", data_root=str(toy_corpus), views=["toy2x40"], strict=True,
                     output_dir=str(tmp_path / "out"))
    with pytest.raises(ManifestError, match=r"oth_0\.wav: unknown emotion 'oth'"):
        setup(namespace)
