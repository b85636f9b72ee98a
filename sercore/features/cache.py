"""Feature extraction into the feature store (``sercore.features.store``): each utterance once per view.

``extract_features(manifest, view)`` hashes every file's bytes (remembered in ``<root>/file-digests.sqlite`` by
size, mtime, ctime and inode, ``sercore.core.digests``, so a rerun does not hash the corpus again), looks the
digests up in the store folder of the view's configuration and, when all are there, assembles the FeatureSet
without touching the view. Otherwise it takes the folder's lock, extracts only the audio not stored yet (each
distinct content once, whatever its utterance ids), in chunks written atomically to ``pending/`` (a killed run
resumes from its finished chunks), merges them into a new shard, and assembles. The configuration key hashes
the view's name, params and version, the versions of the packages that compute it (``view.packages``) and read
the audio, and the audio options.
CPU-bound views (``view.parallel``) run in a process pool over chunks; model views run in this process on
length-sorted batches through ``view.extract_batch``.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
import warnings
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from sercore.core.config import cache_dir, usable_cores
from sercore.core.digests import DigestMemo
from sercore.data.audio import AudioError, load_audio
from sercore.engine import Engine, Job, LocalEngine
from sercore.features.featureset import FeatureSet
from sercore.features.store import DIGESTS, CacheCorrupt, FeatureStore, write_chunk  # noqa: F401

_SHOWN = 5  # skipped files quoted in a message
AUDIO_PACKAGES = ("soundfile", "scipy")  # read and resample the audio (sercore.data.audio)


class FeatureError(ValueError):
    """A view returned unusable features (NaN/inf, no frames) for one file: ``"<path>: <reason>"``."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


# ---------------------------------------------------------------- keys and folders

def _root(cache_root) -> Path:
    return Path(cache_root) if cache_root is not None else cache_dir() / "features"


def _rows(manifest: pd.DataFrame, root: Path) -> list[tuple[str, str, str | None]]:
    """``(utt_id, path, digest of the file's bytes)`` sorted by utt_id; digest None for a missing file."""
    for col in ("utt_id", "path"):
        if col not in manifest.columns:
            raise ValueError(f"extract_features: manifest has no {col!r} column")
    if len(manifest) == 0:
        raise ValueError("extract_features: the manifest is empty")
    dup = manifest["utt_id"][manifest["utt_id"].duplicated()]
    if len(dup):
        raise ValueError(f"extract_features: duplicate utt_id in manifest: {list(dup[:_SHOWN])}")
    paths = [str(p) for p in manifest["path"]]
    digests = DigestMemo(root / DIGESTS).digests(paths)
    return sorted((str(utt), path, digests[path]) for utt, path in zip(manifest["utt_id"], paths))


def package_versions(names) -> dict[str, str | None]:
    """Installed versions of the distributions ``names`` (None for one that is not installed)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def store_config(view, audio_kw: dict) -> dict:
    """What decides a view's stored features besides the audio: the configuration its store folder is keyed by."""
    return {"view": view.name, "params": view.params, "version": view.version, "audio": audio_kw,
            "packages": package_versions(getattr(view, "packages", ())),
            "audio_packages": package_versions(AUDIO_PACKAGES)}


def store_for(view, *, cache_root=None, audio_kw: dict | None = None) -> FeatureStore:
    """The store folder of ``view``'s configuration (``<root>/<view>/<config key>``), whether or not it exists."""
    text = json.dumps(store_config(view, dict(audio_kw or {})), sort_keys=True, default=str)
    return FeatureStore(_root(cache_root) / view.name / hashlib.sha256(text.encode()).hexdigest()[:24])


def cache_path(manifest: pd.DataFrame, view, *, cache_root=None, audio_kw: dict | None = None) -> Path:
    """Folder of the store that holds ``view``'s features (the manifest does not decide it)."""
    return store_for(view, cache_root=cache_root, audio_kw=audio_kw).folder


def cache_info(manifest: pd.DataFrame, view, *, cache_root=None, audio_kw: dict | None = None) -> dict:
    """What the store holds of ``manifest`` for ``view``: ``folder``, ``utterances``, ``stored`` and ``skipped``
    (distinct audio contents found in the store), ``missing``, ``pending`` (finished chunks not merged yet),
    ``complete``, and ``bytes``: the size of the store folder's shards (all its utterances, not only these)."""
    store = store_for(view, cache_root=cache_root, audio_kw=audio_kw)
    digests = {d for _, _, d in _rows(manifest, _root(cache_root)) if d}
    items, skipped = store.lookup(digests) if store.folder.is_dir() else ({}, {})
    missing = len(digests) - len(items) - len(skipped)
    return {"folder": str(store.folder), "utterances": len(manifest), "stored": len(items), "skipped": len(skipped),
            "missing": missing, "pending": len(list((store.folder / "pending").glob("chunk-*.npz"))),
            "complete": missing == 0,
            "bytes": sum(p.stat().st_size for p in (store.folder / "shards").glob("*.npy"))}


def _chunk_size(view, chunk_size: int | None) -> int:
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"extract_features: chunk_size must be >= 1, got {chunk_size}")
        return int(chunk_size)
    return 16 if view.variable else 64  # variable views (frame sequences) weigh far more per utterance


# ---------------------------------------------------------------- one chunk

def _check_feature(feat, view, path: str, frame_shape) -> np.ndarray:
    feat = np.asarray(feat, dtype=np.float32)
    if view.variable and (feat.ndim == 0 or feat.shape[0] == 0):
        raise FeatureError(path, f"view {view.name} returned no frames (shape {feat.shape})")
    if not np.isfinite(feat).all():
        raise FeatureError(path, f"view {view.name} returned NaN/inf features")
    shape = feat.shape[1:] if view.variable else feat.shape
    if frame_shape is not None and shape != frame_shape:  # a view bug, never skipped
        raise ValueError(f"{path}: view {view.name} returned shape {feat.shape}, other files gave {frame_shape}")
    return feat


def _run_view(view, waves: list[np.ndarray], paths: list[str], batch_size: int, on_progress) -> list:
    """``view.extract_batch`` on length-sorted batches (less padding for batched models), in input order.

    A batch failing with ``ValueError`` (the views' error for unusable input) is redone one file at a time,
    so the failure becomes a ``FeatureError`` naming its file instead of losing the batch.
    """
    order = np.argsort([len(w) for w in waves], kind="stable")
    out = [None] * len(waves)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        try:
            feats = view.extract_batch([waves[i] for i in idx])
            if len(feats) != len(idx):
                raise RuntimeError(f"view {view.name}: extract_batch returned {len(feats)} results for {len(idx)}")
        except ValueError:
            feats = [_extract_one(view, waves[i], paths[i]) for i in idx]
        for i, feat in zip(idx, feats):
            out[i] = feat
        if on_progress:
            on_progress(len(idx))
    return out


def _extract_one(view, wave: np.ndarray, path: str):
    try:
        return view.extract(wave)
    except ValueError as err:
        return FeatureError(path, str(err))


def _process_chunk(view, rows, out_path: Path, *, on_error: str, batch_size: int, audio_kw: dict,
                   on_progress: Callable[[int], None] | None = None) -> int:
    """Extract one chunk of ``(utt_id, path, audio digest)`` rows (one per distinct audio) and write it atomically
    to ``out_path``; returns its row count."""
    waves, kept, skipped = [], [], {}
    for utt, path, digest in rows:
        try:
            waves.append(load_audio(path, **audio_kw))
            kept.append((path, digest))
        except AudioError as err:
            if on_error == "raise":
                raise
            skipped[digest] = err.reason
    if on_progress and skipped:
        on_progress(len(skipped))
    feats, keys, frame_shape = [], [], None
    feats_in = _run_view(view, waves, [p for p, _ in kept], batch_size, on_progress)
    for (path, digest), feat in zip(kept, feats_in):
        try:
            if isinstance(feat, FeatureError):
                raise feat
            feat = _check_feature(feat, view, path, frame_shape)
        except FeatureError as err:
            if on_error == "raise":
                raise
            skipped[digest] = err.reason
            continue
        frame_shape = feat.shape[1:] if view.variable else feat.shape
        feats.append(feat)
        keys.append(digest)
    provenance = view.provenance() if feats else None
    write_chunk(Path(out_path), [d for _, _, d in rows], keys, feats, skipped, provenance, bool(view.variable))
    return len(rows)


# ---------------------------------------------------------------- worker processes

_WORKER_VIEWS: dict = {}  # per worker process: views built so far, by key


def _init_worker(key: str, build: Callable, version: str):
    """The view of ``key`` in this worker process, built once by ``build()`` and checked against ``version``."""
    if key not in _WORKER_VIEWS:
        view = build()
        if view.version != version:
            raise RuntimeError(f"view {view.name} built in a worker has version {view.version}, expected {version}")
        _WORKER_VIEWS[key] = view
    return _WORKER_VIEWS[key]


def _worker_builder(view, view_factory) -> Callable:
    """How a worker gets its own view: ``view_factory(name, **params)``, or a copy of ``view`` by pickling
    (views drop their loaded models when pickled, so each worker loads its own)."""
    if view_factory is not None:
        return partial(view_factory, view.name, **view.params)
    try:
        return partial(pickle.loads, pickle.dumps(view))
    except Exception as err:
        raise TypeError(f"view {view.name} cannot be sent to worker processes ({type(err).__name__}: {err}); "
                        "pass view_factory=sercore.views.get_view or workers=1") from None


@dataclass
class ExtractChunkJob(Job):
    """One chunk of feature extraction into ``out_path`` → its row count. ``build()`` makes the view; a worker
    builds it once per ``key`` and reuses it for the following chunks."""

    key: str
    build: Callable
    version: str
    rows: list
    out_path: Any
    kw: dict

    def cost(self) -> float:
        return float(len(self.rows))

    def run(self, features=None) -> int:
        return _process_chunk(_init_worker(self.key, self.build, self.version), self.rows, self.out_path, **self.kw)


def _run_pool(view, todo, view_factory, engine: Engine, kw: dict, make_bar) -> None:
    """Extract the chunks ``todo`` as jobs of ``engine`` (one view per worker; on Ray the chunk files are written
    where every node sees the cache)."""
    build, key = _worker_builder(view, view_factory), json.dumps([view.name, view.params, view.version],
                                                                  sort_keys=True, default=str)
    jobs = [ExtractChunkJob(key, build, view.version, rows, path, kw) for rows, path in todo]
    bar = []

    def done(_, outcome):  # the bar opens after the workers started: no tqdm thread is copied into them
        if not bar:
            bar.append(make_bar())
        bar[0].update(outcome.value)

    try:
        engine.map(jobs, on_done=done)
    finally:
        if bar:
            bar[0].close()


# ---------------------------------------------------------------- extraction and reading

def _summary(skipped: list[dict]) -> str:
    shown = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped[:_SHOWN])
    return shown + (f" ... ({len(skipped)} in all)" if len(skipped) > _SHOWN else "")


def _report_skipped(fs: FeatureSet, on_error: str, n_rows: int) -> None:
    skipped = fs.meta.get("skipped", [])
    if not skipped:
        return
    if on_error == "raise":
        first = skipped[0]
        more = f" (and {len(skipped) - 1} more; on_error='skip' drops them)" if len(skipped) > 1 else ""
        raise AudioError(first["path"], first["reason"] + more)
    warnings.warn(f"extract_features: view {fs.meta['view']} skipped {len(skipped)} of {n_rows} utterances "
                  f"(listed in meta['skipped']): {_summary(skipped)}", stacklevel=3)


def _extract(rows, view, store: FeatureStore, *, chunk_size: int, workers, engine, progress: bool, view_factory,
             kw) -> None:
    """Extract ``rows`` (one per distinct audio) in chunks to the store's ``pending/`` (in worker processes or
    here), skipping chunks a killed run finished, then merge them into a shard."""
    chunks = [rows[i:i + chunk_size] for i in range(0, len(rows), chunk_size)]
    paths = [store.pending_path([d for _, _, d in c]) for c in chunks]
    todo = [(c, p) for c, p in zip(chunks, paths) if not p.is_file()]
    n_workers = min(workers if workers is not None else usable_cores(), len(todo))
    done = len(rows) - sum(len(c) for c, _ in todo)

    def make_bar():
        return tqdm(total=len(rows), initial=done, desc=f"features {view.name}", unit="utt", disable=not progress)

    if engine is not None or (getattr(view, "parallel", False) and n_workers > 1):
        _run_pool(view, todo, view_factory, engine or LocalEngine(n_workers, backend="process"), kw, make_bar)
    else:
        with make_bar() as bar:
            for c, p in todo:
                _process_chunk(view, c, p, on_progress=bar.update, **kw)
    store.merge_pending(bool(view.variable))


def _assemble(store: FeatureStore, rows, *, locked: bool) -> FeatureSet | None:
    """The stored FeatureSet of ``rows``, or None while something is missing. Holding the lock, damaged shards
    (or a damaged index) are moved aside with a warning and None returned; without it, damage reads as a miss
    and the caller retries under the lock."""
    if not (store.folder / "index.sqlite").is_file():
        return None
    try:
        return store.assemble(rows, repair=locked)
    except CacheCorrupt as err:
        if not locked:
            return None
        store.set_aside(err)  # the index itself
        return None


def _missing(store: FeatureStore, rows) -> list:
    """One row per distinct audio content that the store neither holds nor has skipped, in utt_id order."""
    items, skipped = store.lookup(d for _, _, d in rows if d)
    out, seen = [], set()
    for row in rows:
        digest = row[2]
        if digest and digest not in items and digest not in skipped and digest not in seen:
            seen.add(digest)
            out.append(row)
    return out


# ---------------------------------------------------------------- entry point

def _say_disk_estimate(view, manifest: pd.DataFrame, progress: bool) -> None:
    """Before a large extraction (views that know their size, e.g. wav2vec2's layers), print the disk it takes."""
    if progress and hasattr(view, "disk_note"):
        seconds = pd.to_numeric(manifest.get("duration"), errors="coerce") if "duration" in manifest else None
        total = float(seconds.sum()) if seconds is not None and seconds.notna().any() else None
        print(view.disk_note(total), file=sys.stderr, flush=True)


def extract_features(manifest: pd.DataFrame, view, *, cache_root=None, workers: int | None = None,
                     on_error: str = "raise", progress: bool = True, chunk_size: int | None = None,
                     batch_size: int = 8, view_factory: Callable | None = None,
                     audio_kw: dict | None = None, engine: Engine | None = None) -> FeatureSet:
    """Features of ``view`` for every utterance of ``manifest``, from the feature store, extracting only the
    audio it does not hold yet (each distinct audio content once).

    ``workers``: processes for views with ``parallel = True`` (default: the usable cores); each gets its own
    copy of ``view`` by pickling, or ``view_factory(view.name, **view.params)`` when given (e.g.
    ``sercore.views.get_view``). Other views run
    here with ``extract_batch`` on length-sorted batches of ``batch_size``. ``on_error="raise"`` raises the
    ``AudioError`` of the first bad file; ``"skip"`` leaves bad files out (listed in ``meta["skipped"]``)
    and warns. ``chunk_size``: utterances per resumable chunk (default 64, 16 for variable-length views).
    ``audio_kw``: options of ``load_audio`` (part of the key). ``engine`` (e.g. a Ray engine, whose workers must
    see the cache folder and the audio) runs the chunks as its jobs, whatever the view. Returns a ``FeatureSet`` over
    the store's memory-mapped shards (fixed-length views: read into memory). Processes that extract into the
    same store folder wait for each other (file lock); a shard that fails its check is moved aside with a warning
    naming the file, and its utterances are extracted again.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"extract_features: on_error must be 'raise' or 'skip', got {on_error!r}")
    audio_kw = dict(audio_kw or {})
    root = _root(cache_root)
    rows = _rows(manifest, root)
    if on_error == "raise":
        for _, path, digest in rows:
            if digest is None:
                load_audio(path, **audio_kw)  # raises the AudioError naming the file
    store = store_for(view, cache_root=root, audio_kw=audio_kw)
    fs = _assemble(store, rows, locked=False)
    if fs is None:
        config = {**store_config(view, audio_kw), "encoder": getattr(view, "encoder", None),
                  "variable": bool(view.variable)}
        with store.lock(progress):
            if any((store.folder / "pending").glob("chunk-*.npz")):
                store.merge_pending(bool(view.variable))  # what a killed run finished
            for _ in range(5):  # each round extracts what is missing, or sets a damaged shard aside
                store.write_config(config)  # (again after a damaged index moved the folder aside)
                fs = _assemble(store, rows, locked=True)
                if fs is not None:
                    break
                todo = _missing(store, rows)
                if todo:
                    _say_disk_estimate(view, manifest, progress)
                    _extract(todo, view, store, chunk_size=_chunk_size(view, chunk_size), workers=workers,
                             engine=engine, progress=progress, view_factory=view_factory,
                             kw={"on_error": on_error, "batch_size": batch_size, "audio_kw": audio_kw})
            if fs is None:
                raise CacheCorrupt(store.folder, "the store could not be repaired (see the warnings above)")
    _report_skipped(fs, on_error, len(rows))
    if len(fs) == 0:
        raise AudioError(rows[0][1] if len(rows) == 1 else f"{len(rows)} files",
                         f"no utterance could be used for view {view.name}: {_summary(fs.meta['skipped'])}")
    return fs
