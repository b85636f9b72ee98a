"""Provenance: every result writes ``params.json`` (parameters, models used, versions, seed) beside it."""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("sercore", "torch", "torchaudio", "numpy", "scipy", "scikit-learn", "pandas", "opensmile",
             "speechbrain", "resemblyzer", "umap-learn", "espeakng-loader")


def versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on (missing ones are omitted), and the accelerators
    torch can use (``accelerators``)."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    out["accelerators"] = accelerators()
    return out


def accelerators() -> str:
    """The devices torch can use besides the CPU: ``cuda:<i> <name>`` for each CUDA GPU, ``mps`` on Apple
    silicon; ``none`` otherwise."""
    try:
        import torch
    except ImportError:
        return "none"
    found = [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return ", ".join(found) or "none"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    return str(value)


def write_params(folder: str | Path, params: dict, *, models: dict | None = None, seed: int | None = None,
                 extra: dict | None = None) -> Path:
    """Write ``folder/params.json`` with parameters, models actually used, package versions and seed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "params": _jsonable(params),
        "models": _jsonable(models or {}),
        "seed": seed,
        "versions": versions(),
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        record.update(_jsonable(extra))
    path = folder / "params.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=False))
    tmp.replace(path)
    return path
