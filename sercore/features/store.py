"""Feature store: each utterance's features for a view stored once, keyed by its audio, read by any manifest.

A view's configuration (name, params, version, the versions of the packages that compute it and read the audio,
the audio options) has one folder ``<root>/<view>/<config key>/``:

- ``config.json``: that configuration, and the view's encoder kind and layout (fixed or variable);
- ``shards/<name>.npy``: features of many utterances back to back (float16, float32 where float16 would
  overflow; variable views: all frames ``[sum T, *frame]``), written atomically, never changed afterwards;
- ``index.sqlite``: per audio content digest (BLAKE2b of the file's bytes) the shard and rows that hold its
  features, or the reason it was skipped (unreadable audio, NaN features), plus each shard's size, checksum,
  shape, dtype, provenance and the day it was last used;
- ``pending/chunk-<digest>.npz``: finished chunks of an extraction that has not been merged into a shard yet
  (what a killed run leaves; the next extraction merges them instead of redoing them);
- ``lock``: held while an extraction or a repair changes the folder (processes wait for each other).

The utterance id and the manifest are not part of any key: a subset, a union, a corpus with one file changed or
added reads what is stored and extracts only the audio not seen before; identical audio under two ids is stored
once. Append-only ``.npy`` shards plus a SQLite index were chosen over zarr/h5py/lhotse because the cache
already uses both (memory-mapped float16 reads, the digest memo), they need no new dependency, and neither
format can hold a pickle (``allow_pickle=False`` on every read). Shards are checked when opened: size and
shape always, the checksum through the digest memo (re-read only when the file changed). A shard that fails is
moved aside (``<name>.npy.corrupt-<time>``) with a warning naming it, and its utterances are extracted again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import uuid
import warnings
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from sercore.core.atomic import atomic_path, atomic_write_json
from sercore.core.digests import DigestMemo, file_digest
from sercore.features.featureset import FeatureSet, Frames

DIGESTS = "file-digests.sqlite"  # memo of file digests (audio and shards), in the store root
INDEX = "index.sqlite"
FLOAT16_MAX = float(np.finfo(np.float16).max)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS items (digest TEXT PRIMARY KEY, shard TEXT NOT NULL, start INTEGER NOT NULL, "
    "length INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS skipped (digest TEXT PRIMARY KEY, reason TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS shards (name TEXT PRIMARY KEY, rows INTEGER, bytes INTEGER, blake2b TEXT, "
    "shape TEXT, dtype TEXT, provenance TEXT, created TEXT, used TEXT)",
    "CREATE INDEX IF NOT EXISTS items_shard ON items (shard)",
)


class CacheCorrupt(ValueError):
    """Part of the store failed its check: ``"<file>: <problem>"``; ``path`` is the file."""

    def __init__(self, path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self):
        return (type(self), (self.path, self.problem))


@dataclass(frozen=True)
class StoredFeatures:
    """A FeatureSet read from the store, as the job engine sends it to a worker (which reopens it memory-mapped):
    the configuration folder and, per utterance, its id and audio digest."""

    folder: str
    ids: tuple
    digests: tuple

    def reopen(self) -> FeatureSet:
        store = FeatureStore(self.folder)
        fs = store.assemble(list(zip(self.ids, [""] * len(self.ids), self.digests)), touch=False)
        if fs is None:
            raise CacheCorrupt(self.folder, "features sent to this worker are no longer in the store")
        return fs


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class FeatureStore:
    """The stored features of one view configuration (its folder, ``<root>/<view>/<config key>``)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.root = self.folder.parent.parent

    # ------------------------------------------------------------ index

    @contextmanager
    def _db(self, write: bool = False):
        """A connection to the index (a transaction when ``write``); a damaged index raises ``CacheCorrupt``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            with closing(sqlite3.connect(self.folder / INDEX, timeout=120)) as conn:
                for statement in _SCHEMA:
                    conn.execute(statement)
                if write:
                    with conn:
                        yield conn
                else:
                    yield conn
        except sqlite3.DatabaseError as err:
            if isinstance(err, sqlite3.OperationalError) and "locked" in str(err):
                raise
            raise CacheCorrupt(self.folder / INDEX, f"unreadable ({err})") from None

    def config(self) -> dict:
        """The configuration recorded in ``config.json`` ({} before the first extraction)."""
        try:
            return json.loads((self.folder / "config.json").read_text())
        except (OSError, ValueError):
            return {}

    def write_config(self, config: dict) -> None:
        if not (self.folder / "config.json").is_file():
            atomic_write_json(self.folder / "config.json", {**config, "created": _now()})

    def lookup(self, digests) -> tuple[dict, dict]:
        """``({digest: (shard, start, length)}, {digest: skip reason})`` for the stored ones among ``digests``."""
        digests = sorted(set(digests))
        items, skipped = {}, {}
        with self._db() as conn:
            for i in range(0, len(digests), 500):
                part = digests[i:i + 500]
                marks = ",".join("?" * len(part))
                items.update({r[0]: r[1:] for r in conn.execute(f"SELECT * FROM items WHERE digest IN ({marks})",
                                                                 part)})
                skipped.update(dict(conn.execute(f"SELECT * FROM skipped WHERE digest IN ({marks})", part)))
        return items, skipped

    def n_skipped(self) -> int:
        """How many audio contents are recorded as skipped (unusable for this view)."""
        with self._db() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM skipped").fetchone()[0])

    def shard_records(self, names=None) -> dict[str, dict]:
        """``{name: record}`` of the shards ``names`` (all when None)."""
        cols = ("name", "rows", "bytes", "blake2b", "shape", "dtype", "provenance", "created", "used")
        with self._db() as conn:
            rows = conn.execute(f"SELECT {','.join(cols)} FROM shards").fetchall()
        out = {r[0]: dict(zip(cols, r)) for r in rows}
        for rec in out.values():
            rec["shape"], rec["provenance"] = json.loads(rec["shape"]), json.loads(rec["provenance"] or "null")
        return out if names is None else {n: out[n] for n in names if n in out}

    # ------------------------------------------------------------ shards

    def shard_path(self, name: str) -> Path:
        """Where shard ``name`` lives."""
        return self.folder / "shards" / f"{name}.npy"

    def open_shard(self, name: str, record: dict | None) -> np.ndarray:
        """The shard memory-mapped, after checking its size, checksum (via the digest memo), shape and dtype."""
        path = self.shard_path(name)
        if record is None:
            raise CacheCorrupt(path, "the index lists its utterances but has no record of the shard")
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise CacheCorrupt(path, "missing") from None
        if size != record["bytes"]:
            raise CacheCorrupt(path, f"{size} bytes, the index records {record['bytes']} (truncated or replaced)")
        if DigestMemo(self.root / DIGESTS).digest(path) != record["blake2b"]:
            raise CacheCorrupt(path, "contents differ from the checksum in the index (overwritten)")
        try:
            data = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError) as err:
            raise CacheCorrupt(path, f"unreadable ({err})") from None
        if list(data.shape) != record["shape"] or data.dtype.name != record["dtype"]:
            raise CacheCorrupt(path, f"shape {data.shape} {data.dtype}, the index records {record['shape']} "
                               f"{record['dtype']}")
        return data

    def pending_path(self, keys) -> Path:
        """Where the finished chunk of the audio digests ``keys`` waits to be merged into a shard."""
        name = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
        return self.folder / "pending" / f"chunk-{name}.npz"

    def merge_pending(self, variable: bool) -> int:
        """Merge the finished chunks in ``pending/`` into one new shard (hold the lock); returns the utterances
        added. Chunks that cannot be read are deleted (they are extracted again); utterances already stored are
        not stored twice. The shard is written chunk by chunk, never whole in memory."""
        chunks, seen, skipped = [], set(), {}
        for path in sorted((self.folder / "pending").glob("chunk-*.npz")):
            chunk = read_chunk(path)
            if chunk is None:
                path.unlink(missing_ok=True)
                continue
            chunks.append(chunk)
            skipped.update(chunk["skipped"])
        stored, _ = self.lookup(k for c in chunks for k in c["keys"])
        for chunk in chunks:  # each audio once: not stored yet, and not in an earlier chunk
            chunk["take"] = []
            for i, key in enumerate(chunk["keys"]):
                if key not in stored and key not in seen:
                    seen.add(key)
                    chunk["take"].append(i)
        parts = [c for c in chunks if c["take"]]
        frames = {tuple(r["shape"][1:]) for r in self.shard_records().values()} | {c["frame"] for c in parts}
        if len(frames) > 1:  # a view bug: its features differ in shape from file to file
            raise ValueError(f"{self.folder}: the view returned different feature shapes across files: "
                             f"{sorted(frames)}")
        name = self._write_shard(parts, variable) if parts else None
        with self._db(write=True) as conn:
            if name is not None:
                path, data = self.shard_path(name), np.load(self.shard_path(name), mmap_mode="r")
                provenance = next(c["provenance"] for c in parts)
                conn.execute("INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (name, sum(len(c["take"]) for c in parts), path.stat().st_size, file_digest(path),
                              json.dumps(list(data.shape)), data.dtype.name, json.dumps(provenance, default=str),
                              _now(), date.today().isoformat()))
                conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", _item_rows(parts, name, variable))
            conn.executemany("INSERT OR REPLACE INTO skipped VALUES (?, ?)", sorted(skipped.items()))
        for chunk in chunks:
            chunk["path"].unlink(missing_ok=True)
        return sum(len(c["take"]) for c in parts)

    def _write_shard(self, parts: list[dict], variable: bool) -> str:
        """Write the selected items of ``parts`` as a new shard file, atomically; returns its name."""
        dtype = np.float32 if any(c["dtype"] != "float16" for c in parts) else np.float16
        rows = sum(int(c["lengths"][c["take"]].sum()) if variable else len(c["take"]) for c in parts)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                  "shape": (rows, *parts[0]["frame"])}
        name = f"{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        path = self.shard_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.lib.format.write_array_header_2_0(f, header)
            for chunk in parts:
                data = chunk["load"]()
                if variable:
                    offsets = np.concatenate([[0], np.cumsum(chunk["lengths"])])
                    data = np.concatenate([data[offsets[i]:offsets[i + 1]] for i in chunk["take"]])
                else:
                    data = data[chunk["take"]]
                f.write(np.ascontiguousarray(data, dtype=dtype).tobytes())
        return name

    def set_aside(self, err: CacheCorrupt) -> None:
        """Move the damaged shard (or index) named by ``err`` aside and forget what it held (hold the lock)."""
        stamp = f"corrupt-{datetime.now():%Y%m%dT%H%M%S%f}"
        if err.path == self.folder / INDEX:
            aside = self.folder.with_name(f"{self.folder.name}.{stamp}")
            self.folder.rename(aside)
            warnings.warn(f"feature store: {err}; moved {self.folder} to {aside} and extracting again", stacklevel=3)
            return
        name = err.path.stem
        path = self.shard_path(name)
        aside = path.with_name(f"{path.name}.{stamp}")
        if path.exists():
            path.rename(aside)
        self._forget([name])
        warnings.warn(f"feature store: {err}; moved the shard to {aside} and extracting its utterances again",
                      stacklevel=3)

    # ------------------------------------------------------------ reading

    def assemble(self, rows, *, repair: bool = False, touch: bool = True) -> FeatureSet | None:
        """The FeatureSet of ``rows`` (``(utt_id, path, audio digest)``, sorted by utt_id), or None while an
        utterance is not stored yet. Utterances skipped at extraction (and files that could not be read, digest
        None) are left out and listed in ``meta["skipped"]``. A damaged shard raises ``CacheCorrupt``, or with
        ``repair`` (under the lock) is moved aside and None returned, so that its utterances are extracted again.
        ``touch`` records today as the shards' last use (workers reopening a set do not).
        """
        items, skip = self.lookup(d for _, _, d in rows if d)
        if any(d and d not in items and d not in skip for _, _, d in rows):
            return None
        kept = [(u, d) for u, _, d in rows if d in items]
        skipped = [{"utt_id": u, "path": p, "reason": skip[d] if d else _unreadable(p)}
                   for u, p, d in rows if d not in items]
        names = sorted({items[d][0] for _, d in kept})
        records = self.shard_records(names)
        shards = {}
        try:
            for name in names:
                shards[name] = self.open_shard(name, records.get(name))
        except CacheCorrupt as err:
            if not repair:
                raise
            self.set_aside(err)
            return None
        if touch:
            self._touch(names)
        return self._featureset(kept, items, shards, records, skipped)

    def _featureset(self, kept, items, shards, records, skipped) -> FeatureSet:
        config, names = self.config(), list(shards)
        meta = {key: config.get(key) for key in ("view", "params", "version", "encoder", "variable", "packages",
                                                 "audio")}
        ids = [u for u, _ in kept]
        content = hashlib.sha256(json.dumps([self.folder.name, kept]).encode()).hexdigest()[:24]
        provenances = [records[n]["provenance"] for n in names]
        meta.update(provenance=provenances[0] if provenances else None, skipped=skipped, n=len(kept),
                    folder=str(self.folder), key=content, shards=names, content=content)
        if any(p != provenances[0] for p in provenances):
            warnings.warn(f"feature store {self.folder}: the shards record different provenance {provenances}",
                          stacklevel=3)
        source = StoredFeatures(str(self.folder), tuple(ids), tuple(d for _, d in kept))
        where = [items[d] for _, d in kept]
        part = [names.index(s) for s, _, _ in where]
        if config.get("variable"):
            lengths = np.array([n for _, _, n in where], dtype=np.int64)
            data = Frames([shards[n] for n in names], part, [s for _, s, _ in where], lengths)
            meta.update(dtype=np.dtype(data.dtype).name, shape=list(data.shape))
            return FeatureSet(ids, data, lengths, meta, source)
        dtype = np.result_type(*[shards[n].dtype for n in names]) if names else np.float32
        data = np.zeros((len(kept), *(shards[names[0]].shape[1:] if names else ())), dtype=dtype)
        for i, name in enumerate(names):
            rows = [j for j, p in enumerate(part) if p == i]
            data[rows] = shards[name][[where[j][1] for j in rows]]
        meta.update(dtype=data.dtype.name, shape=list(data.shape))
        return FeatureSet(ids, data, None, meta, source)

    def _touch(self, names) -> None:
        """Record today as the day these shards were last used (one write a day at most)."""
        today = date.today().isoformat()
        try:
            with self._db(write=True) as conn:
                conn.executemany("UPDATE shards SET used = ? WHERE name = ? AND used < ?",
                                 [(today, n, today) for n in names])
        except sqlite3.OperationalError:  # a busy index: the date is a hint for pruning, never worth failing over
            pass

    # ------------------------------------------------------------ lock and removal

    @contextmanager
    def lock(self, progress: bool = True):
        """Hold the folder's lock: one process at a time extracts into or repairs it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.folder / "lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if progress:
                print(f"waiting for another process extracting into the feature store {self.folder}", flush=True)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def remove_shards(self, names) -> int:
        """Delete the shards ``names`` and their index rows (hold the lock); returns the bytes freed."""
        freed = 0
        self._forget(names)
        for name in names:
            path = self.shard_path(name)
            if path.exists():
                freed += path.stat().st_size
                path.unlink()
        return freed

    def _forget(self, names) -> None:
        """Drop the index rows of the shards ``names`` (their utterances are then missing)."""
        with self._db(write=True) as conn:
            conn.executemany("DELETE FROM items WHERE shard = ?", [(n,) for n in names])
            conn.executemany("DELETE FROM shards WHERE name = ?", [(n,) for n in names])

    def remove(self) -> None:
        """Delete the whole folder."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _unreadable(path: str) -> str:
    return "file not found" if not Path(path).exists() else "file cannot be read"


def _item_rows(parts: list[dict], shard: str, variable: bool) -> list[tuple]:
    """Index rows ``(digest, shard, start, length)`` of the items ``_write_shard`` wrote, in its order."""
    out, start = [], 0
    for chunk in parts:
        for i in chunk["take"]:
            n = int(chunk["lengths"][i]) if variable else 1
            out.append((chunk["keys"][i], shard, start, n))
            start += n
    return out


def write_chunk(path: Path, all_keys, keys, feats, skipped: dict, provenance, variable: bool) -> None:
    """Write one finished chunk atomically: the features of ``keys`` (audio digests) among ``all_keys`` (the
    chunk's rows), float16 where it holds the values, and ``skipped`` ``{digest: reason}``."""
    if feats:
        data = np.concatenate(feats) if variable else np.stack(feats)
        if float(np.abs(data).max()) <= FLOAT16_MAX:  # else kept float32 (float16 would give inf)
            data = data.astype(np.float16)
    else:
        data = np.zeros((0,), np.float16)
    lengths = np.array([len(f) if variable else 1 for f in feats], dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, all_keys=np.array(all_keys, dtype=str), keys=np.array(keys, dtype=str), lengths=lengths,
                 data=data, skipped=np.array(json.dumps(skipped)),
                 provenance=np.array(json.dumps(provenance, default=str)))


def read_chunk(path: Path) -> dict | None:
    """A pending chunk's index (its data read later by ``load()``), or None when it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            keys, lengths = [str(k) for k in z["keys"]], z["lengths"]
            skipped, provenance = json.loads(str(z["skipped"])), json.loads(str(z["provenance"]))
            data = z["data"]  # small next to a shard; read once here to learn its shape and dtype
        if len(lengths) != len(keys) or not isinstance(skipped, dict):
            return None
    except Exception:  # a leftover that is not a finished chunk is simply extracted again
        return None

    def load():
        with np.load(path, allow_pickle=False) as z:
            return z["data"]

    return {"path": path, "keys": keys, "lengths": lengths, "skipped": skipped, "provenance": provenance,
            "dtype": data.dtype.name, "frame": tuple(data.shape[1:]), "load": load}
