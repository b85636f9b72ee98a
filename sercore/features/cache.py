"""Feature cache: extract a view's features for a manifest once, read them back memory-mapped.

An entry lives in ``<root>/<view>/<key>/`` (root: ``cache_root`` or ``cache_dir()/features``). The key hashes
the manifest rows (utt_id, path and a digest of the file's bytes), the view's name, params and version, the
versions of the packages that compute the view (``view.packages``) and read the audio, and the audio options,
so a change to any of them is a miss. File digests are remembered in ``<root>/file-digests.sqlite`` by size,
mtime, ctime and inode (``sercore.core.digests``), so a rerun does not hash the corpus again.

Extraction holds a file lock ``<key>.lock`` beside the entry: processes that fill the same entry wait for each
other, and the later ones find it complete. It writes one ``chunks/chunk-NNNNN.npz`` per chunk of utterances
(atomically), so a killed run resumes from its finished chunks. When every chunk is done they are merged into
``data.npy`` (float16; variable-length views: all frames back to back ``[sum T, *frame]``), ``lengths.npy``
(variable views), ``ids.npy`` and, last, ``meta.json``: a folder without ``meta.json`` is not complete.
``meta.json`` records the shape, dtype, size and digest of each file; every load checks sizes, shapes and the
ids/lengths digests, and the data digest whenever ``data.npy`` changed since it was last verified. An entry
that fails is moved aside (``<key>.corrupt-<time>``) with a warning naming the file, and extracted again.
CPU-bound views (``view.parallel``) run in a process pool over chunks; model views run in this process on
length-sorted batches through ``view.extract_batch``.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import sys
import warnings
from datetime import datetime, timezone
from functools import partial
from importlib import metadata
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from sercore.core.atomic import atomic_path, atomic_write_json
from sercore.data.audio import AudioError, load_audio
from sercore.features.entry import (DIGESTS, CacheCorrupt, describe, entry_lock, load_cached, load_sound,  # noqa: F401
                                 save_described)
from sercore.core.config import cache_dir, usable_cores
from sercore.core.digests import DigestMemo
from sercore.engine import Engine, Job, LocalEngine
from sercore.features.featureset import FeatureSet

FLOAT16_MAX = float(np.finfo(np.float16).max)
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


def _key(rows, view, audio_kw: dict) -> str:
    payload = {"rows": rows, "view": view.name, "params": view.params, "version": view.version,
               "audio": audio_kw, "packages": package_versions(getattr(view, "packages", ())),
               "audio_packages": package_versions(AUDIO_PACKAGES)}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _folder(rows, view, root: Path, audio_kw: dict) -> Path:
    return root / view.name / _key(rows, view, audio_kw)


def cache_path(manifest: pd.DataFrame, view, *, cache_root=None, audio_kw: dict | None = None) -> Path:
    """Folder of the cache entry of ``view`` on ``manifest`` (whether or not it exists yet)."""
    root = _root(cache_root)
    return _folder(_rows(manifest, root), view, root, dict(audio_kw or {}))


def cache_info(manifest: pd.DataFrame, view, *, cache_root=None, audio_kw: dict | None = None,
               chunk_size: int | None = None) -> dict:
    """State of an entry: ``folder``, ``complete``, ``chunks_done``/``chunks_total`` (while partial), ``bytes``."""
    root = _root(cache_root)
    rows = _rows(manifest, root)
    folder = _folder(rows, view, root, dict(audio_kw or {}))
    size = _chunk_size(view, chunk_size)
    files = list(folder.rglob("*")) if folder.exists() else []
    return {"folder": str(folder), "complete": (folder / "meta.json").is_file(),
            "chunks_done": len(list((folder / "chunks").glob("chunk-*.npz"))) if folder.exists() else 0,
            "chunks_total": -(-len(rows) // size), "utterances": len(rows),
            "bytes": sum(f.stat().st_size for f in files if f.is_file())}


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
    """Extract one chunk of ``(utt_id, path, size)`` rows and write it atomically; returns its row count."""
    waves, kept, skipped = [], [], []
    for utt, path, _ in rows:
        try:
            waves.append(load_audio(path, **audio_kw))
            kept.append((utt, path))
        except AudioError as err:
            if on_error == "raise":
                raise
            skipped.append({"utt_id": utt, "path": path, "reason": err.reason})
    if on_progress and skipped:
        on_progress(len(skipped))
    feats, ids, frame_shape = [], [], None
    feats_in = _run_view(view, waves, [p for _, p in kept], batch_size, on_progress)
    for (utt, path), feat in zip(kept, feats_in):
        try:
            if isinstance(feat, FeatureError):
                raise feat
            feat = _check_feature(feat, view, path, frame_shape)
        except FeatureError as err:
            if on_error == "raise":
                raise
            skipped.append({"utt_id": utt, "path": path, "reason": err.reason})
            continue
        frame_shape = feat.shape[1:] if view.variable else feat.shape
        feats.append(feat)
        ids.append(utt)
    _write_chunk(out_path, view, rows, ids, feats, skipped)
    return len(rows)


def _write_chunk(path: Path, view, rows, ids, feats, skipped) -> None:
    if feats:
        data = np.concatenate(feats) if view.variable else np.stack(feats)
        if float(np.abs(data).max()) <= FLOAT16_MAX:  # else kept float32 (float16 would give inf)
            data = data.astype(np.float16)
    else:
        data = np.zeros((0,), np.float16)
    lengths = np.array([len(f) if view.variable else 1 for f in feats], dtype=np.int64)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, all_ids=np.array([r[0] for r in rows], dtype=str), ids=np.array(ids, dtype=str),
                 lengths=lengths, data=data, shape=np.array(data.shape, dtype=np.int64),
                 dtype=np.array(data.dtype.name), skipped=np.array(json.dumps(skipped)))


def _chunk_ok(path: Path, rows) -> bool:
    """True when ``path`` is a readable chunk for exactly these rows (else it is redone)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return list(z["all_ids"]) == [r[0] for r in rows]
    except Exception:  # unreadable leftovers are simply recomputed
        return False


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


# ---------------------------------------------------------------- consolidation and reading

def _consolidate(folder: Path, view, chunk_paths: list[Path], rows) -> None:
    """Merge the chunk files into the entry's final files, one chunk in memory at a time."""
    ids, lengths, skipped, shapes, dtypes = [], [], [], [], []
    for p in chunk_paths:
        with np.load(p, allow_pickle=False) as z:
            ids.append(z["ids"])
            lengths.append(z["lengths"])
            skipped += json.loads(str(z["skipped"]))
            if len(z["ids"]):
                shapes.append(tuple(int(n) for n in z["shape"]))
                dtypes.append(str(z["dtype"]))
    ids, lengths = np.concatenate(ids), np.concatenate(lengths)
    if len(ids) == 0:
        raise AudioError(rows[0][1] if len(rows) == 1 else f"{len(rows)} files",
                         f"no utterance could be used for view {view.name}: {_summary(skipped)}")
    if len({s[1:] for s in shapes}) > 1:  # a view bug: one file's features differ from another's
        raise ValueError(f"view {view.name} returned different feature shapes across files: {set(shapes)}")
    dtype = np.float16 if set(dtypes) == {"float16"} else np.float32
    shape = (sum(s[0] for s in shapes), *shapes[0][1:])
    files = {"data.npy": _write_data(folder / "data.npy", chunk_paths, shape, dtype),
             "ids.npy": save_described(folder / "ids.npy", ids)}
    if view.variable:
        files["lengths.npy"] = save_described(folder / "lengths.npy", lengths)
    meta = {"view": view.name, "params": view.params, "version": view.version, "provenance": view.provenance(),
            "encoder": getattr(view, "encoder", None), "variable": bool(view.variable),
            "dtype": np.dtype(dtype).name, "shape": list(shape), "n": int(len(ids)), "key": folder.name,
            "packages": package_versions((*getattr(view, "packages", ()), *AUDIO_PACKAGES)), "files": files,
            "skipped": skipped, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    atomic_write_json(folder / "meta.json", meta)  # last: its presence marks the entry complete
    shutil.rmtree(folder / "chunks", ignore_errors=True)


def _write_data(target: Path, chunk_paths: list[Path], shape: tuple, dtype) -> dict:
    """``data.npy`` of ``shape`` written chunk by chunk with plain writes (a memory map of the output would keep
    every written page in this process's resident memory until the end)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    written = 0
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            np.lib.format.write_array_header_2_0(f, header)
            for p in chunk_paths:
                with np.load(p, allow_pickle=False) as z:
                    if len(z["ids"]):
                        data = np.ascontiguousarray(z["data"], dtype=dtype)
                        f.write(data.tobytes())
                        written += len(data)
        if written != shape[0]:
            raise ValueError(f"{target}: wrote {written} rows of the {shape[0]} the chunks announced")
    return describe(target)


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


def _extract(rows, view, folder: Path, *, chunk_size: int, workers, engine, progress: bool, view_factory,
             kw) -> None:
    """Extract the chunks not finished yet (in worker processes or here), then consolidate them."""
    chunks = [rows[i:i + chunk_size] for i in range(0, len(rows), chunk_size)]
    paths = [folder / "chunks" / f"chunk-{i:05d}.npz" for i in range(len(chunks))]
    (folder / "chunks").mkdir(parents=True, exist_ok=True)
    todo = [(c, p) for c, p in zip(chunks, paths) if not (p.is_file() and _chunk_ok(p, c))]
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
    _consolidate(folder, view, paths, rows)


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
    """Features of ``view`` for every utterance of ``manifest``, from the cache or extracted into it.

    ``workers``: processes for views with ``parallel = True`` (default: the usable cores); each gets its own
    copy of ``view`` by pickling, or ``view_factory(view.name, **view.params)`` when given (e.g.
    ``sercore.views.get_view``). Other views run
    here with ``extract_batch`` on length-sorted batches of ``batch_size``. ``on_error="raise"`` raises the
    ``AudioError`` of the first bad file; ``"skip"`` leaves bad files out (listed in ``meta["skipped"]``)
    and warns. ``chunk_size``: utterances per resumable chunk (default 64, 16 for variable-length views).
    ``audio_kw``: options of ``load_audio`` (part of the key). ``engine`` (e.g. a Ray engine, whose workers must
    see the cache folder and the audio) runs the chunks as its jobs, whatever the view. Returns a memory-mapped ``FeatureSet``.
    Processes that need the same entry wait for the one filling it (file lock); an entry that fails its check
    is moved aside with a warning naming the file, and extracted again.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"extract_features: on_error must be 'raise' or 'skip', got {on_error!r}")
    audio_kw = dict(audio_kw or {})
    root = _root(cache_root)
    rows = _rows(manifest, root)
    folder = _folder(rows, view, root, audio_kw)
    fs = load_sound(folder, locked=False)
    if fs is None:
        with entry_lock(folder, progress):
            fs = load_sound(folder, locked=True)  # another process may have filled it meanwhile
            if fs is None:
                _say_disk_estimate(view, manifest, progress)
                _extract(rows, view, folder, chunk_size=_chunk_size(view, chunk_size), workers=workers, engine=engine,
                         progress=progress, view_factory=view_factory,
                         kw={"on_error": on_error, "batch_size": batch_size, "audio_kw": audio_kw})
                fs = load_cached(folder, verify_data=False)  # just written under the lock
    _report_skipped(fs, on_error, len(rows))
    return fs
