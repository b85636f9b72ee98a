"""The manifest: one table format for every corpus, its validation, CSV round trip and emotion subsets.

A manifest is a ``pandas.DataFrame`` with one row per utterance. Required columns
``utt_id, path, speaker, emotion, dataset``; optional ``session, duration, gender, text_id`` are always
present (missing values are NaN). ``path`` is absolute; ``emotion`` is a canonical code of ``EMOTIONS``: the
categories, plus ``low`` and ``high`` for corpora labelled with an emotion level rather than a category (BAVED:
low, neutral, high; its neutral level is ``neu``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping

import pandas as pd

REQUIRED_COLUMNS = ("utt_id", "path", "speaker", "emotion", "dataset")
OPTIONAL_COLUMNS = ("session", "duration", "gender", "text_id")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
EMOTIONS = ("neu", "hap", "exc", "sad", "ang", "fru", "fea", "sur", "dis", "oth", "cal", "bor", "low", "high")
EMOTION_NAMES = MappingProxyType({
    "neu": "neutral", "hap": "happy", "exc": "excited", "sad": "sad", "ang": "angry", "fru": "frustrated",
    "fea": "fear", "sur": "surprise", "dis": "disgust", "oth": "other", "cal": "calm", "bor": "boredom",
    "low": "low emotion level", "high": "high emotion level",
})
EMOTION_SYNONYMS = MappingProxyType({
    "anger": "ang", "happiness": "hap", "joy": "hap", "sadness": "sad", "fearful": "fea", "scared": "fea",
    "surprised": "sur", "disgusted": "dis", "excitement": "exc", "frustration": "fru", "bored": "bor",
})
TARGET_EMOTIONS = ("neu", "hap", "sad", "ang")
DEFAULT_MERGE = MappingProxyType({"exc": "hap"})
_BY_NAME = {name: code for code, name in EMOTION_NAMES.items()}
_STRING_COLUMNS = ("utt_id", "path", "speaker", "emotion", "dataset", "session", "gender", "text_id")
_SHOWN = 5  # rows/files quoted in an error message


class ManifestError(ValueError):
    """A manifest (or the corpus folder it was read from) is malformed; the message names what and where."""


def canonical_emotion(label) -> str | None:
    """The canonical code of an emotion label: a code (``ang``), its name (``angry``, ``Angry``) or a common
    synonym (``anger``, ``happiness``, ``joy``, ``fearful``, ...), case and spaces ignored; None if unknown."""
    if label is None or (isinstance(label, float) and label != label):
        return None
    key = str(label).strip().lower()
    if key in EMOTIONS:
        return key
    return _BY_NAME.get(key) or EMOTION_SYNONYMS.get(key)


def _where(source: str) -> str:
    return f"{source}: " if source else "manifest: "


def _show(values: Iterable) -> str:
    values = list(values)
    more = f" ... ({len(values)} in all)" if len(values) > _SHOWN else ""
    return ", ".join(str(v) for v in values[:_SHOWN]) + more


def make_manifest(rows: Iterable[Mapping]) -> pd.DataFrame:
    """Build a manifest frame from dicts (missing optional fields become NaN), columns in canonical order."""
    df = pd.DataFrame(list(rows))
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = None
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[list(COLUMNS) + extra]


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for col in OPTIONAL_COLUMNS:
        if col not in df.columns:
            df[col] = None
    for col in _STRING_COLUMNS:  # object columns with None for missing, the same under pandas 2 and 3
        df[col] = pd.Series([None if pd.isna(v) else str(v).strip() for v in df[col]], index=df.index, dtype=object)
    df["duration"] = pd.to_numeric(df["duration"]).astype(float)
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[list(COLUMNS) + extra].reset_index(drop=True)


def validate_manifest(df: pd.DataFrame, *, check_files: bool = True, source: str = "") -> pd.DataFrame:
    """Check a manifest and return a normalised copy (all columns present, strings stripped, paths absolute).

    Raises ``ManifestError`` naming ``source`` (a file or corpus name) and the offending rows when a required
    column is missing, the table is empty, an id/speaker/path/dataset is empty, an id is duplicated, an
    emotion is not a canonical code, or (``check_files``) a file does not exist.
    """
    if not isinstance(df, pd.DataFrame):
        raise ManifestError(f"{_where(source)}expected a pandas DataFrame, got {type(df).__name__}")
    where = _where(source)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ManifestError(f"{where}missing required column(s) {missing}; a manifest needs {list(REQUIRED_COLUMNS)}")
    if len(df) == 0:
        raise ManifestError(f"{where}no utterances")
    try:
        df = _normalise(df)
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"{where}column 'duration' is not numeric ({exc})") from exc
    for col in ("utt_id", "path", "speaker", "emotion", "dataset"):
        empty = df.index[df[col].map(lambda v: v is None or v == "")]
        if len(empty):
            ids = df.loc[empty, "utt_id"].fillna("?")
            raise ManifestError(f"{where}empty '{col}' in {len(empty)} row(s): rows {_show(empty)} "
                                f"(utt_id {_show(ids)})")
    dup = df["utt_id"][df["utt_id"].duplicated(keep=False)]
    if len(dup):
        raise ManifestError(f"{where}duplicate utt_id(s) {_show(sorted(set(dup)))} in rows {_show(dup.index)}")
    bad = ~df["emotion"].isin(EMOTIONS)
    if bad.any():
        found = sorted(set(df.loc[bad, "emotion"]))
        raise ManifestError(f"{where}unknown emotion code(s) {found} in rows {_show(df.index[bad])} "
                            f"(utt_id {_show(df.loc[bad, 'utt_id'])}); known codes: {' '.join(EMOTIONS)}")
    df["path"] = pd.Series([os.path.abspath(p) for p in df["path"]], index=df.index, dtype=object)
    if check_files:
        absent = [p for p in df["path"] if not os.path.isfile(p)]
        if absent:
            raise ManifestError(f"{where}{len(absent)} audio file(s) do not exist: {_show(absent)}")
    return df


def read_manifest_csv(path: str | os.PathLike, *, check_files: bool = True) -> pd.DataFrame:
    """Read and validate a manifest CSV (strict: any bad row is an error); relative ``path`` entries are
    resolved against the CSV's folder and a missing ``dataset`` column defaults to the CSV's stem. The
    ``csv`` dataset (``load_dataset("csv", path)``) is the lenient reader for users' own corpora."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest CSV not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not a readable CSV ({exc})") from exc
    if "dataset" not in df.columns:
        df["dataset"] = path.stem
    if "path" in df.columns:
        folder = path.resolve().parent
        df["path"] = [p if not isinstance(p, str) or os.path.isabs(p) else str(folder / p) for p in df["path"]]
    return validate_manifest(df, check_files=check_files, source=str(path))


def write_manifest_csv(df: pd.DataFrame, path: str | os.PathLike, *, relative: bool = True) -> Path:
    """Write a manifest to CSV (validated first); with ``relative``, files under the CSV's folder are stored
    relative to it so the folder can be moved. Returns the CSV path."""
    path = Path(path)
    df = validate_manifest(df, check_files=False, source=str(path))
    folder = path.resolve().parent
    if relative:
        df["path"] = [_relative_if_inside(p, folder) for p in df["path"]]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def _relative_if_inside(p: str, folder: Path) -> str:
    try:
        return Path(p).relative_to(folder).as_posix()
    except ValueError:
        return p


def _merged_emotions(manifest: pd.DataFrame, emotions: Iterable[str], merge: Mapping[str, str]) -> tuple:
    emotions = tuple(emotions)
    unknown = sorted((set(emotions) | set(merge) | set(merge.values())) - set(EMOTIONS))
    if unknown:
        raise ValueError(f"unknown emotion code(s) {unknown} in emotions/merge; known codes: {' '.join(EMOTIONS)}")
    if "emotion" not in manifest.columns:
        raise ManifestError("manifest has no 'emotion' column")
    return emotions, manifest["emotion"].map(lambda e: merge.get(e, e))


def target_subset(manifest: pd.DataFrame, emotions: Iterable[str] = TARGET_EMOTIONS,
                  merge: Mapping[str, str] = DEFAULT_MERGE) -> pd.DataFrame:
    """The classification task: rows whose emotion (after ``merge``, e.g. exc→hap) is in ``emotions``.

    The returned copy carries the merged labels (IEMOCAP-10 → IEMOCAP-4 with the defaults). Warns when a
    target emotion has no utterance; raises ``ManifestError`` naming the manifest's emotions when fewer than two
    classes are left (BAVED's levels give one class, ``neu``, of the default targets: use
    ``emotions=("low", "neu", "high")``).
    """
    emotions, merged = _merged_emotions(manifest, emotions, merge)
    keep = merged.isin(emotions)
    out = manifest.loc[keep].copy()
    out["emotion"] = merged[keep]
    if out.empty:
        raise ManifestError(f"no utterance with emotion in {list(emotions)} (merge {dict(merge)})")
    present = sorted(set(out["emotion"]))
    if len(present) < 2:
        raise ManifestError(f"the targets {list(emotions)} leave one class, {present[0]}; a task needs two or more. "
                            f"This manifest's emotions: {' '.join(sorted(set(merged)))}; choose the targets among them")
    absent = [e for e in emotions if e not in present]
    if absent:
        warnings.warn(f"target_subset: no utterance labelled {absent}; the task has {len(present)} classes",
                      stacklevel=2)
    return out.reset_index(drop=True)


def ood_subset(manifest: pd.DataFrame, emotions: Iterable[str] = TARGET_EMOTIONS,
               merge: Mapping[str, str] = DEFAULT_MERGE) -> pd.DataFrame:
    """The complement of ``target_subset``: rows whose emotion (after ``merge``) is not a target; labels unchanged."""
    emotions, merged = _merged_emotions(manifest, emotions, merge)
    return manifest.loc[~merged.isin(emotions)].reset_index(drop=True)
