"""Byte-identical audio files in a manifest: the same recording under two utterance ids, or under two speakers.

Real releases hold such copies (a file filed twice, a take shared by two speakers). Left in, a copy on the test
side of a fold and another on the training side leak the test audio into training. From the files' content
digests (``sercore.core.digests.DigestMemo(...).digests(paths)``, the memo the feature cache keeps):

- :func:`find_duplicates` lists every later copy with the first one (in manifest order) and its kind,
  ``within_speaker`` or ``across_speakers``;
- :func:`split_leaks` lists the folds where a copy and its first copy lie in different splits;
- :func:`leave_out_copies` writes the report (``duplicates.csv``), raises :class:`DuplicateAudioError` naming both
  files of a cross-split copy when ``strict``, and returns the manifest and splits without the later copies.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Mapping

import pandas as pd

KINDS = ("within_speaker", "across_speakers")
COLUMNS = ("kind", "utt_id", "path", "speaker", "first_utt_id", "first_path", "first_speaker", "digest")
LEAK_COLUMNS = ("fold", "utt_id", "split", "first_utt_id", "first_split")
_SHOWN = 5


class DuplicateAudioError(ValueError):
    """A file and its byte-identical copy lie in different splits of a fold; the message names both files."""


def find_duplicates(manifest: pd.DataFrame, digests: Mapping[str, str | None]) -> pd.DataFrame:
    """One row per later copy (``COLUMNS``): a file whose bytes (``digests[path]``) equal those of a file in an
    earlier row of ``manifest`` (loaders sort it by utt_id), the first copy named beside it; ``kind`` is
    ``within_speaker`` when both have the same speaker, else ``across_speakers``. Files whose digest is missing
    or None (unreadable) are left out."""
    table = manifest[["utt_id", "path", "speaker"]].astype(str).copy()
    table["digest"] = [digests.get(p) for p in table["path"]]
    table = table.dropna(subset=["digest"])
    first = table.drop_duplicates("digest").set_index("digest")
    copies = table[table.duplicated("digest")]
    out = copies.join(first.add_prefix("first_"), on="digest")
    out["kind"] = [KINDS[0] if a == b else KINDS[1] for a, b in zip(out["speaker"], out["first_speaker"])]
    return out[list(COLUMNS)].reset_index(drop=True)


def split_leaks(duplicates: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    """Rows ``LEAK_COLUMNS``: each fold where a copy and its first copy are in different splits (train, val or
    test) of ``splits``; empty when no copy crosses a split."""
    where = splits[["fold", "utt_id", "split"]].astype({"utt_id": str})
    pairs = duplicates[["utt_id", "first_utt_id"]]
    first = where.rename(columns={"utt_id": "first_utt_id", "split": "first_split"})
    both = pairs.merge(where, on="utt_id").merge(first, on=["fold", "first_utt_id"])
    leaks = both[both["split"] != both["first_split"]]
    return leaks[list(LEAK_COLUMNS)].sort_values(["fold", "utt_id"]).reset_index(drop=True)


def leave_out_copies(manifest: pd.DataFrame, splits: pd.DataFrame, digests: Mapping[str, str | None], *,
                     report: str | os.PathLike | None = None,
                     strict: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(manifest, splits, duplicates)`` with the later copies of :func:`find_duplicates` left out of the manifest
    and the splits (the first copy stays where it was).

    ``report``: a CSV path for the duplicates, with a ``leak_folds`` column (the folds where the two copies lie in
    different splits, space-separated); written even when there are none. ``strict``: a copy in another split
    than its first copy raises :class:`DuplicateAudioError` naming both files; otherwise a warning counts the
    copies left out.
    """
    duplicates = find_duplicates(manifest, digests)
    leaks = split_leaks(duplicates, splits)
    if report is not None:
        _write_report(duplicates, leaks, Path(report))
    if strict and len(leaks):
        raise DuplicateAudioError(_leak_message(leaks, duplicates))
    if duplicates.empty:
        return manifest, splits, duplicates
    where = f" (listed in {report})" if report is not None else ""
    warnings.warn(f"{len(duplicates)} file(s) are byte-identical copies of another file "
                  f"({(duplicates['kind'] == KINDS[1]).sum()} across speakers, {len(leaks)} fold/split crossing(s)); "
                  f"the later copies are left out of the manifest, task and splits{where}", stacklevel=2)
    copies = set(duplicates["utt_id"])
    kept_manifest = manifest[~manifest["utt_id"].astype(str).isin(copies)].reset_index(drop=True)
    kept_splits = splits[~splits["utt_id"].astype(str).isin(copies)].reset_index(drop=True)
    kept_manifest.attrs, kept_splits.attrs = dict(manifest.attrs), dict(splits.attrs)
    return kept_manifest, kept_splits, duplicates


def _write_report(duplicates: pd.DataFrame, leaks: pd.DataFrame, path: Path) -> None:
    folds = leaks.groupby("utt_id")["fold"].apply(lambda f: " ".join(str(v) for v in sorted(set(f))))
    table = duplicates.assign(leak_folds=duplicates["utt_id"].map(folds).fillna(""))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _leak_message(leaks: pd.DataFrame, duplicates: pd.DataFrame) -> str:
    paths = duplicates.set_index("utt_id")
    shown = []
    for pair in leaks.drop_duplicates("utt_id").head(_SHOWN).itertuples():
        row = paths.loc[pair.utt_id]
        shown.append(f"{row['path']} ({pair.utt_id}, {pair.split} in fold {pair.fold}) has the same bytes as "
                     f"{row['first_path']} ({pair.first_utt_id}, {pair.first_split})")
    more = f"; ... ({leaks['utt_id'].nunique()} copies in all)" if leaks["utt_id"].nunique() > _SHOWN else ""
    return "duplicate audio across splits: " + "; ".join(shown) + more
