"""Helpers every corpus loader shares: root checks, file listing, header probing, the final manifest.

A loader walks the official release layout, turns each usable file into a row dict and reports each file it
cannot use to a :class:`~sercore.data.registry.BadFiles` collector (misnamed, unknown label); :func:`finish`
then drops rows whose file is missing or whose id repeats, builds and validates the manifest, probes every
file's header (duration; unreadable, empty or truncated files go to the collector too) and attaches the
collected records as ``manifest.attrs["bad_files"]``.

Layout errors (no root, wrong root, no audio at all) are raised at once as ``ManifestError``: they are not a
bad file but a wrong folder, and the message names the expected layout.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from sercore.data.manifest import ManifestError, make_manifest, validate_manifest
from sercore.data.registry import BadFiles


def corpus_root(root, name: str, layout: str) -> Path:
    """``root`` as a Path; a ``ManifestError`` naming the expected layout when it is missing or not a folder."""
    if root is None or str(root).strip() == "":
        raise ManifestError(f"{name}: a data root is required, the folder holding {layout}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ManifestError(f"{name}: root {root} is not a folder; expected {layout}")
    return root


def audio_files(folder: Path, suffixes=(".wav",)) -> list[Path]:
    """Audio files directly in ``folder`` (suffix compared case-insensitively), hidden files left out, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes
                  and not p.name.startswith(".")) if folder.is_dir() else []


def wav_files(folder: Path, name: str, layout: str) -> list[Path]:
    """:func:`audio_files` of ``folder``; none at all is a ``ManifestError`` naming the expected layout."""
    files = audio_files(folder)
    if not files:
        raise ManifestError(f"{name}: no WAV files in {folder}; expected {layout}")
    return files


def natural_key(text: str) -> list:
    """Sort key that orders ``Session2`` before ``Session10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def probe(df: pd.DataFrame, bad: BadFiles) -> pd.DataFrame:
    """Read each file's header (``sercore.data.audio.audio_header``): fill missing durations; unreadable, empty
    or truncated files go to ``bad`` and are left out."""
    from sercore.data.audio import AudioError, audio_header  # lazy: keeps ``import sercore.data`` light

    durations, keep = [], []
    for path in df["path"]:
        try:
            frames, rate = audio_header(path)
        except AudioError as err:
            bad.add(path, err.reason)
            durations.append(float("nan"))
            keep.append(False)
            continue
        durations.append(frames / rate)
        keep.append(True)
    df = df.copy()
    df["duration"] = pd.to_numeric(df["duration"], errors="coerce").fillna(pd.Series(durations, index=df.index))
    return df[keep].reset_index(drop=True)


def _usable_rows(rows: list[dict], bad: BadFiles, check_files: bool = True) -> list[dict]:
    """Rows whose utt_id is new and (``check_files``) whose file exists; the others go to ``bad``."""
    seen, out = {}, []
    for row in rows:
        path, utt = str(row["path"]), row["utt_id"]
        if check_files and not os.path.isfile(path):
            bad.add(path, "file not found")
        elif utt in seen:
            bad.add(path, f"duplicate utterance id {utt} (also {seen[utt]})")
        else:
            seen[utt] = path
            out.append(row)
    return out


def finish(rows: list[dict], source: str, layout: str, bad: BadFiles | None = None, *, check_audio: bool = True,
           check_files: bool = True) -> pd.DataFrame:
    """Validated manifest of ``rows`` (sorted by utt_id), headers probed when ``check_audio``, bad files
    attached. Rows whose utt_id repeats, or (``check_files``) whose file is missing, go to ``bad`` (by default
    the collector of ``rows``, a ``Rows``). No usable row at all is a ``ManifestError`` naming the expected
    layout (and the first skipped file, if any)."""
    bad = rows.bad if bad is None else bad
    n_rows = len(rows)
    rows = _usable_rows(rows, bad, check_files)
    if not rows:
        raise ManifestError(f"{source}: no labelled utterances found; expected {layout}" + _first_skipped(bad))
    df = make_manifest(rows).sort_values("utt_id").reset_index(drop=True)
    df = validate_manifest(df, check_files=False, source=source)
    if check_audio and check_files:
        df = probe(df, bad)
        if df.empty:
            raise ManifestError(f"{source}: none of the {n_rows} audio files is usable" + _first_skipped(bad))
    return bad.attach(df)


def _first_skipped(bad: BadFiles) -> str:
    if not len(bad):
        return ""
    first = bad.records[0]
    return f" ({len(bad)} file(s) skipped, first: {first['path']}: {first['reason']})"
