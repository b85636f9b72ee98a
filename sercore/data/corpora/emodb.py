"""EmoDB (Berlin Database of Emotional Speech): 10 actors, 10 German sentences, 7 emotions."""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import corpus_root, finish, wav_files
from sercore.data.registry import BadFiles, register_dataset

LAYOUT = "<root>/wav/03a01Fa.wav (speaker, text, emotion letter, version)"
EMOTIONS = {"W": "ang", "L": "bor", "E": "dis", "A": "fea", "F": "hap", "T": "sad", "N": "neu"}
GENDER = {**{s: "M" for s in ("03", "10", "11", "12", "15")}, **{s: "F" for s in ("08", "09", "13", "14", "16")}}

_NAME = re.compile(r"^(\d\d)([a-z]\d\d)([A-Z])([a-z])$")


@register_dataset("emodb", layout=LAYOUT, aliases=("emo-db",))
def load_emodb(root, *, check_audio: bool = True, on_error: str = "skip") -> pd.DataFrame:
    """EmoDB: emotion letters W L E A F T N → ang bor dis fea hap sad neu; 10 speakers, gender known.

    Misnamed files, unknown letters or speakers and unreadable audio are skipped and listed in
    ``attrs["bad_files"]`` (``on_error="raise"``: an error naming the first).
    """
    bad = BadFiles("emodb", on_error)
    root = corpus_root(root, "emodb", LAYOUT)
    rows = []
    for path in wav_files(root / "wav", "emodb", LAYOUT):
        m = _NAME.match(path.stem)
        if not m:
            bad.add(path, "file name is not like 03a01Fa.wav")
            continue
        speaker, text, letter, _ = m.groups()
        if letter not in EMOTIONS:
            bad.add(path, f"unknown emotion letter {letter!r}; known: {' '.join(EMOTIONS)}")
        elif speaker not in GENDER:
            bad.add(path, f"unknown speaker {speaker!r}; known: {' '.join(sorted(GENDER))}")
        else:
            rows.append(dict(utt_id=path.stem, path=str(path), speaker=speaker, emotion=EMOTIONS[letter],
                             dataset="emodb", gender=GENDER[speaker], text_id=text))
    return finish(rows, "emodb", LAYOUT, bad, check_audio=check_audio)
