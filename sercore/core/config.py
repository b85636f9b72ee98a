"""Small shared settings: where caches live, seeding, offline mode and whether the model hub can be reached."""

from __future__ import annotations

import os
import random
import socket
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

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


class ModelLoadError(RuntimeError):
    """A model the user named explicitly (a folder, a hub id, a non-default bundle) cannot be loaded.

    Unlike ``sercore.views.ViewUnavailable`` (a default model missing offline: the view is skipped with a
    warning), this is an error: the run stops and the message names the model and the reason. Not a
    ``ValueError``, which feature extraction treats as one bad input file.
    """


_REACHABLE: dict[tuple[str, int], bool] = {}


def hub_reachable(url: str | None = None, timeout: float = 2.0) -> bool:
    """True when a TCP connection to the model hub opens within ``timeout`` seconds; memoised per process.

    ``url`` defaults to ``$HF_ENDPOINT`` or ``https://huggingface.co``; when an HTTPS proxy is configured the
    proxy is checked instead. Without network the hub libraries retry for many seconds; callers check this
    first and treat an unreachable hub as offline.
    """
    url = url or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    target = urllib.request.getproxies().get("https") or url
    parsed = urlparse(target if "//" in target else f"//{target}")
    key = (parsed.hostname or "", parsed.port or (80 if parsed.scheme == "http" else 443))
    if key not in _REACHABLE:
        _REACHABLE[key] = _connects(*key, timeout=timeout)
    return _REACHABLE[key]


def _connects(host: str, port: int, timeout: float) -> bool:
    """Whether ``host:port`` accepts a connection within ``timeout`` s, name lookup included (which has no
    timeout of its own, hence the thread)."""
    ok: list[bool] = []

    def attempt():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(ok)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) for repeatable runs."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)


def resolve_device(device: str, *, where: str = "device"):
    """``torch.device`` for ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"auto"``); a
    ``ValueError`` starting with ``where`` if unusable. ``"auto"``: CUDA, else Apple-silicon ``mps``, else the CPU."""
    import torch

    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{where}: invalid device {device!r} ({err})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{where}: device {device!r} requested but CUDA is not available")
    if dev.type == "mps" and not mps:
        raise ValueError(f"{where}: device {device!r} requested but MPS (Apple silicon) is not available")
    return dev
