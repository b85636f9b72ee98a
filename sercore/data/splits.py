"""Cross-validation splits: leave-one-group-out with a validation group, speaker-disjoint and checked.

The splits table has one row per fold × utterance, columns ``fold, utt_id, speaker, group, split`` with
``split`` in ``train/val/test``: fold f tests group f, validates on group f+1 (mod G), trains on the rest.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

SPLIT_COLUMNS = ("fold", "utt_id", "speaker", "group", "split")
SPLITS = ("train", "val", "test")
_MIN_GROUPS = 3  # a test, a validation and at least one training group


class LeakageError(ValueError):
    """A speaker of a fold's test set also appears in its training or validation set."""


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _speaker_groups(speakers: pd.Series, n_folds: int, seed: int) -> pd.Series:
    """Assign speakers to ``n_folds`` groups round-robin over a seeded permutation of the sorted speakers."""
    if n_folds < _MIN_GROUPS:
        raise ValueError(f"n_folds must be at least {_MIN_GROUPS} (test, validation, training groups), got {n_folds}")
    unique = sorted(speakers.unique(), key=_natural)
    if len(unique) < n_folds:
        raise ValueError(f"{len(unique)} speaker(s) ({', '.join(unique)}) cannot fill {n_folds} speaker-disjoint "
                         f"folds; use n_folds <= {len(unique)} (and >= {_MIN_GROUPS})")
    order = np.random.default_rng(seed).permutation(len(unique))
    group_of = {unique[j]: f"group{k % n_folds + 1}" for k, j in enumerate(order)}
    return speakers.map(group_of)


def _session_groups(manifest: pd.DataFrame, group_col: str | None) -> pd.Series | None:
    if not group_col or group_col not in manifest.columns:
        return None
    groups = manifest[group_col]
    if groups.nunique(dropna=True) < _MIN_GROUPS:
        return None
    if groups.isna().any():
        rows = manifest.loc[groups.isna(), "utt_id"].tolist()
        raise ValueError(f"column {group_col!r} is empty for {len(rows)} utterance(s) (e.g. {rows[:5]}); "
                         f"fill it or use group_col=None for speaker groups")
    return groups.astype(str)


def make_splits(manifest: pd.DataFrame, *, n_folds: int = 5, seed: int = 0, group_col: str | None = "session") -> pd.DataFrame:
    """Build the folds of a manifest and check them for speaker leakage.

    With at least 3 distinct values in ``group_col`` (IEMOCAP sessions) there is one fold per group and
    ``n_folds``/``seed`` are not used. Otherwise speakers are dealt into ``n_folds`` groups from a seeded
    permutation: deterministic for a seed and independent of row order. Returns the splits table sorted by
    fold and utt_id; raises ``ValueError`` for too few speakers, ``LeakageError`` if groups share speakers.
    """
    missing = [c for c in ("utt_id", "speaker") if c not in manifest.columns]
    if missing:
        raise ValueError(f"make_splits: manifest lacks column(s) {missing}")
    if manifest["utt_id"].duplicated().any():
        raise ValueError(f"make_splits: duplicate utt_id(s) {sorted(set(manifest['utt_id'][manifest['utt_id'].duplicated()]))[:5]}")
    if manifest["speaker"].isna().any() or len(manifest) == 0:
        raise ValueError("make_splits: empty manifest or utterances without a speaker")
    table = pd.DataFrame({"utt_id": manifest["utt_id"].astype(str).values, "speaker": manifest["speaker"].astype(str).values})
    groups = _session_groups(manifest, group_col)
    table["group"] = (_speaker_groups(table["speaker"], n_folds, seed) if groups is None else groups.values)
    names = sorted(table["group"].unique(), key=_natural)
    folds = []
    for f, test in enumerate(names):
        val = names[(f + 1) % len(names)]
        split = np.where(table["group"] == test, "test", np.where(table["group"] == val, "val", "train"))
        folds.append(table.assign(fold=f, split=split))
    splits = pd.concat(folds, ignore_index=True)[list(SPLIT_COLUMNS)]
    splits = splits.sort_values(["fold", "utt_id"], kind="stable").reset_index(drop=True)
    assert_no_leakage(splits)
    return splits


def assert_no_leakage(splits: pd.DataFrame) -> None:
    """Raise ``LeakageError`` if, in any fold, a test speaker is also in train/val or an utterance is in two splits."""
    _check_columns(splits, "assert_no_leakage")
    for fold, part in splits.groupby("fold", sort=True):
        twice = part["utt_id"][part["utt_id"].duplicated()]
        if len(twice):
            raise LeakageError(f"fold {fold}: utterance(s) {sorted(set(twice))[:5]} appear in more than one split")
        test = set(part.loc[part["split"] == "test", "speaker"])
        seen = set(part.loc[part["split"] != "test", "speaker"])
        shared = sorted(test & seen, key=_natural)
        if shared:
            raise LeakageError(f"fold {fold}: test speaker(s) {', '.join(shared)} also in train/val; "
                               "groups must be speaker-disjoint (use group_col=None for speaker groups)")


def split_ids(splits: pd.DataFrame, fold: int, split: str) -> list[str]:
    """The utt_ids of ``split`` (``train``, ``val`` or ``test``) in ``fold``, in table order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folds = sorted(splits["fold"].unique())
    if fold not in folds:
        raise ValueError(f"fold {fold!r} not in the splits table (folds {folds})")
    rows = (splits["fold"] == fold) & (splits["split"] == split)
    return splits.loc[rows, "utt_id"].tolist()


def save_splits(splits: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a splits table as CSV (atomic); returns the path."""
    _check_columns(splits, "save_splits")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    splits[list(SPLIT_COLUMNS)].to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def load_splits(path: str | os.PathLike) -> pd.DataFrame:
    """Read a splits CSV written by ``save_splits``, check its columns and values, and check it for leakage."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: splits file not found")
    splits = pd.read_csv(path, dtype={"utt_id": str, "speaker": str, "group": str, "split": str},
                         keep_default_na=False)
    _check_columns(splits, str(path))
    if not pd.api.types.is_integer_dtype(splits["fold"]):
        raise ValueError(f"{path}: column 'fold' must hold integers")
    assert_no_leakage(splits)
    return splits


def _check_columns(splits: pd.DataFrame, where: str) -> None:
    missing = [c for c in SPLIT_COLUMNS if c not in splits.columns]
    if missing:
        raise ValueError(f"{where}: splits table lacks column(s) {missing}; expected {list(SPLIT_COLUMNS)}")
    bad = sorted(set(splits["split"]) - set(SPLITS))
    if bad:
        raise ValueError(f"{where}: unknown split value(s) {bad}; expected {SPLITS}")
