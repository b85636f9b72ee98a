"""Reading and validating audio: one front end for every corpus and view.

``load_audio`` returns float32 mono at 16 kHz or raises ``AudioError`` naming the file and the problem
(unreadable, truncated, empty, NaN/inf samples, too short, too long, silent). ``audio_header`` reads only the
header (frames, rate) with the same checks that need no samples. ``scan_audio`` checks a whole manifest and
by default reports and drops the bad rows (``on_error="raise"`` raises on the first bad file).

Truncation: libsndfile reads a WAV or AIFF file whose data were cut off as a shorter file, without an error.
``truncation`` compares the header's promise (the ``data``/``SSND`` chunk size, the ``COMM`` frame count)
with the bytes the file holds; compressed formats are checked by comparing decoded and declared frames.
"""

from __future__ import annotations

import os
import struct
import warnings
from math import gcd
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import resample_poly

# Suffixes libsndfile reads (a file it cannot open under one of them is broken, not in another format)
SOUNDFILE_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".aifc",
                                ".au", ".snd", ".caf", ".w64", ".rf64"})
SILENCE_PEAK = 1e-4  # peak amplitude (-80 dBFS) below which a file counts as silent
_SHOWN = 5  # files quoted in a warning


class AudioError(ValueError):
    """An audio file cannot be used; the message is ``"<path>: <reason>"``."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):  # rebuilt from (path, reason) when sent back from a worker process
        return (type(self), (self.path, self.reason))


_UNKNOWN_SIZE = 0xFFFFFFFF  # data size of a WAV written to a stream (length unknown when the header was written)
_AIFC_PCM = {b"NONE", b"sowt", b"twos", b"raw ", b"in24", b"in32", b"fl32", b"FL32", b"fl64", b"FL64"}
_MAX_CHUNKS = 4096
_ESTIMATED_LENGTH = {"MPEG", "MP3"}  # libsndfile formats whose declared frame count may be an estimate


def _chunks(f, size: int, start: int, big: bool):
    """Yield ``(id, body_offset, declared_size)`` of the chunks from ``start``; stops at the end of the file."""
    fmt = ">4sI" if big else "<4sI"
    pos = start
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > size:
            return
        f.seek(pos)
        cid, csize = struct.unpack(fmt, f.read(8))
        yield cid, pos + 8, csize
        pos += 8 + csize + (csize & 1)


def _wave_frames(f, size: int, kind: bytes) -> tuple[int, int] | None:
    """``(promised, held)`` frames of a RIFF/RIFX/RF64 WAVE file's data chunk, or None when not checkable."""
    block = ds64 = None
    for cid, body, csize in _chunks(f, size, 12, big=kind == b"RIFX"):
        if cid == b"fmt " and csize >= 14:
            f.seek(body + 12)
            block = struct.unpack(">H" if kind == b"RIFX" else "<H", f.read(2))[0]
        elif cid == b"ds64" and csize >= 16:
            f.seek(body + 8)
            ds64 = struct.unpack("<Q", f.read(8))[0]
        elif cid == b"data":
            if kind == b"RF64" and csize == _UNKNOWN_SIZE:
                csize = ds64
            if not block or not csize or csize == _UNKNOWN_SIZE:
                return None
            return csize // block, min(csize, size - body) // block
    return None


def _aiff_frames(f, size: int, kind: bytes) -> tuple[int, int] | None:
    """``(promised, held)`` frames of an AIFF/AIFC file (``COMM`` frame count vs ``SSND`` bytes), or None."""
    comm = ssnd = None
    for cid, body, csize in _chunks(f, size, 12, big=True):
        f.seek(body)
        if cid == b"COMM" and csize >= 18:
            channels, frames, bits = struct.unpack(">hIh", f.read(8))
            f.seek(body + 18)
            compression = f.read(4) if kind == b"AIFC" else b"NONE"
            comm = (channels * ((bits + 7) // 8), frames, compression)
        elif cid == b"SSND" and csize >= 8:
            offset = struct.unpack(">I", f.read(4))[0]
            ssnd = (body + 8 + offset, csize - 8 - offset)
    if comm is None or ssnd is None or comm[0] <= 0 or comm[2] not in _AIFC_PCM:
        return None
    frame_bytes, frames, _ = comm
    start, length = ssnd
    return frames, max(0, min(length, size - start)) // frame_bytes


def truncation(path) -> str | None:
    """Why ``path`` is truncated (its WAV/AIFF header promises more frames than the file holds), else None.

    Reads only the chunk headers. Files of other formats, or whose header cannot be parsed, give None
    (they are left to the decoder). A stream-written WAV (data size 0 or 0xFFFFFFFF) is not checked.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(12)
            if len(head) < 12:
                return None
            if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
                found = _wave_frames(f, size, head[:4])
            elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                found = _aiff_frames(f, size, head[8:12])
            else:
                return None
    except (OSError, struct.error):
        return None
    if found is None or found[1] >= found[0]:
        return None
    return f"truncated (the header promises {found[0]} frames, the file holds {found[1]})"


def _read_torchaudio(path: Path) -> tuple[np.ndarray, int]:
    """Formats libsndfile cannot read (m4a, ...) through torchaudio (needs its torchcodec backend)."""
    import torchaudio

    wave, sr = torchaudio.load(str(path))  # [channels, n]
    return wave.numpy().T.astype(np.float32, copy=False), int(sr)


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    """Samples and rate with libsndfile; ``AudioError`` when fewer frames decode than the header declares."""
    with sf.SoundFile(str(path)) as f:
        declared, rate, exact = f.frames, f.samplerate, f.format not in _ESTIMATED_LENGTH
        wave = f.read(dtype="float32", always_2d=True)
    if exact and declared > 0 and len(wave) < declared:
        raise AudioError(path, f"truncated (the header declares {declared} frames, {len(wave)} could be decoded)")
    return wave, int(rate)


def _read(path: Path) -> tuple[np.ndarray, int]:
    """Samples ``[n, channels]`` float32 and the file's rate; ``AudioError`` when no reader can open it or the
    file is truncated."""
    _check_file(path)
    try:
        return _read_soundfile(path)
    except AudioError:
        raise
    except Exception as sf_err:  # libsndfile raises several types for unknown/corrupt files
        return _fallback(path, sf_err, _read_torchaudio)


def _check_file(path: Path) -> None:
    """``AudioError`` for a missing, zero-byte or truncated file."""
    if not path.is_file():
        raise AudioError(path, "file not found")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    cut = truncation(path)
    if cut:
        raise AudioError(path, cut)


def _fallback(path: Path, sf_err: Exception, reader):
    """``reader(path)`` for formats libsndfile does not know (m4a, ...); otherwise, or when that fails too,
    ``AudioError`` "unreadable audio" with the readers' own words."""
    why = str(sf_err).replace(f"Error opening {str(path)!r}: ", "").strip() or type(sf_err).__name__
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        raise AudioError(path, f"unreadable audio ({why})") from None
    try:
        return reader(path)
    except Exception as ta_err:
        raise AudioError(path, f"unreadable audio (soundfile: {why}; torchaudio: {_short(ta_err)})") from None


def _short(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def audio_header(path) -> tuple[int, int]:
    """``(frames, samplerate)`` from the header of ``path``, without decoding the samples.

    Raises ``AudioError`` when the file is missing, empty, unreadable, has no frames, or is truncated.
    Formats that libsndfile does not know are decoded with torchaudio to count their frames.
    """
    path = Path(path)
    _check_file(path)
    try:
        info = sf.info(str(path))
        frames, rate = int(info.frames), int(info.samplerate)
    except Exception as sf_err:  # LibsndfileError and others for unknown/corrupt files
        wave, rate = _fallback(path, sf_err, _read_torchaudio)
        frames = len(wave)
    if frames <= 0:
        raise AudioError(path, "empty audio (0 frames)")
    return frames, rate


def _resample(wave: np.ndarray, orig_sr: int, sr: int) -> np.ndarray:
    if orig_sr == sr:
        return wave
    g = gcd(orig_sr, sr)
    return resample_poly(wave, sr // g, orig_sr // g).astype(np.float32, copy=False)


def load_audio(path, *, sr: int = 16000, min_duration: float = 0.25, max_duration: float | None = None,
               silence_peak: float = SILENCE_PEAK) -> np.ndarray:
    """Read ``path`` as float32 mono ``[n]`` at ``sr`` Hz.

    WAV/FLAC/OGG/MP3 are read with soundfile, other formats with torchaudio. Channels are averaged and
    the signal resampled (polyphase filter) to ``sr``. Raises ``AudioError`` ("<path>: <reason>") when the
    file is missing, empty or unreadable, is truncated (see ``truncation``), has no samples, has NaN/inf
    samples, lasts less than ``min_duration`` or more than ``max_duration`` seconds, or is silent (peak
    below ``silence_peak``).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise AudioError(path, f"path must be a string, got {type(path).__name__}")
    path = Path(path)
    wave, orig_sr = _read(path)
    if wave.size == 0:
        raise AudioError(path, "empty audio (0 samples)")
    if not np.isfinite(wave).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    duration = len(wave) / orig_sr
    if duration < min_duration:
        raise AudioError(path, f"too short ({duration:.3f} s < min_duration {min_duration} s)")
    if max_duration is not None and duration > max_duration:
        raise AudioError(path, f"too long ({duration:.1f} s > max_duration {max_duration} s)")
    mono = wave.mean(axis=1) if wave.shape[1] > 1 else wave[:, 0]
    peak = float(np.abs(mono).max())
    if peak < silence_peak:
        raise AudioError(path, f"silent (peak amplitude {peak:.2e} < {silence_peak:.0e})")
    return np.ascontiguousarray(_resample(mono, orig_sr, sr), dtype=np.float32)


def _summary(report: pd.DataFrame) -> str:
    shown = "; ".join(f"{r.path}: {r.reason}" for r in report.head(_SHOWN).itertuples())
    more = f" ... ({len(report)} in all)" if len(report) > _SHOWN else ""
    return shown + more


def scan_audio(manifest: pd.DataFrame, *, on_error: str = "skip", **load_kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check that every file of ``manifest`` loads with ``load_audio(path, **load_kw)``.

    Returns ``(ok_manifest, report)`` where ``report`` has columns ``utt_id, path, reason`` (one row per
    bad file). ``"skip"`` (the default) drops the bad rows from ``ok_manifest``, warns with a summary and
    adds them to ``ok_manifest.attrs["bad_files"]`` (step ``"audio"``); ``on_error="raise"`` raises the
    first ``AudioError``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"scan_audio: on_error must be 'raise' or 'skip', got {on_error!r}")
    bad = []
    for utt_id, path in zip(manifest["utt_id"], manifest["path"]):
        try:
            load_audio(path, **load_kw)
        except AudioError as err:
            if on_error == "raise":
                raise
            bad.append({"utt_id": utt_id, "path": str(path), "reason": err.reason})
    report = pd.DataFrame(bad, columns=["utt_id", "path", "reason"])
    ok = manifest[~manifest["utt_id"].isin(report["utt_id"])].copy()
    ok.attrs["bad_files"] = list(manifest.attrs.get("bad_files", [])) + [
        {"path": r["path"], "reason": r["reason"], "step": "audio"} for r in bad]
    if len(report):
        warnings.warn(f"scan_audio: skipped {len(report)} of {len(manifest)} files: {_summary(report)}",
                      stacklevel=2)
    return ok, report
