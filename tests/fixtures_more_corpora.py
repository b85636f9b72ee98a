"""Tiny fixture folders in the official layouts of TESS, SAVEE, EMOVO, CaFE, ShEMO, SUBESCO, URDU, MESD,
TurEV-DB, AESDD, JL-Corpus, MSP-Podcast, nEMO, ASED and BAVED, with real file names and each corpus's known quirks.

Every builder writes 0.1 s of noise per file and returns the corpus root. ``EXPECTED[name]`` says what the
loader must find: utterances, speakers, emotions, and the files it must report as bad (misnamed, unknown
label, unreadable, ...), so a test can check exact counts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SECONDS = 0.1


def write_audio(path: Path, *, sr: int = 16000, channels: int = 1, fmt: str = "WAV", seed: int = 0) -> Path:
    """Write ``SECONDS`` of noise; ``fmt="AIFF"`` writes AIFF data whatever the file's suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).normal(0.0, 0.1, (int(SECONDS * sr), channels)).astype(np.float32)
    sf.write(path, noise, sr, format=fmt, subtype="PCM_16")
    return path


def write_garbage(path: Path) -> Path:
    """A file that no audio reader can open."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not audio at all" * 4)
    return path


def _write_all(root: Path, names, bad=(), **kw) -> Path:
    """Write ``names`` under ``root`` (seeds 0, 1, ...; ``kw`` as for :func:`write_audio`), then the ``bad``
    files the loader must report (16 kHz, seed 0); return ``root`` as a Path."""
    root = Path(root)
    for i, name in enumerate(names):
        write_audio(root / name, seed=i, **kw)
    for name in bad:
        write_audio(root / name)
    return root


# ---------------------------------------------------------------- TESS
TESS_WORDS = ("back", "bath")
TESS_EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")
TESS_96K = "OAF_back_angry.wav"
TESS_AIFF = ("YAF_bath_sad.wav", "YAF_bath_fear.wav")


def make_tess(root: Path, *, kaggle: bool = False) -> Path:
    """TESS: flat Dataverse layout, or Kaggle's ``OAF_angry/`` folders; 96 kHz file, 2 AIFF-in-.wav files,
    a misnamed file, an unknown emotion and an unreadable file."""
    root = Path(root)
    for speaker in ("OAF", "YAF"):
        for word in TESS_WORDS:
            for emotion in TESS_EMOTIONS:
                name = f"{speaker}_{word}_{emotion}.wav"
                folder = root / (f"{speaker}_{'pleasant_surprised' if emotion == 'ps' else emotion}" if kaggle else "")
                write_audio(folder / name, sr=96000 if name == TESS_96K else 24414,
                            fmt="AIFF" if name in TESS_AIFF else "WAV")
    write_audio(root / "OAF_back.wav")                # misnamed: no emotion
    write_audio(root / "YAF_back_bored.wav")          # unknown emotion
    write_garbage(root / "YAF_dog_sad.wav")           # unreadable
    return root


# ---------------------------------------------------------------- SAVEE
SAVEE_CODES = ("a01", "d01", "f01", "h01", "n01", "n02", "sa01", "su01")


def make_savee(root: Path, *, kaggle: bool = False) -> Path:
    """SAVEE: ``AudioData/DC/a01.wav`` (official) or ``ALL/DC_a01.wav`` (Kaggle); 1 misnamed, 1 unknown code."""
    root = Path(root)
    for speaker in ("DC", "JE", "JK", "KL"):
        for code in SAVEE_CODES:
            name = f"ALL/{speaker}_{code}.wav" if kaggle else f"AudioData/{speaker}/{code}.wav"
            write_audio(root / name, sr=44100)
    (root / "AudioData").mkdir(parents=True, exist_ok=True)
    (root / "AudioData" / "Info.txt").write_text("'DC', 'JE', 'JK' and 'KL' are four male speakers\n")
    write_audio(root / "AudioData" / "DC" / "take1.wav")      # misnamed
    write_audio(root / "AudioData" / "JE" / "x01.wav")        # unknown emotion letter
    return root


# ---------------------------------------------------------------- EMOVO
EMOVO_ACTORS = ("f1", "f2", "m1")
EMOVO_CODES = ("dis", "gio", "neu", "pau", "rab", "sor", "tri")


def make_emovo(root: Path) -> Path:
    """EMOVO: ``<actor>/<emo>-<actor>-<sentence>.wav``, stereo 48 kHz; 1 misnamed, 1 in the wrong actor folder."""
    root = Path(root)
    for actor in EMOVO_ACTORS:
        for code in EMOVO_CODES:
            for sentence in ("b1", "n1"):
                write_audio(root / actor / f"{code}-{actor}-{sentence}.wav", sr=48000, channels=2)
    write_audio(root / "f1" / "dis-f1.wav", sr=48000, channels=2)           # misnamed
    write_audio(root / "f2" / "gio-m1-b1.wav", sr=48000, channels=2)        # actor m1 in folder f2
    return root


# ---------------------------------------------------------------- CaFE
CAFE_FOLDERS = {"C": "Colère", "J": "Joie", "T": "Tristesse"}


def make_cafe(root: Path) -> Path:
    """CaFE: ``Neutre/01-N-1-1.wav``, ``Colère/Faible/01-C-1-1.wav`` ...; actor 03 as ``.aiff`` (192 kHz
    release naming); 1 misnamed (no intensity)."""
    root = Path(root)
    for actor in ("01", "02", "03"):
        suffix, fmt = (".aiff", "AIFF") if actor == "03" else (".wav", "WAV")
        for sentence in (1, 2):
            write_audio(root / "Neutre" / f"{actor}-N-1-{sentence}{suffix}", sr=48000, fmt=fmt)
        for code, folder in CAFE_FOLDERS.items():
            for intensity, level in ((1, "Faible"), (2, "Fort")):
                write_audio(root / folder / level / f"{actor}-{code}-{intensity}-1{suffix}", sr=48000, fmt=fmt)
    write_audio(root / "Colère" / "Faible" / "04-C-1.wav")     # misnamed: intensity missing
    return root


# ---------------------------------------------------------------- ShEMO
SHEMO_FILES = ("female/F01A01.wav", "female/F01H01.wav", "female/F02N01.wav", "female/F02S01.wav",
               "male/M01A01.wav", "male/M01W01.wav", "male/M02F01.wav", "male/M02N01.wav")


def make_shemo(root: Path) -> Path:
    """ShEMO: ``female/F01A01.wav``, ``male/M01A01.wav``; 1 gender/folder mismatch, 1 unknown letter."""
    return _write_all(root, SHEMO_FILES, bad=("male/F03A01.wav",       # female name in the male folder
                                              "female/F01X01.wav"))    # unknown emotion letter


# ---------------------------------------------------------------- SUBESCO
SUBESCO_QUIRK = "F_02_MONIKA_S_2_SURPRISE_3].wav"


def make_subesco(root: Path) -> Path:
    """SUBESCO: flat ``SUBESCO/F_01_OISHI_S_1_ANGRY_1.wav``; the real ``...SURPRISE_3].wav`` file; 1 unknown
    emotion, 1 misnamed."""
    folder = Path(root) / "SUBESCO"
    for speaker in ("F_01_OISHI", "M_01_RAFI"):
        for sentence in (1, 2):
            for emotion in ("ANGRY", "HAPPY", "NEUTRAL", "SAD"):
                write_audio(folder / f"{speaker}_S_{sentence}_{emotion}_1.wav")
    write_audio(folder / SUBESCO_QUIRK)
    write_audio(folder / "F_01_OISHI_S_1_SHOUTING_1.wav")   # unknown emotion
    write_audio(folder / "recording1.wav")                  # misnamed
    return Path(root)


# ---------------------------------------------------------------- URDU
URDU_FILES = ("Angry/SM1_F1_A01.wav", "Angry/SF1_F2_A02.wav", "Happy/SM1_F3_H01.wav", "Happy/SM2_F4_H02.wav",
              "Neutral/SF1_F5_N01.wav", "Neutral/SM2_F6_N02.wav", "Sad/SM1_F7_S01.wav", "Sad/SF1_F8_S02.wav")


def make_urdu(root: Path) -> Path:
    """URDU: ``Angry/SM1_F1_A01.wav`` ...; 1 letter/folder mismatch, 1 name without a speaker code."""
    return _write_all(root, URDU_FILES, bad=("Sad/SM1_F9_A03.wav",     # angry letter in the Sad folder
                                             "Happy/F10_H03.wav"))     # no speaker code


# ---------------------------------------------------------------- MESD
MESD_EMOTIONS = ("Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness")


def make_mesd(root: Path) -> Path:
    """MESD: flat ``Mexican Emotional Speech Database (MESD)/Anger_C_A_abajo.wav``; 1 unknown emotion, 1 bad voice."""
    folder = Path(root) / "Mexican Emotional Speech Database (MESD)"
    for emotion in MESD_EMOTIONS:
        for voice in "CFM":
            write_audio(folder / f"{emotion}_{voice}_A_abajo.wav", sr=48000)
    write_audio(folder / "Anger_F_B_furia.wav", sr=48000)
    write_audio(folder / "Surprise_F_A_abajo.wav")   # not a MESD emotion
    write_audio(folder / "Anger_X_A_abajo.wav")      # voice type X
    return Path(root)


# ---------------------------------------------------------------- TurEV-DB
TUREV_FOLDERS = {"Angry": "kz", "Calm": "sk", "Happy": "mt", "Sad": "uz"}


def make_turevdb(root: Path) -> Path:
    """TurEV-DB: ``Sound Source/<Emotion>/<speaker>_<abbrev>_<word>.wav``; 1 name without speaker id,
    1 abbreviation contradicting its folder, 1 file outside the emotion folders."""
    source = Path(root) / "Sound Source"
    for folder, abbrev in TUREV_FOLDERS.items():
        for speaker in ("1157", "1234", "1358"):
            for word in ("acik", "algi"):
                write_audio(source / folder / f"{speaker}_{abbrev}_{word}.wav")
    write_audio(source / "Angry" / "kz_acik.wav")          # no speaker id
    write_audio(source / "Calm" / "1157_kz_beste.wav")     # angry abbreviation in Calm
    write_audio(source / "1157_kz_cay.wav")                # not in an emotion folder
    return Path(root)


# ---------------------------------------------------------------- AESDD
AESDD_FILES = ("anger/a01 (1).wav", "anger/a02 (1).wav", "anger/a01 (2).wav", "disgust/d01 (1).wav",
               "fear/f01 (3).wav", "happiness/h01 (2).wav", "happiness/h20 (2).wav", "sadness/s01 (1).wav",
               "sadness/s01 (1)b.wav")


def make_aesdd(root: Path) -> Path:
    """AESDD: ``<emotion>/xAA (B).wav`` with a second take ``s01 (1)b.wav``; 1 letter/folder mismatch, 1 misnamed."""
    return _write_all(root, AESDD_FILES, sr=44100, bad=("anger/d05 (1).wav",   # disgust letter in anger
                                                        "fear/f01.wav"))       # no speaker


# ---------------------------------------------------------------- JL-Corpus
JL_FILES = ("female1_angry_1a_1", "female1_happy_1a_1", "female2_sad_2b_1", "male1_neutral_1a_2",
            "male1_excited_3a_1", "male2_anxious_1a_1", "male2_apologetic_2a_1")


def make_jlcorpus(root: Path) -> Path:
    """JL-Corpus: ``Raw JL corpus (unchecked and unannotated)/JL(wav+txt)/female1_angry_1a_1.wav`` + ``.txt``;
    a copy elsewhere in the release that must be ignored; 1 unknown emotion, 1 misnamed speaker."""
    raw = Path(root) / "Raw JL corpus (unchecked and unannotated)" / "JL(wav+txt)"
    for i, name in enumerate(JL_FILES):
        write_audio(raw / f"{name}.wav", sr=44100, seed=i)
        (raw / f"{name}.txt").write_text("Sentence text.\n")
    write_audio(Path(root) / "Primary emotions" / f"{JL_FILES[0]}.wav")
    write_audio(raw / "female1_bored_1a_1.wav")      # unknown emotion
    write_audio(raw / "female3_angry_1a_1.wav")      # no such speaker
    return Path(root)


# ---------------------------------------------------------------- MSP-Podcast
MSP_ROWS = (  # FileName stem, EmoClass, SpkrID, Gender, Split_Set
    ("0001_0001", "A", "127", "Male", "Train"),
    ("0001_0002", "N", "127", "Male", "Train"),
    ("0002_0001", "H", "128", "Female", "Train"),
    ("0003_0001", "S", "200", "Female", "Development"),
    ("0003_0002", "C", "200", "Female", "Development"),
    ("0004_0001", "U", "Unknown", "Unknown", "Test1"),
    ("0004_0002", "X", "300", "Male", "Test1"),        # no consensus: left out, not reported
    ("0005_0001", "D", "301", "Female", "Test2"),      # second test set: left out by default
    ("0006_0001", "Q", "302", "Male", "Train"),        # unknown EmoClass
    ("0006_0002", "A", "302", "Male", "Train"),        # audio missing
    ("0007_0001", "A", "303", "Male", "Holdout"),      # unknown Split_Set
)
MSP_MISSING = "0006_0002"


def make_msppodcast(root: Path, *, labels: str = "labels_consensus.csv", audio: str = "Audios") -> Path:
    """MSP-Podcast: ``Labels/labels_consensus.csv`` + ``Audios/MSP-PODCAST_0001_0001.wav`` (see ``MSP_ROWS``)."""
    root = Path(root)
    lines = ["FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"]
    for stem, emo, spk, gender, split in MSP_ROWS:
        name = f"MSP-PODCAST_{stem}.wav"
        lines.append(f"{name},{emo},4.2,3.8,4.0,{spk},{gender},{split}")
        if stem != MSP_MISSING:
            write_audio(root / audio / name)
    (root / "Labels").mkdir(parents=True, exist_ok=True)
    (root / "Labels" / labels).write_text("\n".join(lines) + "\n")
    return root


# ---------------------------------------------------------------- nEMO
NEMO_SPEAKERS = {"EB0": ("female", "27"), "KS0": ("male", "23"), "WR0": ("male", "23")}
NEMO_EMOTIONS = ("anger", "fear", "happiness", "neutral", "sadness", "surprised")
NEMO_TEXT = {"1": "Lubię czytać przed snem.", "2": "„Ród smoka” to serial \"telewizyjny\"."}
NEMO_BAD = (  # file_id, emotion, speaker_id, write the audio?
    ("EB0-anger-3.wav", "anger", "EB0", True),          # misnamed
    ("EB0_contempt_1.wav", "contempt", "EB0", True),    # not a nEMO emotion
    ("KS0_anger_5.wav", "neutral", "KS0", True),        # name and emotion column disagree
    ("WR0_sadness_3.wav", "sadness", "WR0", False),     # audio missing
)
NEMO_UNLISTED = "WR0_anger_99.wav"


def make_nemo(root: Path) -> Path:
    """nEMO: ``data.tsv`` (speaker_id padded with 8 spaces, as released) + ``samples/EB0_anger_1.wav``; KS0 has
    no fear; the bad rows of ``NEMO_BAD`` and a file ``data.tsv`` does not list."""
    root = Path(root)
    lines = ["file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage"]

    def row(file_id, emotion, speaker, sentence="1"):
        gender, age = NEMO_SPEAKERS[speaker]
        text = NEMO_TEXT[sentence]
        lines.append(f"{file_id}\t{emotion}\t{text}\t{text.lower()}\t        {speaker}\t{gender}\t{age}")

    for i, (speaker, emotion, sentence) in enumerate((s, e, n) for s in NEMO_SPEAKERS for e in NEMO_EMOTIONS
                                                     for n in NEMO_TEXT):
        if (speaker, emotion) == ("KS0", "fear"):
            continue
        row(f"{speaker}_{emotion}_{sentence}.wav", emotion, speaker, sentence)
        write_audio(root / "samples" / f"{speaker}_{emotion}_{sentence}.wav", sr=24000, seed=i)
    for file_id, emotion, speaker, audio in NEMO_BAD:
        row(file_id, emotion, speaker)
        if audio:
            write_audio(root / "samples" / file_id)
    write_audio(root / "samples" / NEMO_UNLISTED)
    (root / "data.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


# ---------------------------------------------------------------- ASED
ASED_FOLDERS = {"n1": "01Neutral", "f2": "02Fearful", "h3": "03Happy", "s4": "04Sad", "a5": "05Angry"}
ASED_SPEAKERS = {"01": "01", "02": "02", "03": "02"}   # speaker → gender code (01 female, 02 male)
ASED_UPPER = "04Sad/S4-01-01-01-01.wav"
ASED_BAD = ("05Angry/a3-01-01-02-02.wav",       # emotion code a3: angry letter, folder number 3
            "03Happy/n1-02-01-02-03.wav",       # neutral code in the Happy folder
            "01Neutral/n1-01-01-03-02.wav",     # gender code 03
            "02Fearful/fear_01.wav")            # misnamed


def make_ased(root: Path) -> Path:
    """ASED v1: ``05Angry/a5-03-01-02-50.wav`` ...; speaker 03 has no sad recording; speaker 01's first sad file
    has the release's upper-case letter (``S4-...``); the bad files of ``ASED_BAD``."""
    names = []
    for speaker, gender in ASED_SPEAKERS.items():
        for code, folder in ASED_FOLDERS.items():
            if (speaker, code) == ("03", "s4"):
                continue
            names += [f"{folder}/{code}-{sentence}-01-{gender}-{speaker}.wav" for sentence in ("01", "02")]
    names = [ASED_UPPER if name == "04Sad/s4-01-01-01-01.wav" else name for name in names]
    return _write_all(root, names, bad=ASED_BAD)


# ---------------------------------------------------------------- BAVED
BAVED_SPEAKERS = {"1": "m-21", "2": "f-19", "3": "m-22"}
BAVED_BAD = ("3/1-m-21-3-3-2.wav",     # level 3
             "0/2-f-19-3-1-2.wav",     # word 3 in the folder of word 0
             "6/recording.wav")        # misnamed


def make_baved(root: Path) -> Path:
    """BAVED: ``<word>/<speaker>-<gender>-<age>-<word>-<level>-<record>.wav`` for words 0 and 3; speaker 3 has no
    level 2 (high); the bad files of ``BAVED_BAD``."""
    names = [f"{word}/{speaker}-{who}-{word}-{level}-1.wav" for speaker, who in BAVED_SPEAKERS.items()
             for word in ("0", "3") for level in "012" if (speaker, level) != ("3", "2")]
    return _write_all(root, names, bad=BAVED_BAD)


BUILDERS = {"tess": make_tess, "savee": make_savee, "emovo": make_emovo, "cafe": make_cafe, "shemo": make_shemo,
            "subesco": make_subesco, "urdu": make_urdu, "mesd": make_mesd, "turevdb": make_turevdb,
            "aesdd": make_aesdd, "jlcorpus": make_jlcorpus, "msppodcast": make_msppodcast, "nemo": make_nemo,
            "ased": make_ased, "baved": make_baved}

# name: (utterances, speakers, emotions, bad files) with the default loader settings
EXPECTED = {
    "tess": (28, 2, 7, 3),
    "savee": (32, 4, 7, 2),
    "emovo": (42, 3, 7, 2),
    "cafe": (24, 3, 4, 1),
    "shemo": (8, 4, 6, 2),
    "subesco": (17, 3, 5, 2),
    "urdu": (8, 3, 4, 2),
    "mesd": (19, 3, 6, 2),
    "turevdb": (24, 3, 4, 3),
    "aesdd": (9, 3, 5, 2),
    "jlcorpus": (7, 4, 6, 2),
    "msppodcast": (6, 4, 6, 3),
    "nemo": (34, 3, 6, 5),
    "ased": (28, 3, 5, 4),
    "baved": (16, 3, 3, 3),
}
