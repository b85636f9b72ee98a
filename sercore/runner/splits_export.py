"""``run_all.py --export-splits DIR``: each corpus's folds, as its notebooks used them, written as EmoBox fold files.

The folds are read from the ``splits.csv`` a notebook saved under ``results/<dataset>/`` (every notebook saves the
same one) and the corpus's manifest (loaded again: paths and labels), and written to ``DIR/<dataset>/fold_<k>/``
by :func:`sercore.data.export_emobox`; ``run_all.py --splits DIR/<dataset>`` reads them back.
"""

from __future__ import annotations

from pathlib import Path

from sercore.runner.execute import say
from sercore.runner.plan import Corpus


def export_run_splits(results_root: str | Path, corpora: list[Corpus], folder: str | Path, *, size: str,
                      strict: bool = False, dataset_params: dict | None = None) -> dict[str, list[Path]]:
    """Write the folds of each corpus run under ``results_root`` to ``folder/<dataset>/``; returns the files per
    corpus (a corpus without a saved ``splits.csv`` is reported and left out)."""
    from sercore.data import export_emobox, load_splits
    from sercore.data.registry import dataset_info
    from sercore.runner.corpus import load_corpus

    written = {}
    for corpus in corpora:
        name = dataset_info(corpus.name).name
        saved = sorted(Path(results_root, name).glob("*/splits.csv"))
        if not saved:
            say(f"{name}: no splits.csv under {Path(results_root, name)}; nothing exported")
            continue
        manifest = load_corpus(Corpus(name, corpus.root, {**(dataset_params or {}), **corpus.params}), size=size,
                         strict=strict)
        splits = load_splits(saved[0], allow_speaker_dependent=True)
        written[name] = export_emobox(splits, manifest, Path(folder) / name, name)
        say(f"{name}: {splits['fold'].nunique()} fold(s) exported as EmoBox fold files to {Path(folder) / name}")
    return written
