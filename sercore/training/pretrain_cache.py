"""Pre-trained encoders on disk (both papers), so notebooks that need the same fold's encoders train them once.

An entry is ``cache_dir()/pretrained/<key>.safetensors`` (the state dicts of the encoders and heads;
safetensors holds tensors only, so nothing in the cache is unpickled) and ``<key>.json`` (what the run was,
history, metrics, size and digest of the tensor file), written last: it marks the entry complete. The key
hashes the stored features' identities, the ids (and labels) in order, the config, the device, the precision,
torch's version and the source code that builds and trains the encoders, so a change to any of them is a miss.
A run killed before its entry was written trains again from its seed, to the same weights.
``cached_run`` is the mechanism; ``sercore.pairwise.pretrain.pretrain_pairwise_cached`` (paper A) and
``sercore.clusters.pretrain.pretrain_cluster_contrastive_cached`` (paper B) use it, each with its own tensors and
the digest of its own code (``modules_digest``).
Loading rebuilds the modules from their architecture and loads the state dicts; an entry that fails its
check is moved aside (``<key>.corrupt-<time>.*``) with a warning naming the file, and trained again. A file
lock per key makes concurrent runs wait for the one that trains.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import warnings
from dataclasses import asdict
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import torch
from filelock import FileLock
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from sercore.core.atomic import atomic_write_bytes, atomic_write_json
from sercore.core.config import cache_dir
from sercore.core.digests import bytes_digest
from sercore.core.precision import resolve_precision
from sercore.features.featureset import FeatureSet

PRETRAIN_VERSION = "4"  # part of every key, with a digest of the code
_BROKEN = (ValueError, KeyError, TypeError, RuntimeError, OSError, SafetensorError)


class PretrainCacheCorrupt(ValueError):
    """A pre-training cache entry failed its check: ``"<file>: <problem>"``."""


def module_files(names: Sequence[str]) -> list[Path]:
    """Source files of the modules ``names`` (as imported: each module's ``__file__``)."""
    return [Path(importlib.import_module(name).__file__) for name in names]


@lru_cache(maxsize=None)
def files_digest(paths: tuple[str, ...]) -> str:
    """Digest of the files ``paths`` (names and bytes; read once per process and file list)."""
    h = hashlib.blake2b(digest_size=16)
    for path in paths:
        h.update(Path(path).name.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return h.hexdigest()


def modules_digest(names: Sequence[str]) -> str:
    """Digest of the source files of the modules ``names`` (read once per process and file list)."""
    return files_digest(tuple(str(p) for p in module_files(names)))


def feature_entry(fs: FeatureSet) -> dict | None:
    """What identifies the stored features behind ``fs`` (the feature store's folder and the digest of its
    utterance ids and audio contents), or None for in-memory features."""
    if not fs.meta.get("folder") or not fs.meta.get("content"):
        return None
    return {"folder": str(fs.meta["folder"]), "content": fs.meta["content"]}


def run_key(features: dict[str, FeatureSet], record: dict, config, device, code: str) -> str | None:
    """Key of a pre-training run: the stored features' identities, ``record`` (ids, labels, variant...), the
    config, the device, the precision it resolves to, torch's version and ``code`` (a digest of the source that
    trains). None when a FeatureSet is not from the feature store (then nothing is cached)."""
    entries = {view: feature_entry(fs) for view, fs in features.items()}
    if any(entry is None for entry in entries.values()):
        return None
    payload = json.dumps({"features": entries, **record, "config": asdict(config), "device": str(device),
                          "precision_used": resolve_precision(config.precision, device)[0],
                          "torch": torch.__version__, "code": code, "version": PRETRAIN_VERSION},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def cached_run(key: str | None, *, train: Callable[[], object], to_tensors: Callable, from_tensors: Callable):
    """``train()``'s result, read back from the entry ``key`` when it is there and sound, else trained and stored
    (under the key's file lock: concurrent runs of one key train once). ``to_tensors(result)`` gives the tensors
    and the JSON record to store; ``from_tensors(tensors, record)`` rebuilds the result. ``key`` None: trained
    every time."""
    if key is None:
        return train()
    folder = cache_dir() / "pretrained"
    folder.mkdir(parents=True, exist_ok=True)
    result = _load_sound(folder, key, from_tensors, locked=False)
    if result is None:
        with FileLock(folder / f"{key}.lock"):
            result = _load_sound(folder, key, from_tensors, locked=True)
            if result is None:
                result = train()
                save(folder, key, *to_tensors(result))
    return result


def state_tensors(prefix: str, module: torch.nn.Module) -> dict:
    """``module``'s state dict as ``{prefix + name: tensor}`` (CPU, contiguous copies) for an entry."""
    return {f"{prefix}{name}": t.detach().cpu().contiguous().clone() for name, t in module.state_dict().items()}


def save(folder: Path, key: str, tensors: dict, record: dict) -> None:
    """Store ``tensors`` and the JSON ``record`` as the entry ``key`` of ``folder``."""
    blob = save_tensors(tensors)
    atomic_write_bytes(folder / f"{key}.safetensors", blob)
    atomic_write_json(folder / f"{key}.json", {
        **record, "key": key, "tensors": {"bytes": len(blob), "blake2b": bytes_digest(blob)},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})  # last: marks the entry complete


def load(folder: Path, key: str, from_tensors: Callable):
    """The result of entry ``key`` (``from_tensors(tensors, record)``); ``PretrainCacheCorrupt`` naming the file
    when it fails a check."""
    meta_path, blob_path = folder / f"{key}.json", folder / f"{key}.safetensors"
    try:
        record = json.loads(meta_path.read_text())
        want = record["tensors"]
    except _BROKEN as err:
        raise PretrainCacheCorrupt(f"{meta_path}: unreadable ({type(err).__name__}: {err})") from None
    blob = blob_path.read_bytes() if blob_path.is_file() else b""
    if len(blob) != want.get("bytes") or bytes_digest(blob) != want.get("blake2b"):
        raise PretrainCacheCorrupt(f"{blob_path}: size or checksum differs from {meta_path.name}")
    try:
        return from_tensors(load_tensors(blob), record)
    except _BROKEN as err:
        raise PretrainCacheCorrupt(f"{blob_path}: does not fit the encoders ({type(err).__name__}: {err})") from None


def filled(module: torch.nn.Module, tensors: dict, prefix: str, device) -> torch.nn.Module:
    """``module`` with the state stored under ``prefix``, on ``device``, in eval mode."""
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    module.load_state_dict(state, strict=True)
    return module.to(device).eval()


def _load_sound(folder: Path, key: str, from_tensors: Callable, *, locked: bool):
    """The entry when complete and sound, else None; holding the lock, a broken entry is moved aside."""
    if not (folder / f"{key}.json").is_file():
        return None
    try:
        return load(folder, key, from_tensors)
    except PretrainCacheCorrupt as err:
        if locked:
            stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
            for suffix in (".json", ".safetensors"):
                if (folder / f"{key}{suffix}").exists():
                    (folder / f"{key}{suffix}").rename(folder / f"{key}.corrupt-{stamp}{suffix}")
            warnings.warn(f"pre-training cache: {err}; moved the entry aside ({key}.corrupt-{stamp}.*) and "
                          "training again", stacklevel=4)
        return None
