"""The synthetic default corpus (``sercore.data.synth``), generated on first use; no data root needed."""

from __future__ import annotations

import importlib

import pandas as pd

from sercore.data.registry import BadFiles, register_dataset

LAYOUT = "generated (synthetic eSpeak NG corpus) into <root or the cache folder>/corpora/"


@register_dataset("default", layout=LAYOUT, aliases=("synthetic",), needs_root=False)
def load_default(root=None, *, size: str = "default", seed: int = 0, workers: int | None = None,
                 check_audio: bool = True, on_error: str = "skip") -> pd.DataFrame:
    """The synthetic corpus of ``size`` and ``seed`` (see ``sercore.data.synth.load_default_corpus``).

    ``check_audio`` and ``on_error`` are accepted like every loader's (the generated files are checked by
    the generator itself), so the same ``dataset_params`` work for every corpus.
    """
    BadFiles("default", on_error)  # validates on_error
    synth = importlib.import_module("..synth", __package__)  # lazy: the generator pulls in its own code
    kwargs = {"size": size, "seed": seed} | ({"workers": workers} if workers is not None else {})
    return synth.load_default_corpus(root, **kwargs)
