"""The synthetic default corpus: determinism, structure, acoustics of the emotion profiles, reuse, atomicity."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sercore.data import synth
from sercore.data.manifest import validate_manifest
from sercore.data.sentences import SENTENCES


def _hashes(manifest: pd.DataFrame) -> dict:
    return {row.utt_id: hashlib.sha256(Path(row.path).read_bytes()).hexdigest() for row in manifest.itertuples()}


@pytest.fixture(scope="module")
def tiny_synth_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    return root, synth.load_default_corpus(root, size="tiny", seed=0, workers=2)


def test_structure_like_iemocap(tiny_synth_corpus):
    root, df = tiny_synth_corpus
    validate_manifest(df)  # required columns, canonical emotions, files exist
    assert len(df) == 10 * 8 * synth.SIZES["tiny"]
    assert set(df["dataset"]) == {"synthetic"}
    assert sorted(df["session"].unique()) == [f"Session{i}" for i in range(1, 6)]
    per_session = df.groupby("session")["speaker"].unique()
    for session, speakers in per_session.items():
        assert sorted(speakers) == [f"S{session[-1]}F", f"S{session[-1]}M"]
    assert set(df["emotion"]) == {"neu", "hap", "sad", "ang", "fea", "dis", "sur", "bor"}
    cells = df.groupby(["speaker", "emotion"]).size()
    assert len(cells) == 80 and (cells == synth.SIZES["tiny"]).all()
    assert (df["gender"] == df["speaker"].str[-1]).all()
    assert df["text_id"].map(lambda t: 1 <= int(t[1:]) <= len(SENTENCES)).all()
    assert all(Path(p).is_relative_to(synth.corpus_path(root, size="tiny", seed=0)) for p in df["path"])
    assert "manifest.csv" in {p.name for p in synth.corpus_path(root, size="tiny", seed=0).iterdir()}


def test_wavs_are_16k_mono_pcm16_with_sane_durations(tiny_synth_corpus):
    _, df = tiny_synth_corpus
    for row in df.itertuples():
        info = sf.info(row.path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), row.path
        audio, _ = sf.read(row.path, dtype="float32")
        assert len(audio) / 16000 == pytest.approx(row.duration, abs=1e-3)
        assert 1.0 <= row.duration <= 6.0, (row.path, row.duration)
        rms_db = 20 * np.log10(np.sqrt(np.mean(audio**2)))
        assert -50 < rms_db < -6, (row.path, rms_db)  # never silent, never clipped flat
        assert np.max(np.abs(audio)) < 1.0


def test_emotion_profiles_shape_the_acoustics(tiny_synth_corpus):
    _, df = tiny_synth_corpus
    df = df.assign(level=[20 * np.log10(np.sqrt(np.mean(sf.read(p)[0] ** 2))) for p in df["path"]])
    by = df.groupby("emotion")[["level", "duration"]].mean()
    assert by.loc["ang", "level"] > by.loc["sad", "level"] + 4  # angry is louder than sad
    assert by.loc["sad", "duration"] > by.loc["ang", "duration"] * 1.15  # sad is slower
    assert df.groupby("speaker")["level"].std().min() > 1.0  # level varies within a speaker


def test_reuses_a_generated_corpus(tiny_synth_corpus, monkeypatch):
    root, df = tiny_synth_corpus
    before = {p: Path(p).stat().st_mtime_ns for p in df["path"]}

    def fail(*args, **kwargs):
        raise AssertionError("regenerated a corpus that was already complete")

    monkeypatch.setattr(synth, "generate_corpus", fail)
    again = synth.load_default_corpus(root, size="tiny", seed=0)
    pd.testing.assert_frame_equal(again, df)
    assert {p: Path(p).stat().st_mtime_ns for p in again["path"]} == before


def test_moved_corpus_is_reused_and_a_damaged_one_regenerated(tiny_synth_corpus, tmp_path, monkeypatch):
    root, df = tiny_synth_corpus
    copy = synth.corpus_path(tmp_path, size="tiny", seed=0)
    shutil.copytree(synth.corpus_path(root, size="tiny", seed=0), copy)
    moved = synth.load_default_corpus(tmp_path, size="tiny", seed=0)
    assert all(Path(p).is_relative_to(copy) for p in moved["path"])  # the CSV stores paths relative to it
    assert _hashes(moved) == _hashes(df)

    Path(moved["path"][5]).unlink()
    calls = []
    monkeypatch.setattr(synth, "generate_corpus", lambda folder, **kw: calls.append((folder, kw)) or "regenerated")
    with pytest.warns(UserWarning, match="damaged"):
        assert synth.load_default_corpus(tmp_path, size="tiny", seed=0) == "regenerated"
    assert calls == [(copy, dict(size="tiny", seed=0, workers=None))]


def test_interrupted_generation_is_redone_identically_with_other_workers(tiny_synth_corpus, tmp_path):
    _, reference = tiny_synth_corpus
    final = synth.corpus_path(tmp_path, size="tiny", seed=0)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = final.with_name(f".{final.name}.tmp-{dead.pid}")
    (leftover / "Session1").mkdir(parents=True)
    (leftover / "Session1" / "half.wav").write_bytes(b"RIFF")
    final.mkdir()  # a half-finished corpus folder without its completion record
    (final / "manifest.csv").write_text("utt_id,path,speaker,emotion,dataset\n")

    df = synth.load_default_corpus(tmp_path, size="tiny", seed=0, workers=1)
    assert not leftover.exists()
    assert (final / "corpus.json").is_file() and len(df) == len(reference)
    assert _hashes(df) == _hashes(reference)  # same seed: byte-identical, whatever the number of workers


def test_failed_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def render_then_fail(item, folder):
        calls.append(item["utt_id"])
        if len(calls) > 3:
            raise RuntimeError("simulated crash")
        return real(item, folder)

    real = synth._render_row
    monkeypatch.setattr(synth, "_render_row", render_then_fail)
    with pytest.raises(RuntimeError, match="simulated crash"):
        synth.load_default_corpus(tmp_path, size="tiny", seed=3, workers=1)
    assert list(tmp_path.iterdir()) == []


def test_different_seed_gives_different_audio(tiny_synth_corpus, tmp_path):
    _, reference = tiny_synth_corpus
    plan0, plan1 = synth.plan_corpus("tiny", 0), synth.plan_corpus("tiny", 1)
    assert [i["utt_id"] for i in plan0] != [i["utt_id"] for i in plan1]
    rows = [synth._render_row(item, str(tmp_path)) for item in plan1[:4]]
    new = {hashlib.sha256(Path(r["path"]).read_bytes()).hexdigest() for r in rows}
    assert not new & set(_hashes(reference).values())
    same = next(i for i in plan1 if i["utt_id"] in set(reference["utt_id"]))  # same text, other draw
    audio = synth.render(same["text"], synth._SPEAKERS[same["speaker"]], same["params"])
    old, _ = sf.read(reference.set_index("utt_id").loc[same["utt_id"], "path"], dtype="int16")
    assert len(audio) != len(old) or not np.array_equal(audio, old)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown synthetic corpus size 'huge'"):
        synth.load_default_corpus(size="huge")
    with pytest.raises(ValueError, match="seed must be an integer"):
        synth.plan_corpus("tiny", seed="0")
    bad = synth.Speaker("X1F", "Session1", "F", "xx-nowhere", 200, 300, 170, 1.0, 0.0, 1.0, "flutter 2")
    params = synth.plan_corpus("tiny", 0)[0]["params"]
    with pytest.raises(RuntimeError, match="no voice 'xx-nowhere"):
        synth.render("Hello there.", bad, params)


def test_espeak_server_is_a_module_that_speaks_reproducibly_and_names_bad_voices():
    """The server runs as its own file with ``python -S`` and answers the framed protocol of its docstring."""
    import struct

    import espeakng_loader

    from sercore.data import espeak_server

    proc = subprocess.Popen([sys.executable, "-S", espeak_server.__file__, espeakng_loader.get_library_path(),
                             str(synth._espeak_data_dir())], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def read():
        head = proc.stdout.read(5)
        return head[:1], proc.stdout.read(struct.unpack("<i", head[1:])[0])

    def ask(voice: bytes, text: bytes):
        request = struct.pack("<iiq", 170, 0, 7) + voice + b"\0" + text
        proc.stdin.write(struct.pack("<i", len(request)) + request)
        proc.stdin.flush()
        return read()

    try:
        kind, rate = read()
        assert kind == b"R" and struct.unpack("<i", rate)[0] == 22050
        first, again = ask(b"en-us", b"The sky is blue."), ask(b"en-us", b"The sky is blue.")
        assert first[0] == b"A" and len(first[1]) > 2 * 22050 // 2 and first == again  # same state, same seed
        assert ask(b"xx-nowhere", b"hello") == (b"E", b"no voice 'xx-nowhere'")
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.returncode == 0
