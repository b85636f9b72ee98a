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


def is_offline() -> bool:
    """True when downloads must not be attempted (``SERCORE_OFFLINE`` or ``HF_HUB_OFFLINE`` set to 1)."""
    return any(os.environ.get(k, "0") not in ("", "0", "false", "False") for k in ("SERCORE_OFFLINE", "HF_HUB_OFFLINE"))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) for repeatable runs."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)
