"""Tiny fixture folders in each corpus's official layout (real file naming, real label files).

Every WAV is 0.3 s of noise at 16 kHz. The builders return the corpus root; the module constants say what
each folder holds, so tests can check the loaders against known counts. Other test modules may reuse them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000
SECONDS = 0.3

# IEMOCAP: per session, one improvised dialog (female-led) and one scripted dialog (male-led).
IEMOCAP_DIALOGS = {
    "F_impro01": [("F000", "neu"), ("M000", "hap"), ("F001", "exc"), ("M001", "xxx"), ("F002", "fru"), ("M002", "sad")],
    "M_script01_1": [("F000", "ang"), ("M000", "sur"), ("F001", "neu"), ("M001", "xxx")],
}
IEMOCAP_SESSIONS = (1, 2, 3, 4, 5)
CREMAD_ACTORS = ("1001", "1002", "1003", "1004", "1005", "1006")
CREMAD_SEX = {"1001": "Male", "1002": "Female", "1003": "Male", "1004": "Female", "1005": "Male", "1006": "Female"}
RAVDESS_ACTORS = (1, 2, 3, 4, 5, 6)
ESD_SPEAKERS = ("0001", "0011", "0012", "0013", "0014", "0015")  # 0001 Mandarin, the rest English
ESD_SPLIT_SPEAKERS = ("0014", "0015")  # these use train/evaluation/test subfolders
ESD_FIRST = {"Neutral": 1, "Angry": 351, "Happy": 701, "Sad": 1051, "Surprise": 1401}
EMODB_SPEAKERS = ("03", "08", "09", "10", "11")
EMODB_LETTERS = "WLEAFTN"


def write_wav(path: Path, *, seconds: float = SECONDS, sr: int = SR, seed: int = 0) -> Path:
    """Write ``seconds`` of low-level noise as 16-bit PCM WAV (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).normal(0.0, 0.1, int(seconds * sr)).astype(np.float32)
    sf.write(path, noise, sr, subtype="PCM_16")
    return path


def write_empty_file(path: Path) -> Path:
    """A zero-byte file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"")
    return Path(path)


def write_text_as_wav(path: Path) -> Path:
    """A text file with an audio file's name."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("this is a text file, not audio\n" * 20)
    return Path(path)


def write_header_only(path: Path, *, sr: int = SR) -> Path:
    """A valid WAV header announcing no frames (data chunk of size 0)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(0, np.float32), sr, subtype="PCM_16")
    return Path(path)


def write_truncated(path: Path, *, keep: float = 0.5, fmt: str = "WAV", seed: int = 0) -> Path:
    """A WAV (or AIFF) of ``SECONDS`` whose data are cut off after ``keep`` of the file: the header still
    promises every frame (a copy interrupted mid-file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).normal(0.0, 0.1, int(SECONDS * SR)).astype(np.float32)
    sf.write(path, noise, SR, subtype="PCM_16", format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


# The bad files of ``add_bad_emodb_files``: name → the words its reason must contain.
EMODB_BAD = {"recording_1.wav": "not like 03a01Fa", "03a04Fb.wav": "empty file", "08a04Wb.wav": "unreadable",
             "09a04Lb.wav": "empty audio", "10a04Tb.wav": "truncated"}


def add_bad_emodb_files(root: Path) -> Path:
    """Into an EmoDB fixture's ``wav/``: a misnamed file, a zero-byte file, a text file named ``.wav``, a
    header with no frames and a truncated WAV (names in ``EMODB_BAD``, all valid EmoDB names but the first)."""
    folder = Path(root) / "wav"
    write_wav(folder / "recording_1.wav", seed=99)
    write_empty_file(folder / "03a04Fb.wav")
    write_text_as_wav(folder / "08a04Wb.wav")
    write_header_only(folder / "09a04Lb.wav")
    write_truncated(folder / "10a04Tb.wav")
    return Path(root)


def iemocap_dialog(session: int, kind: str) -> str:
    """Dialog name, e.g. ``iemocap_dialog(1, "F_impro01")`` → ``Ses01F_impro01``."""
    return f"Ses{session:02d}{kind}"


def iemocap_span(index: int) -> tuple[float, float]:
    """Label time span of the index-th turn of a dialog (durations differ per turn)."""
    start = 1.5 * index + 0.25
    return start, start + 0.3 + 0.1 * index


def make_iemocap(root: Path, *, sessions=IEMOCAP_SESSIONS) -> Path:
    """IEMOCAP layout: Session*/sentences/wav/<dialog>/<utt>.wav + Session*/dialog/EmoEvaluation/<dialog>.txt."""
    root = Path(root)
    for s in sessions:
        sdir = root / f"Session{s}"
        for kind, turns in IEMOCAP_DIALOGS.items():
            dialog = iemocap_dialog(s, kind)
            lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            for i, (turn, code) in enumerate(turns):
                utt = f"{dialog}_{turn}"
                start, end = iemocap_span(i)
                lines += [f"[{start:.4f} - {end:.4f}]\t{utt}\t{code}\t[2.5000, 3.0000, 2.5000]",
                          "C-E1:\tNeutral;\t()", "C-E2:\tNeutral;\t()", "A-E1:\tval 3; act 2; dom  2;\t()", ""]
                write_wav(sdir / "sentences" / "wav" / dialog / f"{utt}.wav", seed=s * 100 + i)
            label_dir = sdir / "dialog" / "EmoEvaluation"
            label_dir.mkdir(parents=True, exist_ok=True)
            (label_dir / f"{dialog}.txt").write_text("\n".join(lines) + "\n")
        (sdir / "dialog" / "EmoEvaluation" / "Categorical").mkdir(exist_ok=True)  # present in the release
    return root


def make_cremad(root: Path, *, demographics: bool = True) -> Path:
    """CREMA-D layout: AudioWAV/<actor>_<sentence>_<EMO>_<intensity>.wav (+ VideoDemographics.csv)."""
    root = Path(root)
    for a, actor in enumerate(CREMAD_ACTORS):
        for e, emo in enumerate(("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")):
            write_wav(root / "AudioWAV" / f"{actor}_DFA_{emo}_XX.wav", seed=a * 10 + e)
        write_wav(root / "AudioWAV" / f"{actor}_IEO_ANG_HI.wav", seed=a * 10 + 9)
    if demographics:
        rows = ["ActorID,Age,Sex,Race,Ethnicity"] + [f"{a},30,{s},Caucasian,Not Hispanic"
                                                     for a, s in CREMAD_SEX.items()]
        (root / "VideoDemographics.csv").write_text("\n".join(rows) + "\n")
    return root


def make_ravdess(root: Path) -> Path:
    """RAVDESS speech layout: Actor_NN/03-01-EE-01-01-01-NN.wav for the 8 emotions, plus one song file (03-02)."""
    root = Path(root)
    for actor in RAVDESS_ACTORS:
        for emotion in range(1, 9):
            name = f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav"
            write_wav(root / f"Actor_{actor:02d}" / name, seed=actor * 10 + emotion)
    write_wav(root / "Actor_01" / "03-02-03-01-01-01-01.wav")  # song: not part of the speech corpus
    return root


def make_esd(root: Path) -> Path:
    """ESD layout: NNNN/<Emotion>/NNNN_xxxxxx.wav, or .../<Emotion>/{train,test}/... for ESD_SPLIT_SPEAKERS."""
    root = Path(root)
    for s, speaker in enumerate(ESD_SPEAKERS):
        for e, (emotion, first) in enumerate(ESD_FIRST.items()):
            folder = root / speaker / emotion
            if speaker in ESD_SPLIT_SPEAKERS:
                write_wav(folder / "train" / f"{speaker}_{first:06d}.wav", seed=s * 10 + e)
                write_wav(folder / "test" / f"{speaker}_{first + 1:06d}.wav", seed=s * 10 + e + 5)
            else:
                write_wav(folder / f"{speaker}_{first:06d}.wav", seed=s * 10 + e)
        (root / speaker / f"{speaker}.txt").write_text(f"{speaker}_000001\tsome text\tNeutral\n")
    return root


def make_emodb(root: Path) -> Path:
    """EmoDB layout: wav/<speaker><text><emotion letter><version>.wav, 7 emotions per speaker."""
    root = Path(root)
    for s, speaker in enumerate(EMODB_SPEAKERS):
        for e, letter in enumerate(EMODB_LETTERS):
            write_wav(root / "wav" / f"{speaker}a0{e % 5 + 1}{letter}a.wav", seed=s * 10 + e)
    return root


def iemocap_expected(*, exclude_script_5: bool = True) -> dict:
    """Counts the IEMOCAP fixture should yield: IEMOCAP-10 utterances and IEMOCAP-4 per-class counts."""
    labels = []
    for s in IEMOCAP_SESSIONS:
        for kind, turns in IEMOCAP_DIALOGS.items():
            if exclude_script_5 and iemocap_dialog(s, kind) == "Ses05M_script01_1":
                continue
            labels += [code for _, code in turns if code != "xxx"]
    four = {"neu": 0, "hap": 0, "sad": 0, "ang": 0}
    for code in labels:
        code = "hap" if code == "exc" else code
        if code in four:
            four[code] += 1
    return {"n10": len(labels), "four": four}


def emodb_from_corpus(root: Path, manifest) -> Path:
    """EmoDB layout filled with real speech: the synthetic corpus's WAVs renamed ``<speaker><text><letter><version>``
    (its speakers → EmoDB ids, emotions → EmoDB letters, emotions EmoDB lacks dropped)."""
    import shutil

    from sercore.data.corpora.emodb import EMOTIONS as EMODB_EMOTIONS
    from sercore.data.corpora.emodb import GENDER as EMODB_GENDER

    letters = {emotion: letter for letter, emotion in EMODB_EMOTIONS.items()}
    texts = [f"a0{i}" for i in range(1, 8)] + [f"b{i:02d}" for i in range(1, 11)]
    speakers = dict(zip(sorted(manifest["speaker"].unique()), sorted(EMODB_GENDER)))
    folder = Path(root) / "wav"
    folder.mkdir(parents=True, exist_ok=True)
    seen: dict = {}
    for row in manifest[manifest["emotion"].isin(list(letters))].itertuples():
        n = seen[row.speaker, row.emotion] = seen.get((row.speaker, row.emotion), -1) + 1
        version = "abcdefghijklmnopqrstuvwxyz"[n // len(texts)]
        name = f"{speakers[row.speaker]}{texts[n % len(texts)]}{letters[row.emotion]}{version}.wav"
        shutil.copy(row.path, folder / name)
    return Path(root)
