"""TurEV-DB, the Turkish Emotional Voice Database (Canpolat, Ormanoğlu & Zeyrek, 2020;
github.com/Xeonen/TurEV-DB): 1735 single-word recordings by 6 speakers in 4 emotions.

Layout (the repository's ``Sound Source/`` folder; nkululeko's TurEV-DB recipe reads it the same way): one
folder per emotion, ``Sound Source/Angry/1157_kz_acik.wav``; each name starts with the speaker id (four
digits: 1157, 1234, 1358, 1984, 6783, 7895), then a Turkish emotion abbreviation (kz kızgın, sk sakin,
mt mutlu, ...) and the word. The emotion is the folder: Angry→ang, Calm→cal, Happy→hap, Sad→sad. Speaker =
the leading id, text_id = the word; the release gives no gender.

Quirks: the label lives only in the folder, the speaker only at the start of the name. A file outside an
emotion folder, a name not starting with a numeric speaker id, or an abbreviation that contradicts its
folder (kz outside Angry, sk outside Calm, mt outside Happy) is reported.
"""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import finish
from sercore.data.corpora._layouts import match_name, open_corpus, walk_audio
from sercore.data.registry import register_dataset

LAYOUT = "<root>/Sound Source/<Angry|Calm|Happy|Sad>/1157_kz_acik.wav (speaker_emotion-abbrev_word)"
EMOTIONS = {"angry": "ang", "calm": "cal", "happy": "hap", "sad": "sad"}
ABBREVIATIONS = {"kz": "angry", "sk": "calm", "mt": "happy"}
_NAME = re.compile(r"^(\d+)_([a-z]+)_(.+)$")


@register_dataset("turevdb", layout=LAYOUT, aliases=("turev",))
def load_turevdb(root, *, on_error: str = "skip", check_audio: bool = True) -> pd.DataFrame:
    """TurEV-DB manifest: 4 emotions from the folders, speakers from the names' leading ids."""
    root, rows = open_corpus(root, "turevdb", LAYOUT, on_error)
    source = root / "Sound Source" if (root / "Sound Source").is_dir() else root
    for path in walk_audio(source):
        folder = path.parent.name.lower()
        if folder not in EMOTIONS:
            rows.bad.add(path, f"not in an emotion folder ({', '.join(f.capitalize() for f in EMOTIONS)})")
            continue
        m = match_name(_NAME, path, rows.bad, "1157_kz_acik.wav (speaker id first)")
        if m is None:
            continue
        speaker, abbrev, word = m.groups()
        if ABBREVIATIONS.get(abbrev, folder) != folder:
            rows.bad.add(path, f"emotion abbreviation {abbrev!r} contradicts folder {path.parent.name}")
            continue
        rows.add(utt_id=path.stem, path=str(path), speaker=speaker, emotion=EMOTIONS[folder],
                 dataset="turevdb", text_id=word)
    return finish(rows, "turevdb", LAYOUT, check_audio=check_audio)
