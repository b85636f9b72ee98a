"""Cross-validation splits: leave-one-group-out with a validation part, speaker-disjoint and checked.

The splits table has one row per fold × utterance, columns ``fold, utt_id, speaker, group, split`` with
``split`` in ``train/val/test``. Groups are sessions (IEMOCAP) or speakers, one per fold (the group is named
by it) or dealt into ``n_folds`` groups (``group1``, ...).
Fold f tests group f. With three or more groups it validates on group f+1 (mod G) and trains on the rest,
so validation speakers are unseen in training. With two groups (a two-speaker corpus, or ``n_folds=2``) it
validates on a part of the training group's utterances, stratified by emotion: the validation set is then
speaker-dependent, which ``splits.attrs["speaker_dependent_val"]``, ``speaker_dependent_val(splits)`` and
``describe_splits(splits)`` say. The test speakers are never in train or validation.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

SPLIT_COLUMNS = ("fold", "utt_id", "speaker", "group", "split")
SPLITS = ("train", "val", "test")
DEFAULT_FOLDS = 5
_MIN_GROUPS = 3  # below this, validation comes from the training group


class LeakageError(ValueError):
    """A speaker of a fold's test set also appears in its training or validation set."""


def natural_key(text: str) -> list:
    """Sort key that orders the numbers inside a name by value: ``Ses2`` before ``Ses10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _show(values) -> str:
    values = list(values)
    return ", ".join(values[:10]) + (f", ... ({len(values)} in all)" if len(values) > 10 else "")


def _n_folds(n_folds, n_units: int, unit: str, names: list[str]) -> int:
    """The number of folds: ``n_folds`` checked against the ``n_units`` units, or the automatic choice."""
    if n_units < 2:
        raise ValueError(f"only one {unit} ({_show(names)}): a test {unit} unseen in training needs at least two; "
                         f"add recordings of another {unit}")
    if n_folds is None:
        return n_units if unit == "session" else min(DEFAULT_FOLDS, n_units)
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)):
        raise ValueError(f"n_folds must be an integer or None (automatic), got {n_folds!r}")
    if not 2 <= n_folds <= n_units:
        choice = "n_folds=2" if n_units == 2 else f"n_folds between 2 and {n_units}"
        problem = (f"n_folds={n_folds}: cross-validation needs at least 2 folds" if n_folds < 2 else
                   f"{n_units} {unit}s ({_show(names)}) cannot fill {n_folds} {unit}-disjoint folds")
        raise ValueError(f"{problem}; use {choice}, or n_folds=None for the automatic choice")
    return int(n_folds)


def _deal(units: pd.Series, n_folds: int, seed: int) -> pd.Series:
    """Assign units to ``n_folds`` groups round-robin over a seeded permutation of the sorted units."""
    unique = sorted(units.unique(), key=natural_key)
    order = np.random.default_rng(seed).permutation(len(unique))
    group_of = {unique[j]: f"group{k % n_folds + 1}" for k, j in enumerate(order)}
    return units.map(group_of)


def _session_groups(manifest: pd.DataFrame, group_col: str | None) -> pd.Series | None:
    """``manifest[group_col]`` as fold groups when it has ≥3 values, fills every row and nests speakers
    (each speaker in one group); otherwise None (speaker groups), with a warning saying why."""
    if not group_col or group_col not in manifest.columns:
        return None
    groups = manifest[group_col]
    if groups.nunique(dropna=True) < _MIN_GROUPS:
        return None
    if groups.isna().any():
        rows = manifest.loc[groups.isna(), "utt_id"].tolist()
        warnings.warn(f"make_splits: column {group_col!r} is empty for {len(rows)} utterance(s) (e.g. {rows[:3]}); "
                      "folds are speaker groups instead", stacklevel=3)
        return None
    per_speaker = groups.groupby(manifest["speaker"].astype(str)).nunique()
    if (per_speaker > 1).any():
        shared = sorted(per_speaker.index[per_speaker > 1], key=natural_key)
        warnings.warn(f"make_splits: speaker(s) {_show(shared)} appear in several {group_col} values; "
                      "folds are speaker groups instead", stacklevel=3)
        return None
    return groups.astype(str)


def _check_manifest(manifest: pd.DataFrame) -> None:
    missing = [c for c in ("utt_id", "speaker") if c not in manifest.columns]
    if missing:
        raise ValueError(f"make_splits: manifest lacks column(s) {missing}")
    if len(manifest) == 0 or manifest["speaker"].isna().any():
        raise ValueError("make_splits: empty manifest or utterances without a speaker")
    twice = manifest["utt_id"][manifest["utt_id"].duplicated()]
    if len(twice):
        raise ValueError(f"make_splits: duplicate utt_id(s) {sorted(set(twice))[:5]}")


def stratified_val(part: pd.DataFrame, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask over ``part`` (training rows): about ``fraction`` of each emotion's utterances, at least
    one of any emotion with two or more, chosen at random (order-independent: rows sorted by utt_id)."""
    mask = np.zeros(len(part), dtype=bool)
    for _, rows in part.groupby("stratum", sort=True):
        n = len(rows)
        k = 0 if n < 2 else min(n - 1, max(1, int(round(fraction * n))))
        order = rows.sort_values("utt_id").index.to_numpy()
        mask[part.index.get_indexer(rng.permutation(order)[:k])] = True
    return mask


def _folds(table: pd.DataFrame, names: list[str], val_fraction: float, seed: int) -> list[pd.DataFrame]:
    folds = []
    for f, test in enumerate(names):
        split = np.where(table["group"] == test, "test", "train").astype(object)
        if len(names) >= _MIN_GROUPS:
            split[(table["group"] == names[(f + 1) % len(names)]).to_numpy()] = "val"
        else:
            train = table[split == "train"]
            chosen = stratified_val(train, val_fraction, np.random.default_rng([seed, f]))
            split[table.index.get_indexer(train.index[chosen])] = "val"
        folds.append(table.drop(columns="stratum").assign(fold=f, split=split))
    return folds


def make_splits(manifest: pd.DataFrame, *, n_folds: int | None = None, seed: int = 0,
                group_col: str | None = "session", val_fraction: float = 0.2) -> pd.DataFrame:
    """Build the folds of a manifest and check them for speaker leakage.

    With at least 3 distinct values in ``group_col`` (IEMOCAP sessions), filled for every utterance and each
    speaker in one of them, the groups are those values: one
    fold per group when ``n_folds`` is None (or equal to their number), else the sessions dealt into
    ``n_folds`` groups. Otherwise speakers are dealt into ``n_folds`` groups (None: 5, or the number of
    speakers when fewer) from a seeded permutation: deterministic for a seed, independent of row order.
    With two groups, e.g. a two-speaker corpus (leave-one-speaker-out), validation is ``val_fraction`` of
    the training group's utterances, stratified by emotion, and ``attrs["speaker_dependent_val"]`` is True.
    Returns the splits table sorted by fold and utt_id (``attrs``: ``scheme``, ``n_folds``,
    ``speaker_dependent_val``); raises ``ValueError`` when the folds cannot be built (the message says what
    to change), ``LeakageError`` if groups share speakers.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction!r}")
    _check_manifest(manifest)
    if _has_partition(manifest):
        return _partition_split(manifest)
    table = pd.DataFrame({"utt_id": manifest["utt_id"].astype(str).values,
                          "speaker": manifest["speaker"].astype(str).values})
    table["stratum"] = manifest["emotion"].astype(str).values if "emotion" in manifest.columns else ""
    sessions = _session_groups(manifest, group_col)
    unit = "session" if sessions is not None else "speaker"
    units = table["speaker"] if sessions is None else pd.Series(sessions.values, index=table.index)
    names = sorted(units.unique(), key=natural_key)
    k = _n_folds(n_folds, len(names), unit, names)
    one_each = k == len(names)
    table["group"] = units if one_each else _deal(units, k, seed)  # one unit per fold: named by it
    groups = sorted(table["group"].unique(), key=natural_key)
    splits = pd.concat(_folds(table, groups, val_fraction, seed), ignore_index=True)[list(SPLIT_COLUMNS)]
    splits = splits.sort_values(["fold", "utt_id"], kind="stable").reset_index(drop=True)
    assert_no_leakage(splits)
    label = group_col if unit == "session" else "speaker"
    scheme = f"leave-one-{label}-out" if one_each else f"{k} {label}-disjoint groups"
    splits.attrs.update(scheme=scheme, n_folds=k, speaker_dependent_val=len(groups) < _MIN_GROUPS)
    return splits


def _has_partition(manifest: pd.DataFrame) -> bool:
    """True when the corpus ships one official train/val/test partition (MSP-Podcast's ``Split_Set``)."""
    return "partition" in manifest.columns and manifest["partition"].notna().all() \
        and set(manifest["partition"]) <= set(SPLITS) and set(manifest["partition"]) >= {"train", "test"}


def _partition_split(manifest: pd.DataFrame) -> pd.DataFrame:
    """One fixed fold 0 whose splits are the corpus's official partition (``n_folds`` and ``seed`` unused)."""
    splits = pd.DataFrame({"fold": 0, "utt_id": manifest["utt_id"].astype(str).values,
                           "speaker": manifest["speaker"].astype(str).values,
                           "group": manifest["partition"].values, "split": manifest["partition"].values})
    splits = splits.sort_values(["fold", "utt_id"], kind="stable").reset_index(drop=True)
    assert_no_leakage(splits)
    splits.attrs.update(scheme="the corpus's official partition", n_folds=1,
                        speaker_dependent_val=speaker_dependent_val(splits))
    return splits


def speaker_dependent_val(splits: pd.DataFrame) -> bool:
    """True when, in some fold, a validation speaker is also a training speaker (read from the table)."""
    check_split_columns(splits, "speaker_dependent_val")
    for _, part in splits.groupby("fold"):
        if set(part.loc[part["split"] == "val", "speaker"]) & set(part.loc[part["split"] == "train", "speaker"]):
            return True
    return False


def describe_splits(splits: pd.DataFrame) -> str:
    """A caption line, e.g. ``"2 folds, leave-one-speaker-out; test speakers unseen in training; validation is
    speaker-dependent (...)"``; a split with test speakers in training says ``SPEAKER-DEPENDENT``.

    Uses ``splits.attrs`` when ``make_splits`` set them, otherwise reads the table (a saved CSV).
    """
    check_split_columns(splits, "describe_splits")
    n = splits["fold"].nunique()
    scheme = splits.attrs.get("scheme")
    if scheme is None:
        per_group = splits.groupby("group")["speaker"].nunique()
        scheme = ("leave-one-speaker-out" if (per_group == 1).all() and len(per_group) == n
                  else "leave-one-group-out")
    dependent = speaker_dependent_val(splits)
    val = ("validation is speaker-dependent (a stratified part of the training speakers' utterances)"
           if dependent else "validation speakers are unseen in training")
    test = ("SPEAKER-DEPENDENT: test speakers also in training" if speaker_dependent_test(splits)
            else "test speakers unseen in training")
    return f"{n} fold{'s' if n != 1 else ''}, {scheme}; {test}; {val}"


def speaker_dependent_test(splits: pd.DataFrame) -> bool:
    """True when, in some fold, a test speaker also has utterances in training or validation (an imported split,
    ``sercore.data.split_files``; ``make_splits`` never builds one)."""
    check_split_columns(splits, "speaker_dependent_test")
    for _, part in splits.groupby("fold"):
        if set(part.loc[part["split"] == "test", "speaker"]) & set(part.loc[part["split"] != "test", "speaker"]):
            return True
    return False


def assert_no_leakage(splits: pd.DataFrame) -> None:
    """Raise ``LeakageError`` if, in any fold, a test speaker is also in train/val or an utterance is in two splits.
    Splits read from a file and declared speaker-dependent (``attrs["speaker_dependent_test"]``) are checked by
    utterance only."""
    check_split_columns(splits, "assert_no_leakage")
    for fold, part in splits.groupby("fold", sort=True):
        twice = part["utt_id"][part["utt_id"].duplicated()]
        if len(twice):
            raise LeakageError(f"fold {fold}: utterance(s) {sorted(set(twice))[:5]} appear in more than one split")
        if splits.attrs.get("speaker_dependent_test"):
            continue
        test = set(part.loc[part["split"] == "test", "speaker"])
        seen = set(part.loc[part["split"] != "test", "speaker"])
        shared = sorted(test & seen, key=natural_key)
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
    check_split_columns(splits, "save_splits")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    splits[list(SPLIT_COLUMNS)].to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def load_splits(path: str | os.PathLike, *, allow_speaker_dependent: bool = False) -> pd.DataFrame:
    """Read a splits CSV written by ``save_splits``, check its columns and values, and check it for leakage
    (``allow_speaker_dependent``: test speakers may also be in training — the table is then marked
    ``attrs["speaker_dependent_test"]``; utterances are still checked)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: splits file not found")
    splits = pd.read_csv(path, dtype={"utt_id": str, "speaker": str, "group": str, "split": str},
                         keep_default_na=False)
    check_split_columns(splits, str(path))
    if not pd.api.types.is_integer_dtype(splits["fold"]):
        raise ValueError(f"{path}: column 'fold' must hold integers")
    if allow_speaker_dependent and speaker_dependent_test(splits):
        splits.attrs["speaker_dependent_test"] = True
    assert_no_leakage(splits)
    return splits


def check_split_columns(splits: pd.DataFrame, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` when ``splits`` lacks a column of ``SPLIT_COLUMNS``."""
    missing = [c for c in SPLIT_COLUMNS if c not in splits.columns]
    if missing:
        raise ValueError(f"{where}: splits table lacks column(s) {missing}; expected {list(SPLIT_COLUMNS)}")
    bad = sorted(set(splits["split"]) - set(SPLITS))
    if bad:
        raise ValueError(f"{where}: unknown split value(s) {bad}; expected {SPLITS}")
