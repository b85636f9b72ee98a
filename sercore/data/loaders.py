"""Corpus loaders: each reads an official release layout and returns a validated manifest.

Every loader checks the layout (a wrong root gets an error naming the expected layout), the label codes,
duplicate ids, that each file exists and, with ``check_audio``, that ``soundfile`` can read it (its header
also gives ``duration``). ``on_error="skip"`` drops unreadable files with a warning instead of raising.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Callable

import pandas as pd
import soundfile as sf

from .manifest import ManifestError, make_manifest, read_manifest_csv, validate_manifest
from .registry import load_dataset, register_dataset  # noqa: F401  (load_dataset re-exported)

IEMOCAP_LAYOUT = ("<root>/Session1/sentences/wav/<dialog>/<utt>.wav with labels in "
                  "<root>/Session1/dialog/EmoEvaluation/<dialog>.txt (Session1..Session5)")
CREMAD_LAYOUT = "<root>/AudioWAV/1001_DFA_ANG_XX.wav (actor_sentence_emotion_intensity)"
RAVDESS_LAYOUT = "<root>/Actor_01/03-01-01-01-01-01-01.wav (modality-channel-emotion-intensity-statement-repetition-actor)"
ESD_LAYOUT = "<root>/0011/Angry/0011_000351.wav or <root>/0011/Angry/{train,evaluation,test}/0011_000351.wav"
EMODB_LAYOUT = "<root>/wav/03a01Fa.wav (speaker, text, emotion letter, version)"

IEMOCAP_CODES = ("neu", "hap", "exc", "sad", "ang", "fru", "fea", "sur", "dis", "oth")
CREMAD_EMOTIONS = {"ANG": "ang", "DIS": "dis", "FEA": "fea", "HAP": "hap", "NEU": "neu", "SAD": "sad"}
RAVDESS_EMOTIONS = {"01": "neu", "02": "cal", "03": "hap", "04": "sad", "05": "ang", "06": "fea", "07": "dis", "08": "sur"}
ESD_EMOTIONS = {"angry": "ang", "happy": "hap", "neutral": "neu", "sad": "sad", "surprise": "sur"}
ESD_LANGUAGES = {"mandarin": range(1, 11), "english": range(11, 21)}
EMODB_EMOTIONS = {"W": "ang", "L": "bor", "E": "dis", "A": "fea", "F": "hap", "T": "sad", "N": "neu"}
EMODB_GENDER = {**{s: "M" for s in ("03", "10", "11", "12", "15")}, **{s: "F" for s in ("08", "09", "13", "14", "16")}}

_IEMOCAP_LINE = re.compile(r"^\[\s*(\d+(?:\.\d*)?)\s*-\s*(\d+(?:\.\d*)?)\s*\]\s+(\S+)\s+(\S+)")
_IEMOCAP_UTT = re.compile(r"^Ses\d\d[FM]_.+_([FM])\w*$")
_CREMAD_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_ESD_NAME = re.compile(r"^(\d{4})_(\d{6})$")
_EMODB_NAME = re.compile(r"^(\d\d)([a-z]\d\d)([A-Z])([a-z])$")


def _root(root, name: str, layout: str) -> Path:
    if root is None:
        raise ManifestError(f"{name}: a data root is required, the folder holding {layout}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ManifestError(f"{name}: root {root} is not a folder; expected {layout}")
    return root


def _wavs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.wav") if not p.name.startswith("."))


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _probe(df: pd.DataFrame, source: str, on_error: str) -> pd.DataFrame:
    """Read each file's header with soundfile; fill missing durations; raise or skip unreadable files."""
    durations, bad = [], []
    for path in df["path"]:
        try:
            info = sf.info(path)
            if info.frames <= 0:
                raise RuntimeError("no audio frames")
            durations.append(info.frames / info.samplerate)
        except (RuntimeError, sf.SoundFileError) as exc:  # LibsndfileError subclasses RuntimeError
            durations.append(float("nan"))
            bad.append(f"{path} ({str(exc).strip() or type(exc).__name__})")
    if bad and on_error == "raise":
        shown = "; ".join(bad[:5]) + (f" ... ({len(bad)} in all)" if len(bad) > 5 else "")
        raise ManifestError(f"{source}: {len(bad)} unreadable audio file(s): {shown}")
    df = df.copy()
    df["duration"] = df["duration"].fillna(pd.Series(durations, index=df.index))
    if bad:
        warnings.warn(f"{source}: skipped {len(bad)} unreadable audio file(s): {'; '.join(bad[:5])}", stacklevel=3)
        df = df[pd.notna(durations)].reset_index(drop=True)
    return df


def _finish(rows: list[dict], source: str, layout: str, *, check_audio: bool, on_error: str) -> pd.DataFrame:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if not rows:
        raise ManifestError(f"{source}: no labelled utterances found; expected {layout}")
    df = make_manifest(rows).sort_values("utt_id").reset_index(drop=True)
    df = validate_manifest(df, check_files=True, source=source)
    return _probe(df, source, on_error) if check_audio else df


def _read_iemocap_labels(path: Path):
    """Yield ``(line_number, start, end, utt_id, code)`` for each turn line ``[s - e]\\tutt\\tcode\\t[v, a, d]``."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.startswith("["):
                continue
            m = _IEMOCAP_LINE.match(line)
            if not m:
                raise ManifestError(f"{path}:{number}: malformed label line {line.strip()!r}; "
                                    "expected '[start - end]<TAB>utt_id<TAB>code<TAB>[v, a, d]'")
            yield number, float(m[1]), float(m[2]), m[3], m[4]


def load_iemocap(root, *, exclude_dialogs=("Ses05M_script01_1",), check_audio: bool = True,
                 on_error: str = "raise") -> pd.DataFrame:
    """IEMOCAP-10: every utterance labelled other than ``xxx``, codes neu hap exc sad ang fru fea sur dis oth.

    Speaker = session + utterance gender (``Ses01F_impro01_M003`` → ``Ses01M``), session ``Session1``..,
    duration from the label time span, text_id = script name (``script01_1``) for scripted dialogs.
    Dialogs in ``exclude_dialogs`` are left out (``Ses05M_script01_1`` by default).
    """
    root = _root(root, "iemocap", IEMOCAP_LAYOUT)
    sessions = sorted((d for d in root.glob("Session*") if d.is_dir()), key=lambda d: _natural(d.name))
    if not sessions:
        raise ManifestError(f"iemocap: no Session folders under {root}; expected {IEMOCAP_LAYOUT}")
    missing = sorted({f"Session{i}" for i in range(1, 6)} - {d.name for d in sessions})
    if missing:
        warnings.warn(f"iemocap: {root} lacks {missing}; loading {[d.name for d in sessions]} only", stacklevel=2)
    rows, seen, excluded = [], {}, set(exclude_dialogs or ())
    for sdir in sessions:
        wav_dir, lab_dir = sdir / "sentences" / "wav", sdir / "dialog" / "EmoEvaluation"
        for folder in (wav_dir, lab_dir):
            if not folder.is_dir():
                raise ManifestError(f"iemocap: missing folder {folder}; expected {IEMOCAP_LAYOUT}")
        dialogs = {d.name for d in wav_dir.iterdir() if d.is_dir() and not d.name.startswith(".")}
        dialogs |= {p.stem for p in lab_dir.glob("*.txt") if not p.name.startswith(".")}
        for dialog in sorted(dialogs - excluded):
            label_file = lab_dir / f"{dialog}.txt"
            if not label_file.is_file():
                raise ManifestError(f"iemocap: label file {label_file} missing for audio folder {wav_dir / dialog}")
            rows += _iemocap_rows(label_file, wav_dir / dialog, sdir.name, seen)
    return _finish(rows, "iemocap", IEMOCAP_LAYOUT, check_audio=check_audio, on_error=on_error)


def _iemocap_rows(label_file: Path, wav_dir: Path, session: str, seen: dict) -> list[dict]:
    dialog, rows = wav_dir.name, []
    script = dialog.split("_", 1)[1] if "_script" in dialog else None
    for number, start, end, utt, code in _read_iemocap_labels(label_file):
        if code == "xxx":
            continue
        where = f"{label_file}:{number}"
        if code not in IEMOCAP_CODES:
            raise ManifestError(f"{where}: unknown label code {code!r} for {utt}; known: {' '.join(IEMOCAP_CODES)} xxx")
        m = _IEMOCAP_UTT.match(utt)
        if not m:
            raise ManifestError(f"{where}: utterance id {utt!r} is not like Ses01F_impro01_M003")
        if utt in seen:
            raise ManifestError(f"{where}: duplicate utterance id {utt} (already in {seen[utt]})")
        seen[utt] = where
        rows.append(dict(utt_id=utt, path=str(wav_dir / f"{utt}.wav"), speaker=utt[:5] + m[1], emotion=code,
                         dataset="iemocap", session=session, duration=end - start, gender=m[1], text_id=script))
    return rows


def _cremad_genders(root: Path) -> dict:
    path = root / "VideoDemographics.csv"
    if not path.is_file():
        return {}
    try:
        table = pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not a readable CSV ({exc})") from exc
    if not {"ActorID", "Sex"} <= set(table.columns):
        raise ManifestError(f"{path}: expected columns ActorID and Sex, found {list(table.columns)}")
    sexes = {"male": "M", "female": "F"}
    return {a.strip(): sexes.get(str(s).strip().lower()) for a, s in zip(table["ActorID"], table["Sex"])}


def load_cremad(root, *, check_audio: bool = True, on_error: str = "raise") -> pd.DataFrame:
    """CREMA-D: 6 emotions (ANG DIS FEA HAP NEU SAD); speaker = actor, text_id = sentence code.

    Gender comes from ``<root>/VideoDemographics.csv`` when present, else it is unknown.
    """
    root = _root(root, "cremad", CREMAD_LAYOUT)
    folder = root / "AudioWAV"
    files = _wavs(folder) if folder.is_dir() else []
    if not files:
        raise ManifestError(f"cremad: no WAV files in {folder}; expected {CREMAD_LAYOUT}")
    genders, rows = _cremad_genders(root), []
    for path in files:
        m = _CREMAD_NAME.match(path.stem)
        if not m:
            raise ManifestError(f"cremad: file name {path} is not like 1001_DFA_ANG_XX.wav")
        if m[3] not in CREMAD_EMOTIONS:
            raise ManifestError(f"cremad: unknown emotion code {m[3]!r} in {path}; known: {' '.join(CREMAD_EMOTIONS)}")
        rows.append(dict(utt_id=path.stem, path=str(path), speaker=m[1], emotion=CREMAD_EMOTIONS[m[3]],
                         dataset="cremad", gender=genders.get(m[1]), text_id=m[2]))
    return _finish(rows, "cremad", CREMAD_LAYOUT, check_audio=check_audio, on_error=on_error)


def load_ravdess(root, *, calm: str = "keep", check_audio: bool = True, on_error: str = "raise") -> pd.DataFrame:
    """RAVDESS speech (audio-only files ``03-01-*``; song and video files are not part of it).

    8 emotions; ``calm="merge"`` relabels calm as neutral. Speaker = actor (``01``..``24``), odd = male;
    text_id = statement (``01``/``02``).
    """
    if calm not in ("keep", "merge"):
        raise ValueError(f"ravdess: calm must be 'keep' or 'merge', got {calm!r}")
    root = _root(root, "ravdess", RAVDESS_LAYOUT)
    actors = sorted(d for d in root.glob("Actor_*") if d.is_dir())
    if not actors:
        raise ManifestError(f"ravdess: no Actor_NN folders under {root}; expected {RAVDESS_LAYOUT}")
    rows = []
    for folder in actors:
        for path in _wavs(folder):
            m = _RAVDESS_NAME.match(path.stem)
            if not m:
                raise ManifestError(f"ravdess: file name {path} is not like 03-01-01-01-01-01-01.wav")
            modality, channel, emotion, _, statement, _, actor = m.groups()
            if (modality, channel) != ("03", "01"):
                continue
            if emotion not in RAVDESS_EMOTIONS:
                raise ManifestError(f"ravdess: unknown emotion code {emotion!r} in {path}; known: 01..08")
            if folder.name != f"Actor_{actor}":
                raise ManifestError(f"ravdess: {path} names actor {actor} but lies in {folder.name}")
            code = RAVDESS_EMOTIONS[emotion]
            rows.append(dict(utt_id=path.stem, path=str(path), speaker=actor,
                             emotion="neu" if (code == "cal" and calm == "merge") else code, dataset="ravdess",
                             gender="M" if int(actor) % 2 else "F", text_id=statement))
    return _finish(rows, "ravdess", RAVDESS_LAYOUT, check_audio=check_audio, on_error=on_error)


def load_esd(root, *, language: str = "english", check_audio: bool = True, on_error: str = "raise") -> pd.DataFrame:
    """ESD: 5 emotions (Angry Happy Neutral Sad Surprise); speakers 0001–0010 Mandarin, 0011–0020 English.

    ``language`` is ``"english"``, ``"mandarin"`` or ``"both"``. Audio may sit in the emotion folder or in its
    train/evaluation/test subfolders. text_id = language + sentence number (the 350 sentences are parallel
    across emotions: utterance n reads sentence ``(n-1) % 350 + 1``).
    """
    if language not in ("english", "mandarin", "both"):
        raise ValueError(f"esd: language must be 'english', 'mandarin' or 'both', got {language!r}")
    root = _root(root, "esd", ESD_LAYOUT)
    speakers = sorted(d for d in root.iterdir() if d.is_dir() and re.fullmatch(r"\d{4}", d.name))
    if not speakers:
        raise ManifestError(f"esd: no speaker folders (0001..0020) under {root}; expected {ESD_LAYOUT}")
    wanted = [n for lang, ids in ESD_LANGUAGES.items() if language in (lang, "both") for n in ids]
    rows, seen = [], {}
    for folder in speakers:
        if int(folder.name) not in range(1, 21):
            raise ManifestError(f"esd: unknown speaker folder {folder}; ESD speakers are 0001..0020")
        if int(folder.name) in wanted:
            rows += _esd_speaker_rows(folder, seen)
    if not rows:
        raise ManifestError(f"esd: no {language} speakers under {root} (English 0011..0020, Mandarin 0001..0010)")
    return _finish(rows, "esd", ESD_LAYOUT, check_audio=check_audio, on_error=on_error)


def _esd_speaker_rows(folder: Path, seen: dict) -> list[dict]:
    lang = "en" if int(folder.name) > 10 else "zh"
    rows = []
    for emo_dir in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")):
        if emo_dir.name.lower() not in ESD_EMOTIONS:
            raise ManifestError(f"esd: unknown emotion folder {emo_dir}; known: Angry Happy Neutral Sad Surprise")
        subdirs = [d for d in emo_dir.iterdir() if d.is_dir() and not d.name.startswith(".")]
        unknown = [d for d in subdirs if d.name not in ("train", "evaluation", "test")]
        if unknown:
            raise ManifestError(f"esd: unexpected folder {unknown[0]}; expected {ESD_LAYOUT}")
        for path in _wavs(emo_dir) + [p for d in sorted(subdirs) for p in _wavs(d)]:
            m = _ESD_NAME.match(path.stem)
            if not m or m[1] != folder.name:
                raise ManifestError(f"esd: file name {path} is not like {folder.name}_000351.wav")
            if path.stem in seen:
                raise ManifestError(f"esd: duplicate utterance id {path.stem}: {seen[path.stem]} and {path}")
            seen[path.stem] = path
            sentence = (int(m[2]) - 1) % 350 + 1
            rows.append(dict(utt_id=path.stem, path=str(path), speaker=folder.name,
                             emotion=ESD_EMOTIONS[emo_dir.name.lower()], dataset="esd", text_id=f"{lang}{sentence:03d}"))
    return rows


def load_emodb(root, *, check_audio: bool = True, on_error: str = "raise") -> pd.DataFrame:
    """EmoDB (Berlin): 7 emotions W L E A F T N → ang bor dis fea hap sad neu; 10 speakers, gender known."""
    root = _root(root, "emodb", EMODB_LAYOUT)
    folder = root / "wav"
    files = _wavs(folder) if folder.is_dir() else []
    if not files:
        raise ManifestError(f"emodb: no WAV files in {folder}; expected {EMODB_LAYOUT}")
    rows = []
    for path in files:
        m = _EMODB_NAME.match(path.stem)
        if not m:
            raise ManifestError(f"emodb: file name {path} is not like 03a01Fa.wav")
        speaker, text, letter, _ = m.groups()
        if letter not in EMODB_EMOTIONS:
            raise ManifestError(f"emodb: unknown emotion letter {letter!r} in {path}; known: {' '.join(EMODB_EMOTIONS)}")
        if speaker not in EMODB_GENDER:
            raise ManifestError(f"emodb: unknown speaker {speaker!r} in {path}; known: {' '.join(sorted(EMODB_GENDER))}")
        rows.append(dict(utt_id=path.stem, path=str(path), speaker=speaker, emotion=EMODB_EMOTIONS[letter],
                         dataset="emodb", gender=EMODB_GENDER[speaker], text_id=text))
    return _finish(rows, "emodb", EMODB_LAYOUT, check_audio=check_audio, on_error=on_error)


def load_csv(root, *, check_files: bool = True) -> pd.DataFrame:
    """Any corpus described by a manifest CSV: ``root`` is the CSV file or a folder holding ``manifest.csv``."""
    if root is None:
        raise ManifestError("csv: a root is required (a manifest CSV file, or a folder holding manifest.csv)")
    path = Path(root).expanduser()
    if path.is_dir():
        path = path / "manifest.csv"
    return read_manifest_csv(path, check_files=check_files)


def _load_default(root=None, **params) -> pd.DataFrame:
    from . import synth  # lazy: the synthetic corpus pulls in its own generator code

    return synth.load_default_corpus(root, **params)


LOADERS: dict[str, Callable[..., pd.DataFrame]] = {
    "default": _load_default, "iemocap": load_iemocap, "cremad": load_cremad, "ravdess": load_ravdess,
    "esd": load_esd, "emodb": load_emodb, "csv": load_csv,
}
_LAYOUTS = {"default": "generated (synthetic eSpeak NG corpus)", "iemocap": IEMOCAP_LAYOUT,
            "cremad": CREMAD_LAYOUT, "ravdess": RAVDESS_LAYOUT, "esd": ESD_LAYOUT, "emodb": EMODB_LAYOUT,
            "csv": "a CSV file with utt_id, path, speaker, emotion"}
for _name, _loader in LOADERS.items():  # moved into sercore/data/corpora/ one module at a time
    register_dataset(_name, layout=_LAYOUTS[_name], needs_root=_name != "default",
                     aliases={"cremad": ("crema-d",), "emodb": ("emo-db",)}.get(_name, ()))(_loader)
