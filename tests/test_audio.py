"""Audio front end: reading, mixing, resampling, and a clear AudioError for every kind of bad file."""

import pickle
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sercore.data.audio import AudioError, audio_header, load_audio, scan_audio, truncation


def sine(freq=440.0, dur=1.0, sr=16000, amp=0.5):
    t = np.arange(int(round(dur * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path, wave, sr=16000, subtype=None):
    sf.write(str(path), wave, sr, subtype=subtype)
    return path


def dominant_freq(wave, sr):
    spec = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return np.fft.rfftfreq(len(wave), 1 / sr)[spec.argmax()]


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_reads_wav_and_flac_as_float32(tmp_path, suffix):
    wave = sine(dur=0.8)
    out = load_audio(write(tmp_path / f"a{suffix}", wave))
    assert out.dtype == np.float32 and out.shape == wave.shape
    np.testing.assert_allclose(out, wave, atol=1e-4)  # 16-bit quantisation only


def test_stereo_is_mixed_to_mono(tmp_path):
    left, right = sine(440, 0.5), sine(660, 0.5, amp=0.2)
    out = load_audio(write(tmp_path / "st.wav", np.stack([left, right], axis=1), subtype="FLOAT"))
    assert out.ndim == 1
    np.testing.assert_allclose(out, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("orig_sr", [44100, 8000])
def test_resampled_to_16k_keeps_duration_and_pitch(tmp_path, orig_sr):
    out = load_audio(write(tmp_path / "r.wav", sine(440, 1.5, sr=orig_sr), sr=orig_sr))
    assert len(out) == 24000  # 1.5 s at 16 kHz
    assert abs(dominant_freq(out, 16000) - 440) < 2


def test_other_target_rate(tmp_path):
    out = load_audio(write(tmp_path / "r.wav", sine(300, 1.0, sr=44100), sr=44100), sr=22050)
    assert len(out) == 22050 and abs(dominant_freq(out, 22050) - 300) < 2


def _garbage(p):
    p.write_bytes(b"this is not audio at all" * 40)
    return p


def _nan_wave(p, bad):
    w = sine(dur=0.6)
    w[100] = bad
    return write(p, w, subtype="FLOAT")


def _cut(p, fmt="WAV", keep=0.6):
    write(p, sine(dur=1.0), subtype="PCM_16") if fmt == "WAV" else sf.write(str(p), sine(dur=1.0), 16000,
                                                                             format=fmt, subtype="PCM_16")
    data = p.read_bytes()
    p.write_bytes(data[:int(len(data) * keep)])
    return p


BAD = {
    "missing": (lambda p: p, {}, "file not found"),
    "zero_bytes": (lambda p: p.write_bytes(b"") or p, {}, "empty file (0 bytes)"),
    "truncated_wav": (_cut, {}, "truncated (the header promises 16000 frames"),
    "truncated_aiff": (lambda p: _cut(p, "AIFF"), {}, "truncated (the header promises 16000 frames"),
    "unreadable": (_garbage, {}, "unreadable"),
    "empty": (lambda p: write(p, np.zeros(0, np.float32)), {}, "empty"),
    "nan": (lambda p: _nan_wave(p, np.nan), {}, "NaN"),
    "inf": (lambda p: _nan_wave(p, np.inf), {}, "infinite"),
    "silent": (lambda p: write(p, np.zeros(16000, np.float32)), {}, "silent"),
    "too_short": (lambda p: write(p, sine(dur=0.1)), {}, "too short"),
    "too_long": (lambda p: write(p, sine(dur=2.0)), {"max_duration": 1.0}, "too long"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_raise_audio_error_naming_file(tmp_path, case):
    make, kw, reason = BAD[case]
    path = make(tmp_path / f"{case}.wav")
    with pytest.raises(AudioError) as info:
        load_audio(path, **kw)
    assert str(info.value).startswith(f"{path}: ")
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError) and info.value.path == str(path)


@pytest.mark.parametrize("case", ["truncated_wav", "truncated_aiff", "zero_bytes", "unreadable"])
def test_header_probe_reports_the_same_problems(tmp_path, case):
    make, _, reason = BAD[case]
    path = make(tmp_path / f"{case}.wav")
    with pytest.raises(AudioError, match=re.escape(reason)):
        audio_header(path)


def test_libsndfile_alone_reads_a_truncated_wav_as_a_shorter_file(tmp_path):
    path = _cut(tmp_path / "cut.wav", keep=0.5)
    assert 0 < sf.info(str(path)).frames < 16000  # what this module guards against
    assert truncation(path).startswith("truncated (the header promises 16000 frames, the file holds 79")


def test_intact_and_stream_written_files_are_not_truncated(tmp_path):
    for fmt, subtype in (("WAV", "PCM_16"), ("WAV", "FLOAT"), ("AIFF", "PCM_24"), ("RF64", "PCM_16")):
        path = tmp_path / f"ok_{fmt}_{subtype}.wav"
        sf.write(str(path), np.stack([sine(dur=0.5)] * 2, axis=1), 16000, format=fmt, subtype=subtype)
        assert truncation(path) is None and audio_header(path) == (8000, 16000)
    stream = bytearray((tmp_path / "ok_WAV_PCM_16.wav").read_bytes())
    stream[40:44] = b"\xff\xff\xff\xff"  # data size unknown when the header was written (a pipe)
    (tmp_path / "stream.wav").write_bytes(bytes(stream))
    assert truncation(tmp_path / "stream.wav") is None
    (tmp_path / "notes.txt").write_text("not audio")
    assert truncation(tmp_path / "notes.txt") is None


def test_header_gives_frames_and_rate(tmp_path):
    assert audio_header(write(tmp_path / "a.wav", sine(dur=0.5, sr=22050), sr=22050)) == (11025, 22050)
    with pytest.raises(AudioError, match="empty audio"):
        audio_header(write(tmp_path / "e.wav", np.zeros(0, np.float32)))


def test_quiet_but_not_silent_is_accepted(tmp_path):
    out = load_audio(write(tmp_path / "q.wav", sine(amp=1e-3), subtype="FLOAT"))
    assert 0.9e-3 < np.abs(out).max() < 1.1e-3


def test_min_duration_is_configurable(tmp_path):
    path = write(tmp_path / "s.wav", sine(dur=0.1))
    assert len(load_audio(path, min_duration=0.05)) == 1600


def test_non_string_path_is_an_audio_error():
    with pytest.raises(AudioError, match="path must be a string"):
        load_audio(float("nan"))


def test_audio_error_survives_pickling():  # workers send it back to the parent process
    err = pickle.loads(pickle.dumps(AudioError("/x.wav", "silent")))
    assert isinstance(err, AudioError) and str(err) == "/x.wav: silent" and err.reason == "silent"


def _manifest(tmp_path):
    rows = []
    for i in range(3):
        rows.append({"utt_id": f"ok{i}", "path": str(write(tmp_path / f"ok{i}.wav", sine(200 + 50 * i)))})
    rows.append({"utt_id": "sil", "path": str(write(tmp_path / "sil.wav", np.zeros(8000, np.float32)))})
    rows.append({"utt_id": "gone", "path": str(tmp_path / "gone.wav")})
    return pd.DataFrame(rows)


def test_scan_audio_skips_reports_and_drops_bad_rows_by_default(tmp_path):
    manifest = _manifest(tmp_path)
    manifest.attrs["bad_files"] = [{"path": "/x/misnamed.wav", "reason": "file name", "step": "loader"}]
    with pytest.warns(UserWarning, match="skipped 2 of 5"):
        ok, report = scan_audio(manifest)
    assert list(ok["utt_id"]) == ["ok0", "ok1", "ok2"]
    assert list(report.columns) == ["utt_id", "path", "reason"]
    reasons = dict(zip(report["utt_id"], report["reason"]))
    assert reasons["sil"].startswith("silent") and reasons["gone"] == "file not found"
    assert [(r["step"], r["reason"][:6]) for r in ok.attrs["bad_files"]] == [
        ("loader", "file n"), ("audio", "silent"), ("audio", "file n")]


def test_scan_audio_raise_names_first_bad_file(tmp_path):
    manifest = _manifest(tmp_path)
    with pytest.raises(AudioError, match="sil.wav: silent"):
        scan_audio(manifest, on_error="raise")


def test_scan_audio_passes_load_options(tmp_path):
    manifest = _manifest(tmp_path).iloc[:3]
    ok, report = scan_audio(manifest, on_error="skip", max_duration=2.0)
    assert len(ok) == 3 and report.empty
    with pytest.raises(ValueError, match="on_error"):
        scan_audio(manifest, on_error="ignore")
