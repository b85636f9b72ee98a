"""The ids of one fold, shared by both papers' grids: the unlabelled pre-training pool and the labelled task splits,
checked for speaker leakage, and the labelled subsets of the sparse-label protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from sercore.data.splits import LeakageError, split_ids


@dataclass
class FoldData:
    """The ids of one fold: unlabelled pre-training pool (train/val groups) and the labelled task splits."""

    fold: int
    pool_train: list[str]
    pool_val: list[str]
    train_ids: list[str]
    train_labels: list[str]
    val_ids: list[str]
    val_labels: list[str]
    test_ids: list[str]
    test_labels: list[str]
    test_speakers: list[str] = field(default_factory=list)  # the speaker of each test utterance (per-speaker UAR)


def pretraining_ids(ids: Sequence[str], manifest: pd.DataFrame, splits: pd.DataFrame, fold: int) -> list[str]:
    """``ids`` unchanged after checking that none of them, nor any of their speakers, is in the fold's test set.
    Splits read from a file that puts test speakers in training (``splits.attrs["speaker_dependent_test"]``, set by
    ``sercore.data.read_splits`` and shown as speaker-dependent in every caption) are checked by utterance only."""
    test = set(split_ids(splits, fold, "test"))
    speaker = manifest.set_index("utt_id")["speaker"].astype(str)
    test_speakers = set(speaker.reindex(sorted(test)).dropna())
    leaked = sorted(set(ids) & test)
    if not splits.attrs.get("speaker_dependent_test"):
        leaked += sorted(u for u in ids if speaker.get(u) in test_speakers and u not in test)
    if leaked:
        raise LeakageError(f"fold {fold}: pre-training data includes {len(leaked)} utterance(s) of the test "
                           f"set or its speakers {sorted(test_speakers)}: {leaked[:5]}")
    return list(ids)


def fold_data(manifest: pd.DataFrame, task: pd.DataFrame, splits: pd.DataFrame, fold: int, *,
              label_col: str = "emotion") -> FoldData:
    """Split the pool and the task of ``fold``; every manifest/task id must be in the splits table."""
    in_splits = set(splits.loc[splits["fold"] == fold, "utt_id"])
    for name, frame in (("manifest", manifest), ("task", task)):
        missing = sorted(set(frame["utt_id"].astype(str)) - in_splits)
        if missing:
            raise ValueError(f"{len(missing)} {name} utterance(s) are not in the splits of fold {fold} "
                             f"(build the splits from the full manifest): {missing[:5]}")
    pool = set(manifest["utt_id"].astype(str))
    label = task.set_index("utt_id")[label_col].astype(str)
    parts = {}
    for split in ("train", "val", "test"):
        ids = split_ids(splits, fold, split)
        parts[f"pool_{split}"] = [u for u in ids if u in pool]
        parts[split] = [u for u in ids if u in label.index]
    return FoldData(fold, pretraining_ids(parts["pool_train"], manifest, splits, fold),
                    pretraining_ids(parts["pool_val"], manifest, splits, fold),
                    parts["train"], label[parts["train"]].tolist(), parts["val"], label[parts["val"]].tolist(),
                    parts["test"], label[parts["test"]].tolist(),
                    manifest.set_index(manifest["utt_id"].astype(str))["speaker"].astype(str)
                    .reindex(parts["test"]).fillna("").tolist())


def sparse_subset(ids: Sequence[str], labels: Sequence[str], fraction: float, seed: int) -> list[int]:
    """Indices of ``round(fraction × n_c)`` (at least 1) utterances drawn per class ``c``, in input order."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels).astype(str)
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), max(1, int(round(fraction * np.sum(labels == c)))),
                         replace=False) for c in sorted(set(labels))]
    return sorted(np.concatenate(chosen).tolist())


def folds_of(splits: pd.DataFrame, folds) -> list[int]:
    """``folds`` as a list, or every fold of ``splits`` when None."""
    return sorted(splits["fold"].unique()) if folds is None else list(folds)
