"""nEMO, a dataset of emotional speech in Polish (Christop, "nEMO: Dataset of Emotional Speech in Polish",
LREC-COLING 2024; github.com/amu-cai/nEMO, also huggingface.co/datasets/amu-cai/nEMO): 4481 utterances by nine
actors in six emotional states, 90 sentences chosen to cover Polish phonetics.

Layout (the release's README): ``data.tsv`` and the folder ``samples/`` holding the audio files "named according
to the ``file_id`` attribute listed in ``data.tsv``". The TSV's columns are ``file_id`` (the file name,
``{speaker_id}_{emotion}_{sentence_id}.wav``, e.g. ``EB0_anger_1.wav``), ``emotion``, ``raw_text``,
``normalized_text``, ``speaker_id``, ``gender`` (male/female) and ``age``. The release has no partition.

Emotions (the ``emotion`` column): anger→ang, fear→fea, happiness→hap, neutral→neu, sadness→sad,
surprised→sur (the README's prose says "surprise", the labels say ``surprised``). Speaker = ``speaker_id``
(EB0, IC0, KD0, KS0, MK0, MP0, SM0, TP0, WR0), gender M/F from ``gender``, text_id = the sentence id of the
file name (the same id is the same sentence for every actor and emotion).

Quirks: in the released ``data.tsv`` the ``speaker_id`` values are padded with eight spaces (``"        WR0"``);
every column is stripped. A row whose ``file_id`` does not follow the naming scheme, disagrees with its
``speaker_id`` or ``emotion`` columns, or whose audio file is missing, and an audio file in ``samples/`` that
``data.tsv`` does not list, are reported.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import lookup, open_corpus, walk_audio
from sercore.data.manifest import ManifestError
from sercore.data.registry import register_dataset

LAYOUT = "<root>/data.tsv (file_id, emotion, ..., speaker_id, gender, age) + <root>/samples/EB0_anger_1.wav"
EMOTIONS = {"anger": "ang", "fear": "fea", "happiness": "hap", "neutral": "neu", "sadness": "sad",
            "surprised": "sur"}
COLUMNS = ("file_id", "emotion", "speaker_id", "gender")
_GENDERS = {"male": "M", "female": "F"}
_NAME = re.compile(r"^([A-Z]+\d+)_([a-z]+)_(\d+)$")


def read_table(path: Path) -> pd.DataFrame:
    """``data.tsv`` as strings, every value stripped; ``ManifestError`` naming the file when it is missing,
    unreadable or lacks a column of ``COLUMNS``."""
    if not path.is_file():
        raise ManifestError(f"nemo: no data.tsv in {path.parent}; expected {LAYOUT}")
    try:  # the transcriptions hold quotation marks: read them as text
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not a readable TSV ({exc})") from exc
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}; found {list(table.columns)}; expected {LAYOUT}")
    return table.apply(lambda col: col.str.strip())


@register_dataset("nemo", layout=LAYOUT)
def load_nemo(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """nEMO manifest: 6 emotions, 9 actors, labels from ``data.tsv``, text_id = sentence id; see the module."""
    root, rows = open_corpus(root, "nemo", LAYOUT, on_error)
    samples = root / "samples"
    listed = set()
    for rec in read_table(root / "data.tsv").to_dict("records"):
        path = samples / rec["file_id"]
        listed.add(rec["file_id"])
        m = _NAME.match(Path(rec["file_id"]).stem)
        if m is None or Path(rec["file_id"]).suffix.lower() != ".wav":
            rows.bad.add(path, "file_id is not like EB0_anger_1.wav ({speaker_id}_{emotion}_{sentence_id}.wav)")
            continue
        speaker, label, sentence = m.groups()
        if (speaker, label) != (rec["speaker_id"], rec["emotion"]):
            rows.bad.add(path, f"file name says {speaker} {label} but data.tsv says speaker_id "
                               f"{rec['speaker_id']!r} emotion {rec['emotion']!r}")
            continue
        if not path.is_file():
            rows.bad.add(path, "listed in data.tsv but the audio file is missing")
            continue
        emotion = lookup(rec["emotion"], EMOTIONS, path, rows.bad)
        if emotion is not None:
            rows.add(utt_id=path.stem, path=str(path), speaker=speaker, emotion=emotion, dataset="nemo",
                     gender=_GENDERS.get(rec["gender"].lower()), text_id=sentence)
    for path in walk_audio(samples):
        if path.name not in listed:
            rows.bad.add(path, "audio file not listed in data.tsv")
    return finish(rows, "nemo", LAYOUT, check_audio=check_audio)
