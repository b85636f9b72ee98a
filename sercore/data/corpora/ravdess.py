"""RAVDESS speech: 24 actors (odd male, even female), 2 statements, 8 emotions, seven-part numeric file names."""

from __future__ import annotations

import re

import pandas as pd

from sercore.data.corpora._common import audio_files, corpus_root, finish
from sercore.data.manifest import ManifestError
from sercore.data.registry import BadFiles, register_dataset

LAYOUT = ("<root>/Actor_01/03-01-01-01-01-01-01.wav "
          "(modality-channel-emotion-intensity-statement-repetition-actor)")
EMOTIONS = {"01": "neu", "02": "cal", "03": "hap", "04": "sad", "05": "ang", "06": "fea", "07": "dis", "08": "sur"}

_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


@register_dataset("ravdess", layout=LAYOUT)
def load_ravdess(root, *, calm: str = "keep", check_audio: bool = True, on_error: str = "skip") -> pd.DataFrame:
    """RAVDESS speech (audio-only files ``03-01-*``; song and video files are not part of it).

    8 emotions; ``calm="merge"`` relabels calm as neutral. Speaker = actor (``01``..``24``), odd = male;
    text_id = statement (``01``/``02``). Misnamed files, unknown emotion codes, files in another actor's
    folder and unreadable audio are skipped and listed in ``attrs["bad_files"]``.
    """
    if calm not in ("keep", "merge"):
        raise ValueError(f"ravdess: calm must be 'keep' or 'merge', got {calm!r}")
    bad = BadFiles("ravdess", on_error)
    root = corpus_root(root, "ravdess", LAYOUT)
    actors = sorted(d for d in root.glob("Actor_*") if d.is_dir())
    if not actors:
        raise ManifestError(f"ravdess: no Actor_NN folders under {root}; expected {LAYOUT}")
    rows = []
    for folder in actors:
        for path in audio_files(folder):
            m = _NAME.match(path.stem)
            if not m:
                bad.add(path, "file name is not like 03-01-01-01-01-01-01.wav")
                continue
            modality, channel, emotion, _, statement, _, actor = m.groups()
            if (modality, channel) != ("03", "01"):
                continue  # song or video: not the speech corpus
            if emotion not in EMOTIONS:
                bad.add(path, f"unknown emotion code {emotion!r}; known: {' '.join(EMOTIONS)}")
            elif folder.name != f"Actor_{actor}":
                bad.add(path, f"names actor {actor} but lies in {folder.name}")
            else:
                code = EMOTIONS[emotion]
                rows.append(dict(utt_id=path.stem, path=str(path), speaker=actor,
                                 emotion="neu" if (code == "cal" and calm == "merge") else code,
                                 dataset="ravdess", gender="M" if int(actor) % 2 else "F", text_id=statement))
    return finish(rows, "ravdess", LAYOUT, bad, check_audio=check_audio)
