"""Small shared settings: where caches live, seeding, offline mode."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    """Root folder of sercore's caches (features, generated corpus, models).

    ``$SERCORE_CACHE`` wins; otherwise ``~/.cache/sercore``.
    """
    root = os.environ.get("SERCORE_CACHE") or Path.home() / ".cache" / "sercore"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def usable_cores() -> int:
    """CPU cores this process may use: its affinity mask where the OS has one (Linux), else
    ``os.process_cpu_count()`` (Python 3.13+) or ``os.cpu_count()`` (macOS, Windows); at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    count = getattr(os, "process_cpu_count", os.cpu_count)()
    return max(1, count or 1)


def is_offline() -> bool:
    """True when downloads must not be attempted (``SERCORE_OFFLINE`` or ``HF_HUB_OFFLINE`` set to 1)."""
    return any(os.environ.get(k, "0") not in ("", "0", "false", "False") for k in ("SERCORE_OFFLINE", "HF_HUB_OFFLINE"))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) for repeatable runs."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)
