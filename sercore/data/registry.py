"""The dataset registry: one loader per corpus (or corpus family), found by name.

A corpus module in ``sercore/data/corpora/`` registers its loader with :func:`register_dataset`; every module
of that package is imported on first use of the registry, so adding a corpus is adding one file::

    @register_dataset("tess", layout="<root>/<speaker>_<emotion>/<speaker>_<word>_<emotion>.wav")
    def load_tess(root, *, on_error="skip", check_audio=True) -> pd.DataFrame: ...

A loader returns a validated manifest (``sercore.data.manifest``). Files it cannot use (misnamed, unreadable,
unknown label) are, with ``on_error="skip"`` (the default everywhere), left out and listed in
``manifest.attrs["bad_files"]``: a list of ``{"path", "reason", "step"}`` dicts (see :class:`BadFiles`);
``on_error="raise"`` (the runner's ``--strict``) raises a ``ManifestError`` naming the first bad file.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import warnings
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from sercore.data.manifest import ManifestError

_REGISTRY: dict[str, "DatasetInfo"] = {}
_ALIASES: dict[str, str] = {}
_SHOWN = 5


@dataclass(frozen=True)
class DatasetInfo:
    """A registered corpus: its name, loader, expected release layout (shown in errors and the README)."""

    name: str
    loader: Callable[..., pd.DataFrame]
    layout: str
    needs_root: bool = True


def _norm(name: str) -> str:
    return re.sub(r"[-_ ]", "", str(name).lower())


def register_dataset(name: str, *, layout: str, aliases: tuple[str, ...] = (), needs_root: bool = True):
    """Decorator registering ``loader(root, **params) -> manifest`` under ``name`` (and ``aliases``)."""

    def wrap(loader):
        info = DatasetInfo(name, loader, layout, needs_root)
        for key in (name, *aliases):
            norm = _norm(key)
            if norm in _ALIASES and _ALIASES[norm] != name:
                raise ValueError(f"dataset name {key!r} is already registered for {_ALIASES[norm]!r}")
            _ALIASES[norm] = name
        _REGISTRY[name] = info
        return loader

    return wrap


def _discover() -> None:
    from sercore.data import corpora

    for module in pkgutil.iter_modules(corpora.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{corpora.__name__}.{module.name}")


def available_datasets() -> list[str]:
    """Names of every registered corpus, sorted."""
    _discover()
    return sorted(_REGISTRY)


def dataset_info(name: str) -> DatasetInfo:
    """The registered corpus ``name`` (spellings like ``crema-d``/``emo_db`` accepted); ``KeyError`` listing
    the known names otherwise."""
    _discover()
    key = _ALIASES.get(_norm(name))
    if key is None:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def loader_params(name: str) -> dict:
    """The keyword parameters the loader of ``name`` accepts, with their defaults (e.g. ``on_error``)."""
    sig = inspect.signature(dataset_info(name).loader)
    return {p.name: p.default for p in list(sig.parameters.values())[1:]
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def load_dataset(name: str, root=None, **params) -> pd.DataFrame:
    """Load a corpus manifest by name; ``params`` go to that corpus's loader (e.g. ``on_error="raise"``).

    An unknown name is a ``KeyError`` listing the known ones; a parameter the loader does not take is a
    ``TypeError`` listing the ones it does.
    """
    info = dataset_info(name)
    accepted = loader_params(info.name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(f"{info.name}: unknown dataset parameter(s) {unknown}; accepted: {', '.join(accepted)}")
    return info.loader(root, **params)


class BadFiles:
    """What a loader could not use, kept or raised according to ``on_error`` (``"skip"`` or ``"raise"``).

    ``add(path, reason)`` raises ``ManifestError("<source>: <path>: <reason>")`` under ``"raise"``; under
    ``"skip"`` it records the file. ``attach(df)`` stores the records in ``df.attrs["bad_files"]`` (merged with
    any already there) and warns once with the count and the first names.
    """

    def __init__(self, source: str, on_error: str = "skip", step: str = "loader"):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"{source}: on_error must be 'raise' or 'skip', got {on_error!r}")
        self.source, self.on_error, self.step, self.records = source, on_error, step, []

    def add(self, path, reason: str) -> None:
        if self.on_error == "raise":
            raise ManifestError(f"{self.source}: {path}: {reason}")
        self.records.append({"path": str(path), "reason": str(reason), "step": self.step})

    def __len__(self) -> int:
        return len(self.records)

    def attach(self, df: pd.DataFrame) -> pd.DataFrame:
        if self.records:
            shown = "; ".join(f"{r['path']} ({r['reason']})" for r in self.records[:_SHOWN])
            more = f" ... ({len(self.records)} in all)" if len(self.records) > _SHOWN else ""
            warnings.warn(f"{self.source}: skipped {len(self.records)} file(s): {shown}{more}", stacklevel=3)
        df.attrs["bad_files"] = list(df.attrs.get("bad_files", [])) + self.records
        return df


def bad_files(df: pd.DataFrame) -> list[dict]:
    """The files a loader skipped (``df.attrs["bad_files"]``), or an empty list."""
    return list(df.attrs.get("bad_files", []))
