"""Corpora: the manifest format, loaders, splits and the synthetic default corpus.

``sercore.data.synth`` (the generated default corpus) is imported lazily, on first use of
``load_default_corpus`` or ``load_dataset("default")``.
"""

from __future__ import annotations

import importlib

from .loaders import (LOADERS, load_cremad, load_csv, load_dataset, load_emodb, load_esd, load_iemocap,
                      load_ravdess)
from .manifest import (COLUMNS, EMOTIONS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS, TARGET_EMOTIONS, ManifestError,
                       make_manifest, ood_subset, read_manifest_csv, target_subset, validate_manifest,
                       write_manifest_csv)
from .registry import BadFiles, available_datasets, bad_files, dataset_info, register_dataset
from .splits import LeakageError, assert_no_leakage, load_splits, make_splits, save_splits, split_ids

__all__ = [
    "COLUMNS", "EMOTIONS", "OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "TARGET_EMOTIONS", "LOADERS",
    "ManifestError", "LeakageError", "make_manifest", "validate_manifest", "read_manifest_csv",
    "write_manifest_csv", "target_subset", "ood_subset", "load_dataset", "load_iemocap", "load_cremad",
    "load_ravdess", "load_esd", "load_emodb", "load_csv", "load_default_corpus", "make_splits",
    "assert_no_leakage", "available_datasets", "dataset_info", "register_dataset", "BadFiles", "bad_files", "split_ids", "save_splits", "load_splits",
]


def __getattr__(name: str):
    """Lazy access to ``synth`` and ``load_default_corpus`` (keeps ``import sercore.data`` light)."""
    if name == "synth":
        return importlib.import_module(".synth", __name__)
    if name == "load_default_corpus":
        return importlib.import_module(".synth", __name__).load_default_corpus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
