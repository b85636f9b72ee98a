"""CREMA-D: 91 actors, 12 sentences, 6 emotions; one folder of WAVs named actor_sentence_emotion_intensity."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from sercore.data.corpora._common import corpus_root, finish, wav_files
from sercore.data.registry import BadFiles, register_dataset

LAYOUT = "<root>/AudioWAV/1001_DFA_ANG_XX.wav (actor_sentence_emotion_intensity)"
EMOTIONS = {"ANG": "ang", "DIS": "dis", "FEA": "fea", "HAP": "hap", "NEU": "neu", "SAD": "sad"}

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def _genders(root: Path, bad: BadFiles) -> dict:
    """Actor id → ``M``/``F`` from ``VideoDemographics.csv`` (when present); an unreadable table goes to ``bad``."""
    path = root / "VideoDemographics.csv"
    if not path.is_file():
        return {}
    try:
        table = pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        bad.add(path, f"not a readable CSV ({exc}); genders are unknown")
        return {}
    if not {"ActorID", "Sex"} <= set(table.columns):
        bad.add(path, f"expected columns ActorID and Sex, found {list(table.columns)}; genders are unknown")
        return {}
    sexes = {"male": "M", "female": "F"}
    return {str(a).strip(): sexes.get(str(s).strip().lower()) for a, s in zip(table["ActorID"], table["Sex"])}


@register_dataset("cremad", layout=LAYOUT, aliases=("crema-d",))
def load_cremad(root, *, check_audio: bool = True, on_error: str = "skip") -> pd.DataFrame:
    """CREMA-D: 6 emotions (ANG DIS FEA HAP NEU SAD); speaker = actor, text_id = sentence code.

    Gender comes from ``<root>/VideoDemographics.csv`` when present, else it is unknown. Misnamed files,
    unknown emotion codes and unreadable audio are skipped and listed in ``attrs["bad_files"]``.
    """
    bad = BadFiles("cremad", on_error)
    root = corpus_root(root, "cremad", LAYOUT)
    genders, rows = _genders(root, bad), []
    for path in wav_files(root / "AudioWAV", "cremad", LAYOUT):
        m = _NAME.match(path.stem)
        if not m:
            bad.add(path, "file name is not like 1001_DFA_ANG_XX.wav")
        elif m[3] not in EMOTIONS:
            bad.add(path, f"unknown emotion code {m[3]!r}; known: {' '.join(EMOTIONS)}")
        else:
            rows.append(dict(utt_id=path.stem, path=str(path), speaker=m[1], emotion=EMOTIONS[m[3]],
                             dataset="cremad", gender=genders.get(m[1]), text_id=m[2]))
    return finish(rows, "cremad", LAYOUT, bad, check_audio=check_audio)
