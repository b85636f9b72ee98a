"""The module paths before the package layout of 0.2, kept for one release: importing one warns
(``DeprecationWarning``) and reads its names from the modules that now hold them."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

MOVED = {
    "sercore.config": ("sercore.core.config",),
    "sercore.atomic": ("sercore.core.atomic",),
    "sercore.digests": ("sercore.core.digests",),
    "sercore.provenance": ("sercore.core.provenance",),
    "sercore.precision": ("sercore.core.precision",),
    "sercore.audio": ("sercore.data.audio",),
    "sercore.featureset": ("sercore.features.featureset",),
    "sercore.losses": ("sercore.models.losses",),
    "sercore.train": ("sercore.training",),
    "sercore.pretrain_cache": ("sercore.training.pretrain_cache",),
    "sercore.finetune_cache": ("sercore.training.finetune_cache",),
    "sercore.protocols": ("sercore.pairwise", "sercore.training"),
    "sercore.representations": ("sercore.pairwise.representations",),
    "sercore.crosscorpus": ("sercore.pairwise.crosscorpus",),
    "sercore.experiment": ("sercore.notebook.experiment",),
    "sercore.settings": ("sercore.notebook.settings",),
    "sercore.overview": ("sercore.analysis.overview",),
    "sercore.engine.jobs": ("sercore.engine", "sercore.training", "sercore.pairwise", "sercore.clusters.pretrain",
                            "sercore.clusters.evaluate"),
}


def _alias(old: str, targets: tuple[str, ...]) -> types.ModuleType:
    module = types.ModuleType(old, f"Moved: use {' or '.join(targets)}.")

    def __getattr__(name):
        for target in targets:
            found = importlib.import_module(target)
            if hasattr(found, name):
                return getattr(found, name)
        raise AttributeError(f"module {old!r} (moved to {', '.join(targets)}) has no attribute {name!r}")

    module.__getattr__ = __getattr__
    return module


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        warnings.warn(f"{spec.name} is deprecated: it moved to {' / '.join(MOVED[spec.name])} (removed in 0.3)",
                      DeprecationWarning, stacklevel=2)
        return _alias(spec.name, MOVED[spec.name])

    def exec_module(self, module):
        pass


def install() -> None:
    """Let the old module paths import (once per process)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
