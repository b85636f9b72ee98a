"""Feature cache: extract a view's features for a manifest once, read them back memory-mapped.

An entry lives in ``<root>/<view>/<key>/`` (root: ``cache_root`` or ``cache_dir()/features``). The key hashes
the manifest rows (utt_id, path, file size), the view's name, params and version and the audio options, so a
change to any of them is a miss. Extraction writes one ``chunks/chunk-NNNNN.npz`` per chunk of utterances
(tmp file + ``os.replace``), so a killed run resumes from its finished chunks. When every chunk is done they
are merged into ``data.npy`` (float16; variable-length views: all frames back to back ``[sum T, *frame]``),
``lengths.npy`` (variable views), ``ids.npy`` and, last, ``meta.json``: a folder without ``meta.json`` is not
complete. CPU-bound views (``view.parallel``) run in a process pool over chunks; model views run in this
process on length-sorted batches through ``view.extract_batch``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import pickle
import shutil
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from sercore.audio import AudioError, load_audio
from sercore.config import cache_dir
from sercore.featureset import FeatureSet

FLOAT16_MAX = float(np.finfo(np.float16).max)
_SHOWN = 5  # skipped files quoted in a message


class FeatureError(ValueError):
    """A view returned unusable features (NaN/inf, no frames) for one file: ``"<path>: <reason>"``."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


# ---------------------------------------------------------------- keys and folders

def _rows(manifest: pd.DataFrame) -> list[tuple[str, str, int]]:
    """``(utt_id, path, file size)`` sorted by utt_id; size -1 for a missing file."""
    for col in ("utt_id", "path"):
        if col not in manifest.columns:
            raise ValueError(f"extract_features: manifest has no {col!r} column")
    if len(manifest) == 0:
        raise ValueError("extract_features: the manifest is empty")
    dup = manifest["utt_id"][manifest["utt_id"].duplicated()]
    if len(dup):
        raise ValueError(f"extract_features: duplicate utt_id in manifest: {list(dup[:_SHOWN])}")
    rows = []
    for utt, path in zip(manifest["utt_id"].astype(str), manifest["path"]):
        try:
            size = os.path.getsize(path)
        except (OSError, TypeError):
            size = -1
        rows.append((utt, str(path), int(size)))
    return sorted(rows)


def _key(rows, view, audio_kw: dict) -> str:
    payload = {"rows": rows, "view": view.name, "params": view.params, "version": view.version,
               "audio": audio_kw}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _folder(rows, view, cache_root, audio_kw: dict) -> Path:
    root = Path(cache_root) if cache_root is not None else cache_dir() / "features"
    return root / view.name / _key(rows, view, audio_kw)


def cache_path(manifest: pd.DataFrame, view, *, cache_root=None, audio_kw: dict | None = None) -> Path:
    """Folder of the cache entry of ``view`` on ``manifest`` (whether or not it exists yet)."""
    return _folder(_rows(manifest), view, cache_root, dict(audio_kw or {}))


def cache_info(manifest: pd.DataFrame, view, *, cache_root=None, audio_kw: dict | None = None,
               chunk_size: int | None = None) -> dict:
    """State of an entry: ``folder``, ``complete``, ``chunks_done``/``chunks_total`` (while partial), ``bytes``."""
    rows = _rows(manifest)
    folder = _folder(rows, view, cache_root, dict(audio_kw or {}))
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


# ---------------------------------------------------------------- atomic writes

def _tmp(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = _tmp(path)
    with open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
    os.replace(tmp, path)


def _save_json(path: Path, obj: dict) -> None:
    tmp = _tmp(path)
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


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
    tmp = _tmp(path)
    with open(tmp, "wb") as f:
        np.savez(f, all_ids=np.array([r[0] for r in rows], dtype=str), ids=np.array(ids, dtype=str),
                 lengths=lengths, data=data, shape=np.array(data.shape, dtype=np.int64),
                 dtype=np.array(data.dtype.name), skipped=np.array(json.dumps(skipped)))
    os.replace(tmp, path)


def _chunk_ok(path: Path, rows) -> bool:
    """True when ``path`` is a readable chunk for exactly these rows (else it is redone)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return list(z["all_ids"]) == [r[0] for r in rows]
    except Exception:  # unreadable leftovers are simply recomputed
        return False


# ---------------------------------------------------------------- worker processes

_WORKER_VIEW = None


def _init_worker(build: Callable, version: str) -> None:
    global _WORKER_VIEW
    try:
        import torch

        torch.set_num_threads(1)  # one core per worker process
    except ImportError:
        pass
    _WORKER_VIEW = build()
    if _WORKER_VIEW.version != version:
        raise RuntimeError(f"view {_WORKER_VIEW.name} built in a worker has version {_WORKER_VIEW.version}, "
                           f"expected {version}")


def _worker_chunk(rows, out_path, kw) -> int:
    return _process_chunk(_WORKER_VIEW, rows, out_path, **kw)


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


def _run_pool(view, todo, view_factory, workers: int, kw: dict, make_bar) -> None:
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(_worker_builder(view, view_factory), view.version))
    try:
        futures = [pool.submit(_worker_chunk, rows, path, kw) for rows, path in todo]
        with make_bar() as bar:  # opened after the fork: no tqdm thread is copied into the workers
            for fut in as_completed(futures):
                bar.update(fut.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


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
    _write_data(folder / "data.npy", chunk_paths, (sum(s[0] for s in shapes), *shapes[0][1:]), dtype)
    _save_npy(folder / "ids.npy", ids)
    if view.variable:
        _save_npy(folder / "lengths.npy", lengths)
    meta = {"view": view.name, "params": view.params, "version": view.version, "provenance": view.provenance(),
            "encoder": getattr(view, "encoder", None),
            "variable": bool(view.variable), "dtype": np.dtype(dtype).name, "n": int(len(ids)),
            "skipped": skipped, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    _save_json(folder / "meta.json", meta)  # last: its presence marks the entry complete
    shutil.rmtree(folder / "chunks", ignore_errors=True)


def _write_data(target: Path, chunk_paths: list[Path], shape: tuple, dtype) -> None:
    tmp = _tmp(target)
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
    pos = 0
    for p in chunk_paths:
        with np.load(p, allow_pickle=False) as z:
            if len(z["ids"]):
                data = z["data"]
                out[pos:pos + len(data)] = data
                pos += len(data)
    out.flush()
    del out
    os.replace(tmp, target)


def load_cached(folder) -> FeatureSet:
    """The FeatureSet of a complete cache folder, ``data`` memory-mapped (nothing is read up front)."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder}: not a complete feature-cache entry (no meta.json)")
    meta = json.loads(meta_path.read_text())
    meta["folder"] = str(folder)
    data = np.load(folder / "data.npy", mmap_mode="r")
    lengths = np.load(folder / "lengths.npy") if meta["variable"] else None
    return FeatureSet(np.load(folder / "ids.npy"), data, lengths, meta)


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


def _extract(rows, view, folder: Path, *, chunk_size: int, workers, progress: bool, view_factory, kw) -> None:
    """Extract the chunks not finished yet (in worker processes or here), then consolidate them."""
    chunks = [rows[i:i + chunk_size] for i in range(0, len(rows), chunk_size)]
    paths = [folder / "chunks" / f"chunk-{i:05d}.npz" for i in range(len(chunks))]
    (folder / "chunks").mkdir(parents=True, exist_ok=True)
    todo = [(c, p) for c, p in zip(chunks, paths) if not (p.is_file() and _chunk_ok(p, c))]
    n_workers = min(workers if workers is not None else _usable_cores(), len(todo))
    done = len(rows) - sum(len(c) for c, _ in todo)

    def make_bar():
        return tqdm(total=len(rows), initial=done, desc=f"features {view.name}", unit="utt", disable=not progress)

    if getattr(view, "parallel", False) and n_workers > 1:
        _run_pool(view, todo, view_factory, n_workers, kw, make_bar)
    else:
        with make_bar() as bar:
            for c, p in todo:
                _process_chunk(view, c, p, on_progress=bar.update, **kw)
    _consolidate(folder, view, paths, rows)


# ---------------------------------------------------------------- entry point

def extract_features(manifest: pd.DataFrame, view, *, cache_root=None, workers: int | None = None,
                     on_error: str = "raise", progress: bool = True, chunk_size: int | None = None,
                     batch_size: int = 8, view_factory: Callable | None = None,
                     audio_kw: dict | None = None) -> FeatureSet:
    """Features of ``view`` for every utterance of ``manifest``, from the cache or extracted into it.

    ``workers``: processes for views with ``parallel = True`` (default: the usable cores); each gets its own
    copy of ``view`` by pickling, or ``view_factory(view.name, **view.params)`` when given (e.g.
    ``sercore.views.get_view``). Other views run
    here with ``extract_batch`` on length-sorted batches of ``batch_size``. ``on_error="raise"`` raises the
    ``AudioError`` of the first bad file; ``"skip"`` leaves bad files out (listed in ``meta["skipped"]``)
    and warns. ``chunk_size``: utterances per resumable chunk (default 64, 16 for variable-length views).
    ``audio_kw``: options of ``load_audio`` (part of the key). Returns a memory-mapped ``FeatureSet``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"extract_features: on_error must be 'raise' or 'skip', got {on_error!r}")
    audio_kw = dict(audio_kw or {})
    rows = _rows(manifest)
    folder = _folder(rows, view, cache_root, audio_kw)
    if not (folder / "meta.json").is_file():
        _extract(rows, view, folder, chunk_size=_chunk_size(view, chunk_size), workers=workers,
                 progress=progress, view_factory=view_factory,
                 kw={"on_error": on_error, "batch_size": batch_size, "audio_kw": audio_kw})
    fs = load_cached(folder)
    _report_skipped(fs, on_error, len(rows))
    return fs
