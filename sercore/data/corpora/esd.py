"""ESD (Emotional Speech Dataset): 10 Mandarin and 10 English speakers, 350 parallel sentences, 5 emotions."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from sercore.data.corpora._common import audio_files, corpus_root, finish
from sercore.data.manifest import ManifestError
from sercore.data.registry import BadFiles, register_dataset

LAYOUT = "<root>/0011/Angry/0011_000351.wav or <root>/0011/Angry/{train,evaluation,test}/0011_000351.wav"
EMOTIONS = {"angry": "ang", "happy": "hap", "neutral": "neu", "sad": "sad", "surprise": "sur"}
LANGUAGES = {"mandarin": range(1, 11), "english": range(11, 21)}
SUBSETS = ("train", "evaluation", "test")

_NAME = re.compile(r"^(\d{4})_(\d{6})$")


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _speaker_rows(folder: Path, bad: BadFiles) -> list[dict]:
    lang = "en" if int(folder.name) > 10 else "zh"
    rows = []
    for emo_dir in _visible_dirs(folder):
        if emo_dir.name.lower() not in EMOTIONS:
            bad.add(emo_dir, "unknown emotion folder; known: Angry Happy Neutral Sad Surprise")
            continue
        subdirs = _visible_dirs(emo_dir)
        for d in subdirs:
            if d.name not in SUBSETS:
                bad.add(d, f"unexpected folder; expected {LAYOUT}")
        files = audio_files(emo_dir) + [p for d in subdirs if d.name in SUBSETS for p in audio_files(d)]
        for path in files:
            m = _NAME.match(path.stem)
            if not m or m[1] != folder.name:
                bad.add(path, f"file name is not like {folder.name}_000351.wav")
                continue
            sentence = (int(m[2]) - 1) % 350 + 1
            rows.append(dict(utt_id=path.stem, path=str(path), speaker=folder.name,
                             emotion=EMOTIONS[emo_dir.name.lower()], dataset="esd",
                             text_id=f"{lang}{sentence:03d}"))
    return rows


@register_dataset("esd", layout=LAYOUT)
def load_esd(root, *, language: str = "english", check_audio: bool = True, on_error: str = "skip") -> pd.DataFrame:
    """ESD: 5 emotions (Angry Happy Neutral Sad Surprise); speakers 0001–0010 Mandarin, 0011–0020 English.

    ``language`` is ``"english"``, ``"mandarin"`` or ``"both"``. Audio may sit in the emotion folder or in its
    train/evaluation/test subfolders. text_id = language + sentence number (the 350 sentences are parallel
    across emotions: utterance n reads sentence ``(n-1) % 350 + 1``). Unknown folders, misnamed or duplicate
    files and unreadable audio are skipped and listed in ``attrs["bad_files"]``.
    """
    if language not in ("english", "mandarin", "both"):
        raise ValueError(f"esd: language must be 'english', 'mandarin' or 'both', got {language!r}")
    bad = BadFiles("esd", on_error)
    root = corpus_root(root, "esd", LAYOUT)
    speakers = [d for d in _visible_dirs(root) if re.fullmatch(r"\d{4}", d.name)]
    if not speakers:
        raise ManifestError(f"esd: no speaker folders (0001..0020) under {root}; expected {LAYOUT}")
    wanted = [n for lang, ids in LANGUAGES.items() if language in (lang, "both") for n in ids]
    rows = []
    for folder in speakers:
        if int(folder.name) not in range(1, 21):
            bad.add(folder, "unknown speaker folder; ESD speakers are 0001..0020")
        elif int(folder.name) in wanted:
            rows += _speaker_rows(folder, bad)
    if not rows and not len(bad):
        raise ManifestError(f"esd: no {language} speakers under {root} (English 0011..0020, Mandarin 0001..0010)")
    return finish(rows, "esd", LAYOUT, bad, check_audio=check_audio)
