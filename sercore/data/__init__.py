"""Corpora: the manifest format, the dataset registry and its loaders, splits and the synthetic default corpus.

Each corpus is one module of ``sercore.data.corpora`` registered with ``register_dataset``; ``load_dataset(name,
root, **params)`` loads any of them and ``available_datasets()`` lists them. ``sercore.data.synth`` (the
generated default corpus) is imported lazily, on first use of ``load_default_corpus`` or ``load_dataset("default")``.
"""

from __future__ import annotations

import importlib

from sercore.data.corpora.cremad import load_cremad
from sercore.data.corpora.csv import load_csv
from sercore.data.corpora.emodb import load_emodb
from sercore.data.corpora.esd import load_esd
from sercore.data.corpora.iemocap import load_iemocap
from sercore.data.corpora.ravdess import load_ravdess
from sercore.data.manifest import (
    COLUMNS,
    EMOTIONS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    TARGET_EMOTIONS,
    ManifestError,
    canonical_emotion,
    make_manifest,
    ood_subset,
    read_manifest_csv,
    target_subset,
    validate_manifest,
    write_manifest_csv,
)
from sercore.data.registry import (
    BadFiles,
    available_datasets,
    bad_files,
    dataset_info,
    load_dataset,
    loader_params,
    register_dataset,
)
from sercore.data.split_files import SplitFileError, export_emobox, read_splits
from sercore.data.splits import (
    LeakageError,
    assert_no_leakage,
    describe_splits,
    load_splits,
    make_splits,
    save_splits,
    speaker_dependent_test,
    speaker_dependent_val,
    split_ids,
)

__all__ = [
    "COLUMNS", "EMOTIONS", "OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "TARGET_EMOTIONS", "ManifestError",
    "LeakageError", "make_manifest", "validate_manifest", "read_manifest_csv", "write_manifest_csv",
    "canonical_emotion", "target_subset", "ood_subset", "load_dataset", "load_iemocap", "load_cremad",
    "load_ravdess", "load_esd", "load_emodb", "load_csv", "load_default_corpus", "available_datasets",
    "dataset_info", "loader_params", "register_dataset", "BadFiles", "bad_files", "make_splits",
    "describe_splits", "speaker_dependent_val", "speaker_dependent_test", "read_splits", "export_emobox",
    "SplitFileError", "assert_no_leakage", "split_ids", "save_splits", "load_splits",
]


def __getattr__(name: str):
    """Lazy access to ``synth`` and ``load_default_corpus`` (keeps ``import sercore.data`` light)."""
    if name == "synth":
        return importlib.import_module(".synth", __name__)
    if name == "load_default_corpus":
        return importlib.import_module(".synth", __name__).load_default_corpus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
