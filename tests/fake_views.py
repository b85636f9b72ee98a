"""Fake views for the feature-cache tests (the cache only relies on the View contract), the tone corpus they
read, and the helpers that run the cache or the views directly. ``FAIL`` makes the fakes die after N
``extract`` calls (``hard``: ``os._exit``, like a killed process)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import soundfile as sf

from sercore.features.cache import extract_features

SR = 16000
FAIL = {"after": None, "hard": False}  # make fake views die after N extract calls


class FakeFixed:
    """Fixed-length view: [mean, std, peak, duration] * scale."""

    name, variable, parallel = "fakefix", False, False

    def __init__(self, scale=1.0, version="1"):
        self.params, self.version, self.calls = {"scale": scale}, version, 0

    def provenance(self):
        return {"source": "fake"}

    def extract(self, wave, sr=SR):
        self.calls += 1
        if FAIL["after"] is not None and self.calls > FAIL["after"]:
            if FAIL["hard"]:
                os._exit(3)  # like a killed process: no exception handling, no cleanup
            raise RuntimeError("simulated crash")
        return np.array([wave.mean(), wave.std(), np.abs(wave).max(), len(wave) / sr]) * self.params["scale"]

    def extract_batch(self, waves):
        return [self.extract(w) for w in waves]


class FakeSeq(FakeFixed):
    """Variable-length view: one frame [mean, rms, peak] per 50 ms."""

    name, variable = "fakeseq", True

    def extract(self, wave, sr=SR):
        super().extract(wave, sr)
        frames = wave[: len(wave) // 800 * 800].reshape(-1, 800)
        return np.stack([frames.mean(1), np.sqrt((frames ** 2).mean(1)), np.abs(frames).max(1)], axis=1)


class FakeSlow(FakeFixed):
    """Slow enough that two processes started together overlap."""

    name = "fakeslow"

    def extract(self, wave, sr=SR):
        import time

        time.sleep(0.05)
        return super().extract(wave, sr)


def fill(manifest, root, barrier, out):
    """A process's part in the two-process tests: wait for the other, extract ``FakeSlow`` into ``root``, save
    the features (float32) to ``out`` and the number of extract calls to ``<out>.calls``."""
    barrier.wait()
    view = FakeSlow()
    fs = run(manifest, view, root, chunk_size=2)
    np.save(out, fs.numpy_fixed())
    with open(f"{out}.calls", "w") as f:
        f.write(str(view.calls))


def write_corpus(folder, n=10):
    """``n`` noisy tones of 0.5, 0.6, ... s as float WAVs in ``folder``, two speakers; their manifest."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        dur = 0.5 + 0.1 * i  # 0.5 .. 1.4 s
        t = np.arange(int(dur * SR)) / SR
        wave = 0.3 * np.sin(2 * np.pi * (150 + 30 * i) * t) + 0.01 * rng.standard_normal(len(t))
        path = folder / f"u{i:02d}.wav"
        sf.write(str(path), wave.astype(np.float32), SR, subtype="FLOAT")
        rows.append({"utt_id": f"u{i:02d}", "path": str(path), "speaker": f"s{i % 2}"})
    return pd.DataFrame(rows)


def run(manifest, view, root, **kw):
    kw.setdefault("progress", False)
    return extract_features(manifest, view, cache_root=root, **kw)


def direct(manifest, view_cls, **params):
    from sercore.data.audio import load_audio

    view = view_cls(**params)
    return {u: np.asarray(view.extract(load_audio(p)), np.float32) for u, p in zip(manifest.utt_id, manifest.path)}
