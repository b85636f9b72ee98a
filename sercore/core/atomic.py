"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

Each write goes to a uniquely named temporary file in the target's folder (same file system), which then
replaces the target with ``os.replace``. A run killed mid-write leaves at most a ``<name>.tmp-<pid>-<token>``
file behind, which readers ignore. There is no fsync: this protects against killed processes, not against
power loss.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np


def tmp_path(path) -> Path:
    """A fresh temporary name beside ``path`` (unique per process and call)."""
    path = Path(path)
    return path.with_name(f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed."""
    tmp = tmp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (non-JSON values through ``str``)."""
    atomic_write_text(path, json.dumps(obj, indent=2, default=str))


def atomic_save_npy(path, array: np.ndarray) -> None:
    """Save ``array`` as ``.npy`` to ``path`` atomically (object arrays are refused: no pickles)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(array), allow_pickle=False)
