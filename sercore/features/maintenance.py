"""What the feature store holds and how to trim it: ``store_table`` (sizes per view and model) and ``prune``.

``python -m sercore.cache info|prune`` is their command line. Folders in the manifest-keyed layout of sercore
0.2 (``<view>/<key>/meta.json``) are never read; they are listed as ``legacy`` and removed by ``prune --legacy``.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pandas as pd

from sercore.features.store import INDEX, FeatureStore


def _folders(root: Path):
    """``(kind, folder)`` for every store folder (``store``) and old-layout entry (``legacy``) under ``root``."""
    for view in sorted(p for p in Path(root).iterdir() if p.is_dir()) if Path(root).is_dir() else []:
        for folder in sorted(p for p in view.iterdir() if p.is_dir()):
            if (folder / INDEX).is_file():
                yield "store", folder
            elif (folder / "meta.json").is_file() or (folder / "chunks").is_dir():
                yield "legacy", folder


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _model(config: dict, provenance) -> str:
    """The model behind a view's features, as people name it (the provenance's model, else the params')."""
    for source in (provenance or {}, config.get("params") or {}):
        for key in ("model", "source", "bundle"):
            if source.get(key):
                return str(source[key])
    return "-"


def store_table(root) -> pd.DataFrame:
    """One row per store folder and per old-layout entry: view, model, utterances stored and skipped, shards,
    bytes, last used, folder."""
    rows = []
    for kind, folder in _folders(Path(root)):
        row = {"view": folder.parent.name, "kind": kind, "folder": str(folder), "bytes": _size(folder)}
        if kind == "store":
            store = FeatureStore(folder)
            shards = store.shard_records()
            first = next(iter(shards.values()), {})
            skipped = store.n_skipped()
            row.update(model=_model(store.config(), first.get("provenance")), version=store.config().get("version"),
                       utterances=sum(r["rows"] for r in shards.values()), skipped=skipped, shards=len(shards),
                       last_used=max((r["used"] for r in shards.values()), default=None))
        else:
            meta = _json(folder / "meta.json")
            row.update(model=_model(meta, meta.get("provenance")), version=meta.get("version"),
                       utterances=meta.get("n", 0), skipped=len(meta.get("skipped", [])), shards=0, last_used=None)
        rows.append(row)
    cols = ["view", "model", "version", "kind", "utterances", "skipped", "shards", "bytes", "last_used", "folder"]
    return pd.DataFrame(rows, columns=cols)


def _json(path: Path) -> dict:
    try:
        out = json.loads(path.read_text())
        return out if isinstance(out, dict) else {}
    except (OSError, ValueError):
        return {}


def prune(root, *, views=(), models=(), unused_since: date | None = None, legacy: bool = False,
          dry_run: bool = False) -> pd.DataFrame:
    """Remove what matches and return what was (or, with ``dry_run``, would be) removed: whole store folders of
    ``views`` or of ``models`` (matched against the ``model`` column of ``store_table``), shards not used since
    ``unused_since`` (their utterances are extracted again when next needed), and with ``legacy`` the folders
    of the old layout. Each store folder is changed under its lock."""
    table, removed = store_table(root), []
    for row in table.itertuples():
        folder = Path(row.folder)
        if row.kind == "legacy":
            if legacy:
                removed.append({"folder": row.folder, "what": "legacy entry", "bytes": row.bytes})
                if not dry_run:
                    shutil.rmtree(folder, ignore_errors=True)
            continue
        store = FeatureStore(folder)
        if row.view in views or row.model in models:
            removed.append({"folder": row.folder, "what": "all shards", "bytes": row.bytes})
            if not dry_run:
                with store.lock():  # no extraction into it meanwhile
                    store.remove()
        elif unused_since is not None:
            old = {n: r for n, r in store.shard_records().items() if r["used"] < unused_since.isoformat()}
            if old:
                removed.append({"folder": row.folder, "what": f"{len(old)} shard(s) unused since {unused_since}",
                                "bytes": sum(r["bytes"] for r in old.values())})
                if not dry_run:
                    with store.lock():
                        store.remove_shards(list(old))
    return pd.DataFrame(removed, columns=["folder", "what", "bytes"])
