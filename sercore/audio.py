"""Reading and validating audio: one front end for every corpus and view.

``load_audio`` returns float32 mono at 16 kHz or raises ``AudioError`` naming the file and the problem
(unreadable, empty, NaN/inf samples, too short, too long, silent). ``scan_audio`` checks a whole manifest
and either raises on the first bad file or reports and drops the bad rows.
"""

from __future__ import annotations

import os
import warnings
from math import gcd
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import resample_poly

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


def _read_torchaudio(path: Path) -> tuple[np.ndarray, int]:
    """Formats libsndfile cannot read (m4a, ...) through torchaudio (needs its torchcodec backend)."""
    import torchaudio

    wave, sr = torchaudio.load(str(path))  # [channels, n]
    return wave.numpy().T.astype(np.float32, copy=False), int(sr)


def _read(path: Path) -> tuple[np.ndarray, int]:
    """Samples ``[n, channels]`` float32 and the file's rate; ``AudioError`` when no reader can open it."""
    if not path.is_file():
        raise AudioError(path, "file not found")
    try:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return wave, int(rate)
    except Exception as sf_err:  # libsndfile raises several types for unknown/corrupt files
        try:
            return _read_torchaudio(path)
        except Exception as ta_err:
            raise AudioError(path, f"unreadable audio (soundfile: {sf_err}; torchaudio: {ta_err})") from None


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
    file is missing or unreadable, has no samples, has NaN/inf samples, lasts less than ``min_duration`` or
    more than ``max_duration`` seconds, or is silent (peak below ``silence_peak``).
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


def scan_audio(manifest: pd.DataFrame, *, on_error: str = "raise", **load_kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check that every file of ``manifest`` loads with ``load_audio(path, **load_kw)``.

    Returns ``(ok_manifest, report)`` where ``report`` has columns ``utt_id, path, reason`` (one row per
    bad file). ``on_error="raise"`` raises the first ``AudioError``; ``"skip"`` drops the bad rows from
    ``ok_manifest`` and warns with a summary.
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
    ok = manifest[~manifest["utt_id"].isin(report["utt_id"])]
    if len(report):
        warnings.warn(f"scan_audio: skipped {len(report)} of {len(manifest)} files: {_summary(report)}",
                      stacklevel=2)
    return ok, report
