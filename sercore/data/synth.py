"""The embedded default corpus: a synthetic acted-emotion corpus spoken by eSpeak NG, generated on first use.

Shaped like IEMOCAP: 5 sessions × 2 speakers (voice variants differing in pitch, formants, rate, accent),
the four target emotions ``neu hap sad ang`` plus ``fea dis sur bor`` for unlabelled/out-of-distribution
pre-training, original neutral sentences (``sentences.py``). Each emotion is a prosody/voice-quality profile
(``EMOTIONS``), each speaker a voice (``SPEAKERS``); every utterance draws an intensity, prosody jitter, a
level change and additive noise at a random SNR, so that emotions overlap. Everything is drawn from one seed;
the same seed gives byte-identical WAV files. The corpus is written as 16 kHz mono 16-bit WAV files plus
``manifest.csv``, so it goes through exactly the same path as a real corpus.

Calibration (seed 0; eGeMAPSv02 functionals, StandardScaler + LogisticRegression; ``tests/test_calibration.py``):
4-class leave-one-session-out UAR 0.49 (tiny), 0.63 (small), 0.67 (default); speaker identification over the
10 speakers (5-fold, target emotions) 0.56 / 0.83 / 0.89 from eGeMAPS and 0.79 / 0.90 / 0.93 from Resemblyzer
d-vectors (chance 0.10).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy import fft as sp_fft
from scipy import signal

from sercore.core.config import cache_dir, usable_cores
from sercore.data import espeak_server
from sercore.data.manifest import ManifestError, read_manifest_csv, validate_manifest, write_manifest_csv
from sercore.data.sentences import SENTENCES

GENERATOR_VERSION = "1"  # bump when the tables or the rendering change: cached corpora are then regenerated
SAMPLE_RATE = 16000
SIZES = {"tiny": 3, "small": 10, "default": 25}  # sentences per speaker × emotion


@dataclass(frozen=True)
class Speaker:
    """One voice: eSpeak language voice (accent), F0 floor and top (Hz), rate (words/min), vocal-tract factor
    (all formants scaled by resampling), spectral tilt offset, expressiveness (how strongly this speaker acts
    the emotion profiles) and timbre: eSpeak NG voice-variant lines (formant freq/height/width in %, breath,
    roughness, flutter, voicing), separated by ``;``."""

    name: str
    session: str
    gender: str
    voice: str
    f0: float
    f0_top: float
    rate: float
    vtl: float
    tilt: float
    expressiveness: float
    timbre: str


SPEAKERS = (
    Speaker("S1F", "Session1", "F", "en-us", 190, 295, 168, 1.00, 0.00, 1.00,
            "formant 1 118 80 160; formant 2 104 70 150; formant 3 114 70 150; formant 4 110 80 150; "
            "formant 5 110 90 150; flutter 6; roughness 2"),
    Speaker("S1M", "Session1", "M", "en-us", 102, 150, 160, 1.00, -0.05, 0.85,
            "formant 1 96 100 100; formant 2 97 95 100; formant 3 97 95 100; formant 4 96 85 100; "
            "formant 5 104 80 100; flutter 4; roughness 4; consonants 85 100"),
    Speaker("S2F", "Session2", "F", "en-gb-x-rp", 205, 320, 176, 1.03, 0.05, 0.90,
            "formant 1 121 75 150 -40; formant 2 133 70 150 -230; formant 3 124 80 150; formant 4 124 80 150; "
            "formant 5 124 80 150; breath 0 2 3 3 3 3 3 2; roughness 3"),
    Speaker("S2M", "Session2", "M", "en", 94, 145, 150, 0.97, 0.00, 1.10,
            "formant 1 91 85 125; formant 2 108 85 125; formant 3 104 90 120; formant 4 100 90 120; "
            "formant 5 100 90 120; flutter 3"),
    Speaker("S3F", "Session3", "F", "en-029", 178, 270, 182, 0.98, -0.05, 1.15,
            "formant 1 114 80 165 -20; formant 2 128 75 150 -180; formant 3 122 75 150; formant 4 124 80 150; "
            "formant 5 124 80 150; flutter 10"),
    Speaker("S3M", "Session3", "M", "en-gb-scotland", 115, 172, 165, 1.02, 0.08, 0.95,
            "formant 0 100 120 100; formant 1 100 90 85; formant 2 100 72 90; formant 3 100 62 90; "
            "formant 4 100 60 90; formant 5 78 50 90; voicing 140"),
    Speaker("S4F", "Session4", "F", "en-us-nyc", 196, 305, 172, 1.05, 0.02, 0.80,
            "formant 1 110 80 160; formant 2 111 70 150; formant 3 111 70 150; formant 4 114 80 200; "
            "formant 5 114 80 100; breath 0 4 6 6 6 6 0 10; voicing 80; consonants 140 140"),
    Speaker("S4M", "Session4", "M", "en-gb-x-gbclan", 88, 135, 155, 0.95, -0.08, 1.05,
            "formant 1 100 90 140; formant 2 100 70 140; formant 3 100 75 140; formant 4 100 80 140; "
            "formant 5 100 80 140; roughness 5"),
    Speaker("S5F", "Session5", "F", "en-gb-x-gbcwmd", 215, 330, 165, 1.01, 0.06, 1.10,
            "formant 1 108 80 160; formant 2 110 70 150; formant 3 108 70 150; formant 4 114 80 150; "
            "formant 5 114 80 150; roughness 3; breath 0 1 2 2 2 2 2 1"),
    Speaker("S5M", "Session5", "M", "en-us", 125, 185, 178, 0.99, 0.03, 0.90,
            "formant 1 90 85 130 40; formant 2 82 85 130 300; formant 3 104 85 130; formant 4 104 85 130; "
            "formant 5 104 85 130; intonation 2"),
)


@dataclass(frozen=True)
class Emotion:
    """An emotion's deviation from neutral at full intensity: pitch (semitones), pitch range (×), rate (×),
    loudness (dB), spectral tilt (pre-emphasis coefficient), formant shift (%), breath noise (ratio to speech
    RMS), tremolo depth, F0 wobble (semitones), extra pause between words (10 ms units)."""

    pitch: float = 0.0
    range: float = 1.0
    rate: float = 1.0
    loudness: float = 0.0
    tilt: float = 0.0
    formant: float = 0.0
    breath: float = 0.0
    tremolo: float = 0.0
    wobble: float = 0.0
    pause: float = 0.0


EMOTIONS = {
    "neu": Emotion(),
    "hap": Emotion(pitch=3.5, range=1.7, rate=1.06, loudness=2.5, tilt=0.05, formant=4.0, wobble=0.2),
    "sad": Emotion(pitch=-2.5, range=0.55, rate=0.80, loudness=-5.0, tilt=-0.30, formant=-3.0, breath=0.10,
                   wobble=0.3, pause=3.0),
    "ang": Emotion(pitch=1.5, range=1.15, rate=1.12, loudness=8.0, tilt=0.55, formant=3.0, wobble=0.1),
    "fea": Emotion(pitch=5.0, range=1.2, rate=1.20, loudness=1.0, tilt=0.10, formant=2.0, breath=0.08,
                   tremolo=0.25, wobble=0.6),
    "dis": Emotion(pitch=-1.5, range=1.2, rate=0.85, loudness=1.0, tilt=-0.10, formant=-2.0, breath=0.03,
                   wobble=0.2, pause=2.0),
    "sur": Emotion(pitch=5.0, range=1.9, rate=1.0, loudness=3.0, tilt=0.15, formant=3.0, wobble=0.2),
    "bor": Emotion(pitch=-2.0, range=0.4, rate=0.85, loudness=-3.0, tilt=-0.20, formant=-1.0, breath=0.05,
                   pause=2.0),
}

# Per-utterance variation: intensity range of an acted emotion, jitter of each prosody parameter, channel.
VARIATION = dict(intensity=(0.3, 1.0), pitch_sd=1.5, range_sd=0.25, rate_sd=0.07, loudness_sd=2.5, tilt_sd=0.12,
                 formant_sd=1.0, breath=0.02, wobble=0.15, level_db=(-4.0, 4.0), snr_db=(8.0, 30.0),
                 silence_s=(0.05, 0.3))


# ---------------------------------------------------------------- eSpeak NG driver (ctypes, synchronous mode)

# The synthesis runs in a server process (sercore/data/espeak_server.py): see there why.
_ENGINE = None  # this process's client of its eSpeak NG server


def _espeak_data_dir() -> Path:
    """A private eSpeak NG data folder: links to the wheel's data plus our own ``voices/!v`` for variants."""
    import espeakng_loader

    src = Path(espeakng_loader.get_data_path())
    owner = os.getuid() if hasattr(os, "getuid") else "user"  # /tmp is shared between users
    folder = Path(tempfile.gettempdir()) / f"sercore-espeak-ng-{owner}-{hashlib.sha1(bytes(src)).hexdigest()[:8]}"
    (folder / "voices" / "!v").mkdir(parents=True, exist_ok=True)
    for name in ("phondata", "phontab", "phonindex", "intonations", "en_dict", "lang"):
        if (folder / name).is_symlink() and not (folder / name).exists():  # its target was removed
            (folder / name).unlink()
        if not (folder / name).exists():
            try:
                os.symlink(src / name, folder / name)
            except FileExistsError:  # another process made it meanwhile
                pass
            except OSError:  # no symlinks (Windows without privilege): copy
                (shutil.copytree if (src / name).is_dir() else shutil.copy)(src / name, folder / name)
    return folder


class _Espeak:
    """Client of an eSpeak NG server process driven through the C API (``espeak_Initialize`` in synchronous
    mode, a synthesis callback collecting the samples, ``espeak_SetVoiceByName`` with a per-utterance voice
    variant file, ``espeak_SetParameter``, ``espeak_Synth``)."""

    def __init__(self):
        import espeakng_loader

        self.pid, self._count = os.getpid(), 0
        self.data_dir = _espeak_data_dir()
        cmd = [sys.executable, "-S", espeak_server.__file__, espeakng_loader.get_library_path(), str(self.data_dir)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        kind, data = self._reply()
        self.sample_rate = struct.unpack("<i", data)[0]
        if kind != b"R" or self.sample_rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise with data folder {self.data_dir}")

    def _reply(self) -> tuple[bytes, bytes]:
        head = self.proc.stdout.read(5)
        if len(head) < 5:
            raise RuntimeError(f"the eSpeak NG process ended unexpectedly (exit code {self.proc.poll()})")
        return head[:1], self.proc.stdout.read(struct.unpack("<i", head[1:])[0])

    def say(self, text: str, voice: str, variant: str, *, rate: float, wordgap: float, seed: int) -> np.ndarray:
        """Speak ``text`` with language ``voice`` and the variant-file text ``variant``; int16 at ``sample_rate``.
        ``seed`` seeds eSpeak NG's noise generator (breath)."""
        self._count += 1
        name = f"sc{self.pid}_{self._count}"
        path = self.data_dir / "voices" / "!v" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"language variant\nname {name}\n{variant}")
        request = struct.pack("<iiq", int(np.clip(rate, 80, 450)), int(max(wordgap, 0)), int(seed))
        request += f"{voice}+{name}".encode() + b"\0" + text.encode("utf-8")
        try:
            self.proc.stdin.write(struct.pack("<i", len(request)) + request)
            self.proc.stdin.flush()
            kind, data = self._reply()
        finally:
            path.unlink()
        if kind != b"A":
            raise RuntimeError(f"eSpeak NG could not say {text!r} with voice {voice!r}: "
                               f"{data.decode(errors='replace')}")
        return np.frombuffer(data, dtype=np.int16)


def _engine() -> _Espeak:
    global _ENGINE
    if _ENGINE is None or _ENGINE.pid != os.getpid():  # a forked worker starts its own server
        _ENGINE = _Espeak()
    return _ENGINE


# ---------------------------------------------------------------- one utterance: plan → waveform

def _draw_params(rng: np.random.Generator, speaker: Speaker, emotion: str) -> dict:
    """Prosody and channel settings of one utterance: speaker voice + intensity × emotion profile + jitter."""
    e, v = EMOTIONS[emotion], VARIATION
    k = speaker.expressiveness * (rng.uniform(*v["intensity"]) if emotion != "neu" else 0.0)
    return dict(
        pitch=k * e.pitch + rng.normal(0, v["pitch_sd"]),
        range=float(np.exp(k * np.log(e.range) + rng.normal(0, v["range_sd"]))),
        rate=float(np.exp(k * np.log(e.rate) + rng.normal(0, v["rate_sd"]))),
        loudness=k * e.loudness + rng.normal(0, v["loudness_sd"]) + rng.uniform(*v["level_db"]),
        tilt=speaker.tilt + k * e.tilt + rng.normal(0, v["tilt_sd"]),
        formant=k * e.formant + rng.normal(0, v["formant_sd"]),
        breath=v["breath"] + k * e.breath,
        tremolo=k * e.tremolo,
        wobble=v["wobble"] + k * e.wobble,
        pause=k * e.pause,
        snr=rng.uniform(*v["snr_db"]),
        noise_colour=rng.uniform(0.0, 2.0),
        silence=tuple(rng.uniform(*v["silence_s"], size=2)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def _variant_text(speaker: Speaker, p: dict, vtl: float) -> str:
    """eSpeak NG variant file body: the speaker's timbre and this utterance's F0 floor/top, divided by the
    vocal-tract factor ``vtl`` that the resampling multiplies back."""
    base = speaker.f0 * 2 ** (p["pitch"] / 12)
    top = base + (speaker.f0_top - speaker.f0) * p["range"] * 2 ** (p["pitch"] / 12)
    lines = [f"gender {'female' if speaker.gender == 'F' else 'male'}",
             f"pitch {base / vtl:.0f} {max(top, base + 2) / vtl:.0f}"]
    return "\n".join(lines + [line.strip() for line in speaker.timbre.split(";")]) + "\n"


def _smooth_noise(rng: np.random.Generator, n: int, sr: int, rate_hz: float) -> np.ndarray:
    """Random curve with unit spread, changing about ``rate_hz`` times a second."""
    knots = rng.normal(size=int(n / sr * rate_hz) + 2)
    return np.interp(np.arange(n) / sr * rate_hz, np.arange(len(knots)), knots)


def _voice_quality(x: np.ndarray, sr: int, p: dict, rng: np.random.Generator) -> np.ndarray:
    """F0 wobble (time warp), tremolo, breath noise following the speech envelope, spectral tilt."""
    n = len(x)
    warp = 2 ** (p["wobble"] * _smooth_noise(rng, n, sr, 8.0) / 12)
    x = np.interp(np.cumsum(warp) - warp[0], np.arange(n), x)
    t = np.arange(n) / sr
    x = x * (1 + p["tremolo"] * np.sin(2 * np.pi * rng.uniform(4, 7) * t + rng.uniform(0, 2 * np.pi)))
    envelope = signal.sosfiltfilt(_butter(2, 30, "lowpass", sr), np.abs(x))
    hiss = signal.sosfilt(_butter(2, (1000, 6000), "bandpass", sr), rng.normal(size=n))
    breath = hiss * np.clip(envelope, 0, None)
    x = x + p["breath"] * breath * _rms(x) / max(_rms(breath), 1e-9)
    a = float(np.clip(p["tilt"], -0.8, 0.9))  # > 0: brighter (pre-emphasis), < 0: darker
    return signal.lfilter([1.0, -a], [1.0], x)


@lru_cache(maxsize=None)
def _butter(order: int, cutoff, kind: str, sr: int) -> np.ndarray:
    return signal.butter(order, cutoff, kind, fs=sr, output="sos")


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def _coloured_noise(rng: np.random.Generator, n: int, colour: float) -> np.ndarray:
    """Noise with power spectrum ∝ 1/f^colour (0 white, 1 pink, 2 brown), unit RMS."""
    m = sp_fft.next_fast_len(n, real=True)
    spec = sp_fft.rfft(rng.normal(size=m))
    spec *= np.maximum(np.arange(len(spec), dtype=float), 1.0) ** (-colour / 2)
    noise = sp_fft.irfft(spec, m)[:n]
    return noise / max(_rms(noise), 1e-12)


def _trim(x: np.ndarray, threshold: float = 1e-3) -> np.ndarray:
    loud = np.flatnonzero(np.abs(x) > threshold * np.max(np.abs(x)))
    return x[loud[0]: loud[-1] + 1] if len(loud) else x


def render(text: str, speaker: Speaker, p: dict) -> np.ndarray:
    """Synthesize one utterance with the settings ``p`` (from ``_draw_params``): int16 at 16 kHz."""
    eng = _engine()
    vtl = speaker.vtl * (1 + p["formant"] / 100)
    raw = eng.say(text, speaker.voice, _variant_text(speaker, p, vtl), rate=speaker.rate * p["rate"] / vtl,
                  wordgap=p["pause"], seed=p["seed"]).astype(float) / 32768
    if not np.any(raw):
        raise RuntimeError(f"eSpeak NG returned silence for {text!r} with voice {speaker.voice!r}")
    rng = np.random.default_rng(p["seed"])
    ratio = Fraction(SAMPLE_RATE / (eng.sample_rate * vtl)).limit_denominator(200)
    x = signal.resample_poly(_trim(raw), ratio.numerator, ratio.denominator)
    x = _voice_quality(x, SAMPLE_RATE, p, rng)
    lead, tail = (int(s * SAMPLE_RATE) for s in p["silence"])
    x = np.concatenate([np.zeros(lead), x, np.zeros(tail)])
    x *= 10 ** ((-26 + p["loudness"]) / 20) / _rms(x[lead: len(x) - tail])
    x += _coloured_noise(rng, len(x), p["noise_colour"]) * _rms(x[lead: len(x) - tail]) * 10 ** (-p["snr"] / 20)
    peak = np.max(np.abs(x))
    if peak > 0.99:
        x *= 0.99 / peak
    return np.round(x * 32767).astype(np.int16)


# ---------------------------------------------------------------- the corpus: plan, render in parallel, write

_SPEAKERS = {s.name: s for s in SPEAKERS}


def plan_corpus(size: str = "default", seed: int = 0) -> list[dict]:
    """Every utterance of the corpus with its text and drawn settings, deterministically from ``seed``.

    Each speaker × emotion cell reads ``SIZES[size]`` distinct sentences drawn from the pool, so the words
    carry no cue to the emotion.
    """
    if size not in SIZES:
        raise ValueError(f"unknown synthetic corpus size {size!r}; choose one of {sorted(SIZES)}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    items = []
    for speaker in SPEAKERS:
        for emotion in EMOTIONS:
            for k in sorted(rng.choice(len(SENTENCES), SIZES[size], replace=False)):
                text_id = f"t{k + 1:02d}"
                items.append(dict(utt_id=f"{speaker.name}_{emotion}_{text_id}", speaker=speaker.name,
                                  emotion=emotion, text_id=text_id, text=SENTENCES[k],
                                  params=_draw_params(rng, speaker, emotion)))
    return items


def _render_row(item: dict, folder: str) -> dict:
    speaker = _SPEAKERS[item["speaker"]]
    audio = render(item["text"], speaker, item["params"])
    path = Path(folder) / speaker.session / speaker.name / f"{item['utt_id']}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
    return dict(utt_id=item["utt_id"], path=str(path), speaker=speaker.name, emotion=item["emotion"],
                dataset="synthetic", session=speaker.session, duration=len(audio) / SAMPLE_RATE,
                gender=speaker.gender, text_id=item["text_id"])


def _default_workers() -> int:
    return max(1, min(usable_cores(), 8))


def _render_all(items: list[dict], folder: Path, workers: int | None) -> list[dict]:
    workers = _default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1 or len(items) < 40:
        return [_render_row(item, str(folder)) for item in items]
    from sercore.engine import die_with_parent, parent_pid, start_method

    method = start_method()
    chunk = max(1, len(items) // (workers * 8))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method), initializer=die_with_parent,
                             initargs=(parent_pid(method),)) as pool:
        return list(pool.map(_render_row, items, [str(folder)] * len(items), chunksize=chunk))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours, or a platform without signal 0
        pass
    return True


def _remove_leftovers(root: Path) -> None:
    """Delete temp/old folders of ``root`` left by generations that died (their process no longer runs)."""
    for path in root.parent.glob(f".{root.name}.*-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)


def _corpus_info(size: str, seed: int, n: int) -> dict:
    return dict(generator_version=GENERATOR_VERSION, size=size, seed=int(seed), n_utterances=n,
                sample_rate=SAMPLE_RATE, emotions=list(EMOTIONS), speakers=[asdict(s) for s in SPEAKERS],
                emotion_profiles={k: asdict(v) for k, v in EMOTIONS.items()}, variation=VARIATION)


def generate_corpus(root, *, size: str = "default", seed: int = 0, workers: int | None = None) -> pd.DataFrame:
    """Generate the synthetic corpus into the folder ``root`` and return its manifest.

    Works in a temporary sibling folder and renames it to ``root`` only when every file and the manifest
    are written, so a half-finished corpus is never taken as done; an existing ``root`` is replaced.
    ``workers`` processes render the utterances (default: the available cores, at most 8).
    """
    root = Path(root).absolute()
    items = plan_corpus(size, seed)
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(root)
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    tmp.mkdir()
    try:
        manifest = pd.DataFrame(_render_all(items, tmp, workers))
        write_manifest_csv(validate_manifest(manifest, source=str(tmp)), tmp / "manifest.csv")
        (tmp / "corpus.json").write_text(json.dumps(_corpus_info(size, seed, len(items)), indent=1))
        if root.exists():
            old = root.with_name(f".{root.name}.old-{os.getpid()}")
            os.replace(root, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, root)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_manifest_csv(root / "manifest.csv")


def corpus_path(root=None, *, size: str = "default", seed: int = 0) -> Path:
    """Folder of the corpus of this size, seed and generator version:
    ``<root>/synthetic-<size>-seed<seed>-v<GENERATOR_VERSION>``, root defaulting to ``cache_dir()/corpora``."""
    root = Path(root) if root is not None else cache_dir() / "corpora"
    return root / f"synthetic-{size}-seed{int(seed)}-v{GENERATOR_VERSION}"


def _is_complete(folder: Path, size: str, seed: int) -> bool:
    try:
        info = json.loads((folder / "corpus.json").read_text())
    except (OSError, ValueError):
        return False
    made = (info.get("generator_version"), info.get("size"), info.get("seed"))
    return (folder / "manifest.csv").is_file() and made == (GENERATOR_VERSION, size, int(seed))


def load_default_corpus(root=None, *, size: str = "default", seed: int = 0, workers: int | None = None) -> pd.DataFrame:
    """The synthetic default corpus as a manifest (``dataset="synthetic"``), generated on first use.

    The corpus lives in ``corpus_path(root, size=size, seed=seed)``; it is generated there when missing,
    incomplete or made by an older generator version, and reused otherwise. Sizes: ``tiny`` (tests,
    3 sentences per speaker × emotion, 240 utterances), ``small`` (800), ``default`` (2000).
    """
    if size not in SIZES:
        raise ValueError(f"unknown synthetic corpus size {size!r}; choose one of {sorted(SIZES)}")
    folder = corpus_path(root, size=size, seed=seed)
    if _is_complete(folder, size, seed):
        try:
            return read_manifest_csv(folder / "manifest.csv")
        except ManifestError as exc:
            warnings.warn(f"synthetic corpus {folder} is damaged ({exc}); generating it again", stacklevel=2)
    return generate_corpus(folder, size=size, seed=seed, workers=workers)
