"""One feature-cache entry on disk: its integrity check, loading, moving a corrupt entry aside, its lock.

``meta.json`` lists ``files``: ``{name: {"bytes", "blake2b"}}`` for ``data.npy``, ``ids.npy`` and (variable
views) ``lengths.npy``, plus the data ``shape`` and ``dtype``. Sizes, shapes and the ids/lengths digests are
checked on every load (cheap); the data digest through the cache root's digest memo, so ``data.npy`` is read
again only when its size, mtime, ctime or inode changed since it was last verified.
"""

from __future__ import annotations

import json
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from sercore.core.atomic import atomic_save_npy
from sercore.core.digests import DigestMemo, file_digest
from sercore.features.featureset import FeatureSet

DIGESTS = "file-digests.sqlite"  # memo of file digests, in the cache root


class CacheCorrupt(ValueError):
    """A cache entry failed its check: ``"<file>: <problem>"``."""


def describe(path: Path) -> dict:
    """``{"bytes", "blake2b"}`` of a file, as ``meta.json`` records it."""
    return {"bytes": path.stat().st_size, "blake2b": file_digest(path)}


def save_described(path: Path, array: np.ndarray) -> dict:
    """Save ``array`` atomically to ``path`` and return its ``describe``."""
    atomic_save_npy(path, array)
    return describe(path)


def _check_files(folder: Path, meta: dict, verify_data: bool) -> None:
    """Sizes of the entry's files and digests of ids/lengths against ``meta.json``; data's digest when asked
    (remembered by size/mtime/ctime in the cache root's digest memo, so an unchanged file is not read)."""
    files = meta.get("files")
    need = {"data.npy", "ids.npy"} | ({"lengths.npy"} if meta.get("variable") else set())
    if not isinstance(files, dict) or not need <= set(files):
        raise CacheCorrupt(f"{folder / 'meta.json'}: no size and checksum of {sorted(need)} "
                           "(written by an older sercore or damaged)")
    for name in sorted(need):
        path, want = folder / name, files[name] if isinstance(files[name], dict) else {}
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise CacheCorrupt(f"{path}: missing") from None
        if size != want.get("bytes"):
            raise CacheCorrupt(f"{path}: {size} bytes, meta.json records {want.get('bytes')} (truncated or replaced)")
        if name == "data.npy" and not verify_data:
            continue
        got = DigestMemo(folder.parent.parent / DIGESTS).digest(path) if name == "data.npy" else file_digest(path)
        if got != want.get("blake2b"):
            raise CacheCorrupt(f"{path}: contents differ from the checksum in meta.json (overwritten)")


def _load_npy(path: Path, **kw) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False, **kw)
    except (ValueError, EOFError) as err:
        raise CacheCorrupt(f"{path}: unreadable ({err})") from None


@dataclass(frozen=True)
class CachedFeatures:
    """A feature-cache entry by its folder: how the job engine sends a cached FeatureSet to a worker, which
    reopens it memory-mapped (``reopen``)."""

    folder: str

    def reopen(self) -> FeatureSet:
        return load_cached(self.folder)


def load_cached(folder, *, verify_data: bool = True) -> FeatureSet:
    """The FeatureSet of a complete cache folder, ``data`` memory-mapped (nothing is read up front).

    Checks the entry against its ``meta.json`` first (file sizes, ids/lengths digests, array shapes and, with
    ``verify_data``, the data digest when ``data.npy`` changed since it was last verified) and raises
    ``CacheCorrupt`` naming the file that fails.
    """
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder}: not a complete feature-cache entry (no meta.json)")
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as err:
        raise CacheCorrupt(f"{meta_path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise CacheCorrupt(f"{meta_path}: not a JSON object")
    _check_files(folder, meta, verify_data)
    meta["folder"] = str(folder)
    data = _load_npy(folder / "data.npy", mmap_mode="r")
    if list(data.shape) != meta.get("shape") or data.dtype.name != meta.get("dtype"):
        raise CacheCorrupt(f"{folder / 'data.npy'}: shape {data.shape} {data.dtype}, meta.json records "
                           f"{meta.get('shape')} {meta.get('dtype')}")
    lengths = _load_npy(folder / "lengths.npy") if meta.get("variable") else None
    try:
        return FeatureSet(_load_npy(folder / "ids.npy"), data, lengths, meta, CachedFeatures(str(folder)))
    except ValueError as err:
        raise CacheCorrupt(f"{folder}: {err}") from None


def load_sound(folder: Path, *, locked: bool) -> FeatureSet | None:
    """The entry when complete and sound, else None. Holding the lock, a corrupt entry is moved aside
    (``<key>.corrupt-<time>``) with a warning; without it, the caller retries under the lock."""
    if not (folder / "meta.json").is_file():
        return None
    try:
        return load_cached(folder)
    except CacheCorrupt as err:
        if not locked:
            return None
        aside = folder.with_name(f"{folder.name}.corrupt-{datetime.now():%Y%m%dT%H%M%S%f}")
        folder.rename(aside)
        warnings.warn(f"feature cache: {err}; moved the entry to {aside} and extracting it again", stacklevel=3)
        return None
    except OSError:  # another process is moving the entry aside
        if locked:
            raise
        return None


@contextmanager
def entry_lock(folder: Path, progress: bool):
    """Hold ``<key>.lock`` beside the entry: one process at a time fills an entry."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{folder}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            print(f"waiting for another process filling the cache entry {folder}", file=sys.stderr)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
