"""Content digests of files (BLAKE2b), remembered in a small SQLite side file so a rerun does not hash again.

A remembered digest is reused only while the file's size, mtime, ctime and inode are those it was computed
for. ctime cannot be set by a user (``touch -d`` or ``os.utime`` update it), so a rewrite that keeps the size
and restores the mtime is still seen. A file changed less than ``RACY_SECONDS`` before it was hashed is not
remembered (a second write within one file-system timestamp tick would otherwise go unseen). SQLite's own
locking makes the side file safe for concurrent processes; if it cannot be used (read-only folder, broken
file) digests are simply computed every time.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import warnings
from contextlib import closing
from pathlib import Path
from typing import Iterable

BLOCK = 1 << 20
RACY_SECONDS = 2.0
_SCHEMA = ("CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
           "ctime_ns INTEGER, inode INTEGER, digest TEXT)")


def bytes_digest(data: bytes) -> str:
    """Hex BLAKE2b-128 digest of ``data``."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def file_digest(path) -> str:
    """Hex BLAKE2b-128 digest of the bytes of ``path``, read in 1 MiB blocks."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _settled(st: os.stat_result) -> bool:
    return time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) >= RACY_SECONDS * 1e9


class DigestMemo:
    """Digests of files, remembered in the SQLite file ``db`` by (path, size, mtime, ctime, inode)."""

    def __init__(self, db):
        self.db = Path(db)

    def digest(self, path) -> str:
        """Digest of ``path`` (``OSError`` when it cannot be read)."""
        out = self.digests([path])[str(path)]
        if out is None:
            raise FileNotFoundError(f"{path}: cannot be read")
        return out

    def digests(self, paths: Iterable) -> dict[str, str | None]:
        """``{str(path): digest}`` for ``paths``; None for a missing or unreadable file."""
        paths = [str(p) for p in paths]
        known = self._lookup(paths)
        out, fresh = {}, []
        for path in paths:
            try:
                st = os.stat(path)
                if known.get(path, (None,))[:4] == _signature(st):
                    out[path] = known[path][4]
                    continue
                out[path] = file_digest(path)
            except OSError:
                out[path] = None
                continue
            after = os.stat(path)
            if _signature(after) == _signature(st) and _settled(after):
                fresh.append((path, *_signature(after), out[path]))
        self._store(fresh)
        return out

    def _connect(self) -> sqlite3.Connection:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.db, timeout=60)
        conn.execute(_SCHEMA)
        return conn

    def _lookup(self, paths: list[str]) -> dict[str, tuple]:
        try:
            with closing(self._connect()) as conn:
                found = {}
                for start in range(0, len(paths), 500):
                    part = paths[start:start + 500]
                    query = f"SELECT * FROM digests WHERE path IN ({','.join('?' * len(part))})"
                    found.update({row[0]: row[1:] for row in conn.execute(query, part)})
                return found
        except sqlite3.Error as err:
            _warn_once(self.db, err)
            return {}

    def _store(self, rows: list[tuple]) -> None:
        if not rows:
            return
        try:
            with closing(self._connect()) as conn, conn:
                conn.executemany("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as err:
            _warn_once(self.db, err)


_WARNED: set[str] = set()


def _warn_once(db: Path, err: Exception) -> None:
    if str(db) not in _WARNED:
        _WARNED.add(str(db))
        warnings.warn(f"file-digest memo {db} cannot be used ({err}); digests are computed every time",
                      stacklevel=3)
