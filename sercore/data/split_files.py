"""Splits read in and written out: the suite's own ``splits.csv`` and EmoBox's fold files (issue 33).

**Reading** (:func:`read_splits`): ``path`` is either a CSV in the suite's format (``fold, utt_id, speaker, group,
split``, as ``save_splits`` writes it; ``speaker`` and ``group`` may be left out) or a folder of EmoBox fold files
``fold_<k>/<dataset>_{train,valid,test}_fold_<k>.jsonl`` (one JSON object per line; the utterance is named by
``key``, or by ``wav``/``path``; EmoBox's ``emo``/``label`` and its 1-based fold numbers: fold_1 becomes our
fold 0). EmoBox's files carry no speaker: speakers come from the manifest. A line is matched to the manifest by
``key`` (``utt_id``, or ``<dataset>-<utt_id>``), else by the audio path (same file name stem, or a path ending
like it).

Checked like ours: every utterance must be known to the manifest, none may be twice in a fold, and every fold
needs a test and a training part. A fold without validation (EmoBox ships ``valid`` files for few corpora) gets
one drawn like ours: with three or more training speakers, ``val_fraction`` of them (at least one, seeded), so
validation speakers are unseen in training; otherwise a stratified ``val_fraction`` of the training utterances
(speaker-dependent validation). A split whose test speakers also appear in training is *not* refused: it runs,
and ``describe_splits`` — hence every caption, ``params.json``, table column ``speaker_dependent`` and the
benchmark page — labels it speaker-dependent.

**Writing** (:func:`export_emobox`): our folds as EmoBox fold files (fold f → ``fold_<f+1>``, with ``valid``
files, so reading them back gives the same splits).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from sercore.data.splits import SPLIT_COLUMNS, SPLITS, check_split_columns, natural_key, stratified_val

EMOBOX_SPLITS = {"train": "train", "valid": "val", "test": "test"}


class SplitFileError(ValueError):
    """A splits file that cannot be used: the message names the file and the problem."""


def read_splits(path: str | os.PathLike, manifest: pd.DataFrame, *, dataset: str | None = None,
                val_fraction: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """The splits table (``SPLIT_COLUMNS``) of a ``splits.csv`` or an EmoBox fold folder, checked against
    ``manifest``; ``attrs``: ``scheme`` (``"splits from <file>"``, ``"EmoBox fold files from <folder>/"``),
    ``n_folds``, ``speaker_dependent_val``, ``speaker_dependent_test``, ``source``. Raises :class:`SplitFileError`
    naming the problem."""
    path = Path(path).expanduser()
    if path.is_dir():
        raw = _read_emobox(path, dataset)
    elif path.is_file():
        raw = _read_csv(path)
    else:
        raise SplitFileError(f"{path}: no such splits file or fold folder")
    table = _attach(raw, manifest, path, dataset)
    table = _with_validation(table, manifest, val_fraction, seed)
    table = table.sort_values(["fold", "utt_id"], kind="stable").reset_index(drop=True)[list(SPLIT_COLUMNS)]
    check_split_columns(table, str(path))
    scheme = f"EmoBox fold files from {path.name}/" if path.is_dir() else f"splits from {path.name}"
    table.attrs.update(scheme=scheme, n_folds=int(table["fold"].nunique()), source=str(path),
                       speaker_dependent_val=_shared(table, "val"), speaker_dependent_test=_shared(table, "test"))
    return table


def _read_csv(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("fold", "utt_id", "split") if c not in df.columns]
    if missing:
        raise SplitFileError(f"{path}: lacks column(s) {missing}; expected {list(SPLIT_COLUMNS)} (as save_splits "
                             "writes them) or an EmoBox fold folder")
    try:
        df["fold"] = df["fold"].astype(int)
    except ValueError as err:
        raise SplitFileError(f"{path}: column 'fold' must hold integers ({err})") from None
    bad = sorted(set(df["split"]) - set(SPLITS))
    if bad:
        raise SplitFileError(f"{path}: unknown split value(s) {bad}; expected {SPLITS}")
    return df.assign(match=df["utt_id"], wav="")


def _read_emobox(folder: Path, dataset: str | None) -> pd.DataFrame:
    rows = []
    fold_dirs = sorted((d for d in folder.iterdir() if d.is_dir() and d.name.startswith("fold")),
                       key=lambda d: natural_key(d.name))
    for fold_dir in fold_dirs:
        k = "".join(ch for ch in fold_dir.name if ch.isdigit())
        if not k:
            continue
        for part, split in EMOBOX_SPLITS.items():
            files = sorted(fold_dir.glob(f"*_{part}_fold_{k}.jsonl"))
            if dataset is not None:
                files = [f for f in files if f.name == f"{dataset}_{part}_fold_{k}.jsonl"] or files
            for file in files[:1]:
                for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
                    if not line.strip():
                        continue
                    try:
                        item = json.loads(line)
                    except ValueError as err:
                        raise SplitFileError(f"{file}:{n}: not a JSON line ({err})") from None
                    key = item.get("key") or item.get("utt_id")
                    wav = item.get("wav") or item.get("path") or ""
                    if not key and not wav:
                        raise SplitFileError(f"{file}:{n}: a line without 'key' or 'wav'")
                    rows.append(dict(fold=int(k) - 1, split=split, match=str(key or ""), wav=str(wav)))
    if not rows:
        raise SplitFileError(f"{folder}: no EmoBox fold files; expected fold_<k>/<dataset>_train_fold_<k>.jsonl "
                             "and <dataset>_test_fold_<k>.jsonl (k = 1, 2, ...)")
    return pd.DataFrame(rows)


def _attach(raw: pd.DataFrame, manifest: pd.DataFrame, path: Path, dataset: str | None) -> pd.DataFrame:
    """``raw`` with ``utt_id`` resolved against the manifest and ``speaker``/``group`` from it."""
    ids = manifest["utt_id"].astype(str)
    known = set(ids)
    paths = manifest["path"].astype(str) if "path" in manifest.columns else pd.Series("", index=manifest.index)
    by_stem = {}
    for utt, p in zip(ids, paths):
        by_stem.setdefault(Path(p).stem, []).append(utt)
    prefixes = [f"{dataset}-", f"{dataset}_"] if dataset else []

    def resolve(key: str, wav: str) -> str | None:
        if key in known:
            return key
        for prefix in prefixes:
            if key.startswith(prefix) and key[len(prefix):] in known:
                return key[len(prefix):]
        if wav:
            hits = by_stem.get(Path(wav).stem, [])
            if len(hits) == 1:
                return hits[0]
            ending = [u for u in hits if paths[ids == u].iloc[0].replace(os.sep, "/").endswith(wav.lstrip("./"))]
            if len(ending) == 1:
                return ending[0]
        return None

    raw = raw.copy()
    raw["utt_id"] = [resolve(k, w) for k, w in zip(raw["match"], raw["wav"])]
    unknown = raw.loc[raw["utt_id"].isna(), "match"].where(lambda s: s != "", raw["wav"]).tolist()
    if unknown:
        shown = ", ".join(map(str, unknown[:5])) + (f", ... ({len(unknown)} in all)" if len(unknown) > 5 else "")
        raise SplitFileError(f"{path}: {len(unknown)} utterance(s) not in the manifest (or their audio was skipped): "
                             f"{shown}")
    twice = raw[raw.duplicated(["fold", "utt_id"], keep=False)]
    if len(twice):
        fold = int(twice["fold"].iloc[0])
        raise SplitFileError(f"{path}: fold {fold}: utterance(s) {sorted(set(twice['utt_id']))[:5]} listed more "
                             "than once")
    speaker = dict(zip(ids, manifest["speaker"].astype(str)))
    raw["speaker"] = raw["utt_id"].map(speaker)
    if "group" not in raw.columns or (raw["group"] == "").all():
        raw["group"] = ["test" if s == "test" else "rest" for s in raw["split"]]
    for fold, part in raw.groupby("fold"):
        missing = [s for s in ("train", "test") if not (part["split"] == s).any()]
        if missing:
            raise SplitFileError(f"{path}: fold {fold} has no {' and no '.join(missing)} utterances")
    return raw


def _with_validation(table: pd.DataFrame, manifest: pd.DataFrame, val_fraction: float, seed: int) -> pd.DataFrame:
    """Folds without a ``val`` part get one (see the module's docstring)."""
    emotion = dict(zip(manifest["utt_id"].astype(str),
                       manifest["emotion"].astype(str) if "emotion" in manifest.columns else [""] * len(manifest)))
    parts = []
    for fold, part in table.groupby("fold", sort=True):
        part = part.copy()
        if not (part["split"] == "val").any():
            train = part[part["split"] == "train"]
            speakers = sorted(train["speaker"].unique(), key=natural_key)
            rng = np.random.default_rng([seed, int(fold)])
            if len(speakers) >= 3:
                n = min(len(speakers) - 1, max(1, math.ceil(val_fraction * len(speakers))))
                chosen = set(rng.permutation(np.array(speakers, dtype=object))[:n])
                part.loc[train.index[train["speaker"].isin(chosen)], "split"] = "val"
            else:
                strata = train.assign(stratum=train["utt_id"].map(emotion)).reset_index()
                mask = stratified_val(strata, val_fraction, rng)
                part.loc[strata.loc[mask, "index"].to_numpy(), "split"] = "val"
        parts.append(part)
    return pd.concat(parts)


def _shared(table: pd.DataFrame, split: str) -> bool:
    """True when, in some fold, a speaker of ``split`` also has utterances in training."""
    for _, part in table.groupby("fold"):
        if set(part.loc[part["split"] == split, "speaker"]) & set(part.loc[part["split"] == "train", "speaker"]):
            return True
    return False


def export_emobox(splits: pd.DataFrame, manifest: pd.DataFrame, folder: str | os.PathLike, dataset: str) -> list[Path]:
    """Write ``splits`` as EmoBox fold files under ``folder``: ``fold_<f+1>/<dataset>_{train,valid,test}_fold_<f+1>
    .jsonl``, one line per utterance with ``key`` (the utt_id), ``dataset``, ``wav`` (its path), ``emo``, ``speaker``,
    ``length`` (seconds, when known), ``type: raw``, ``task: category``. Returns the files written."""
    check_split_columns(splits, "export_emobox")
    info = manifest.assign(utt_id=manifest["utt_id"].astype(str)).set_index("utt_id")
    folder = Path(folder)
    written = []
    for fold, part in splits.groupby("fold", sort=True):
        k = int(fold) + 1
        out = folder / f"fold_{k}"
        out.mkdir(parents=True, exist_ok=True)
        for name, split in EMOBOX_SPLITS.items():
            rows = part[part["split"] == split]
            lines = []
            for utt in rows["utt_id"].astype(str):
                row = info.loc[utt]
                item = {"key": utt, "dataset": dataset, "wav": str(row.get("path", "")), "type": "raw",
                        "task": "category", "emo": str(row.get("emotion", "")), "speaker": str(row["speaker"])}
                duration = row.get("duration")
                if duration is not None and pd.notna(duration):
                    item["length"] = float(duration)
                lines.append(json.dumps(item, ensure_ascii=False))
            path = out / f"{dataset}_{name}_fold_{k}.jsonl"
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            os.replace(tmp, path)
            written.append(path)
    return written
