"""Users' own corpora: a CSV with one row per utterance (``utt_id, path, speaker, emotion`` are enough)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.manifest import EMOTIONS, OPTIONAL_COLUMNS, ManifestError, canonical_emotion
from sercore.data.registry import BadFiles, register_dataset

NEEDED = ("utt_id", "path", "speaker", "emotion")
LAYOUT = (f"a CSV file (or a folder holding manifest.csv) with columns {', '.join(NEEDED)} "
          f"(optional: dataset, {', '.join(OPTIONAL_COLUMNS)}); relative paths are read from the CSV's folder")


def _csv_path(root) -> tuple[Path, str]:
    """The CSV file and the default dataset name (the CSV's stem, or the folder's name for a folder root)."""
    if root is None or str(root).strip() == "":
        raise ManifestError(f"csv: a root is required: {LAYOUT}")
    path = Path(root).expanduser()
    if path.is_dir():
        if not (path / "manifest.csv").is_file():
            raise ManifestError(f"csv: {path} is a folder without manifest.csv; expected {LAYOUT}")
        return path / "manifest.csv", path.resolve().name
    if not path.is_file():
        raise ManifestError(f"csv: {path} not found; expected {LAYOUT}")
    return path, path.stem


def _read(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not a readable CSV ({exc})") from exc
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in NEEDED if c not in table.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}; found {list(table.columns)}; expected {LAYOUT}")
    return table


def _row(record: dict, where: str, folder: Path, dataset: str, bad: BadFiles) -> dict | None:
    """One manifest row from a CSV record, or None (reported to ``bad``) when it cannot be used."""
    values = {k: (None if pd.isna(v) or str(v).strip() == "" else str(v).strip()) for k, v in record.items()}
    empty = [c for c in NEEDED if values.get(c) is None]
    path = values.get("path")
    if path is not None and not os.path.isabs(os.path.expanduser(path)):
        path = str(folder / path)
    name = path or where
    if empty:
        bad.add(name, f"{where}: empty {', '.join(repr(c) for c in empty)}")
        return None
    code = canonical_emotion(values["emotion"])
    if code is None:
        bad.add(name, f"{where}: unknown emotion {values['emotion']!r}; use a canonical code "
                      f"({' '.join(EMOTIONS)}) or its name (angry, happy, ...)")
        return None
    duration = values.get("duration")
    if duration is not None:
        try:
            duration = float(duration)
        except ValueError:
            duration = float("nan")
        if not duration > 0:
            bad.add(name, f"{where}: duration {values['duration']!r} is not a positive number of seconds")
            return None
    return dict(values, path=os.path.expanduser(path), emotion=code, duration=duration,
                dataset=values.get("dataset") or dataset)


@register_dataset("csv", layout=LAYOUT)
def load_csv(root, *, dataset: str | None = None, check_audio: bool = True, check_files: bool = True,
             on_error: str = "skip") -> pd.DataFrame:
    """Any corpus described by a CSV: ``root`` is the CSV file or a folder holding ``manifest.csv``.

    Columns ``utt_id, path, speaker, emotion`` are enough; ``dataset`` (default: ``dataset``, else the CSV's
    stem, or the folder's name for a folder root), ``session, duration, gender, text_id`` may be missing or
    partly empty. Relative paths resolve against the CSV's folder. Emotions may be canonical codes or names
    (``angry``, ``Happy``, ``anger``). Missing durations are read from the audio headers (``check_audio``).
    Rows with an empty field, an unknown emotion, a bad duration, a repeated utt_id, a missing or unreadable
    file are skipped and listed in ``attrs["bad_files"]`` (``on_error="raise"``: an error naming the first).
    """
    bad = BadFiles("csv", on_error)
    path, default_name = _csv_path(root)
    table = _read(path)
    folder = path.resolve().parent
    rows = []
    for number, record in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
        row = _row(record, f"{path.name} line {number}", folder, dataset or default_name, bad)
        if row is not None:
            rows.append(row)
    return finish(rows, str(path), LAYOUT, bad, check_audio=check_audio, check_files=check_files)
