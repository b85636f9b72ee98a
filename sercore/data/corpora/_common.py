"""Helpers every corpus loader shares: root checks, file listing, header probing, the final manifest.

A loader walks the official release layout, turns each usable file into a row dict and reports each file it
cannot use to a :class:`~sercore.data.registry.BadFiles` collector (misnamed, unknown label); :func:`finish`
then builds and validates the manifest, probes every file's header (duration; unreadable or empty files go
to the collector too) and attaches the collected records as ``manifest.attrs["bad_files"]``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import soundfile as sf

from ..manifest import ManifestError, make_manifest, validate_manifest
from ..registry import BadFiles


def corpus_root(root, name: str, layout: str) -> Path:
    """``root`` as a Path; a ``ManifestError`` naming the expected layout when it is missing or not a folder."""
    if root is None:
        raise ManifestError(f"{name}: a data root is required, the folder holding {layout}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ManifestError(f"{name}: root {root} is not a folder; expected {layout}")
    return root


def audio_files(folder: Path, suffixes=(".wav",)) -> list[Path]:
    """Audio files directly in ``folder`` (suffix compared case-insensitively), hidden files left out, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes
                  and not p.name.startswith(".")) if folder.is_dir() else []


def natural_key(text: str) -> list:
    """Sort key that orders ``Session2`` before ``Session10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def probe(df: pd.DataFrame, bad: BadFiles) -> pd.DataFrame:
    """Read each file's header with soundfile: fill missing durations; unreadable files go to ``bad``."""
    durations, keep = [], []
    for path in df["path"]:
        try:
            info = sf.info(path)
            if info.frames <= 0:
                raise RuntimeError("no audio frames")
            durations.append(info.frames / info.samplerate)
            keep.append(True)
        except (RuntimeError, sf.SoundFileError) as exc:  # LibsndfileError subclasses RuntimeError
            bad.add(path, f"unreadable audio ({str(exc).strip() or type(exc).__name__})")
            durations.append(float("nan"))
            keep.append(False)
    df = df.copy()
    df["duration"] = pd.to_numeric(df["duration"], errors="coerce").fillna(pd.Series(durations, index=df.index))
    return df[keep].reset_index(drop=True)


def finish(rows: list[dict], source: str, layout: str, bad: BadFiles, *, check_audio: bool = True) -> pd.DataFrame:
    """Validated manifest of ``rows`` (sorted by utt_id), headers probed when ``check_audio``, bad files
    attached. No usable row at all is a ``ManifestError`` naming the expected layout."""
    if not rows:
        raise ManifestError(f"{source}: no labelled utterances found; expected {layout}"
                            + (f" ({len(bad)} file(s) skipped, first: {bad.records[0]['path']}: "
                               f"{bad.records[0]['reason']})" if len(bad) else ""))
    df = make_manifest(rows).sort_values("utt_id").reset_index(drop=True)
    df = validate_manifest(df, check_files=True, source=source)
    if check_audio:
        df = probe(df, bad)
        if df.empty:
            raise ManifestError(f"{source}: none of the {len(rows)} audio files is readable; first: "
                                f"{bad.records[0]['path']}: {bad.records[0]['reason']}")
    return bad.attach(df)
