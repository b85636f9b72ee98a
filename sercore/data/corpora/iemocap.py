"""IEMOCAP (USC SAIL): five sessions of dyadic dialogs, utterance labels in one EmoEvaluation file per dialog."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd

from sercore.data.corpora._common import corpus_root, finish, natural_key
from sercore.data.manifest import ManifestError
from sercore.data.registry import BadFiles, register_dataset

LAYOUT = ("<root>/Session1/sentences/wav/<dialog>/<utt>.wav with labels in "
          "<root>/Session1/dialog/EmoEvaluation/<dialog>.txt (Session1..Session5)")
CODES = ("neu", "hap", "exc", "sad", "ang", "fru", "fea", "sur", "dis", "oth")

_LINE = re.compile(r"^\[\s*(\d+(?:\.\d*)?)\s*-\s*(\d+(?:\.\d*)?)\s*\]\s+(\S+)\s+(\S+)")
_UTT = re.compile(r"^Ses\d\d[FM]_.+_([FM])\w*$")


def _label_lines(path: Path, bad: BadFiles):
    """Yield ``(line_number, start, end, utt_id, code)`` for each turn line ``[s - e]\\tutt\\tcode\\t[v, a, d]``;
    a malformed turn line goes to ``bad``."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.startswith("["):
                continue
            m = _LINE.match(line)
            if not m:
                bad.add(f"{path}:{number}", f"malformed label line {line.strip()!r}; "
                        "expected '[start - end]<TAB>utt_id<TAB>code<TAB>[v, a, d]'")
                continue
            yield number, float(m[1]), float(m[2]), m[3], m[4]


def _dialog_rows(label_file: Path, wav_dir: Path, session: str, seen: dict, bad: BadFiles) -> list[dict]:
    dialog, rows = wav_dir.name, []
    script = dialog.split("_", 1)[1] if "_script" in dialog else None
    for number, start, end, utt, code in _label_lines(label_file, bad):
        if code == "xxx":
            continue
        where = f"{label_file}:{number}"
        m = _UTT.match(utt)
        if code not in CODES:
            bad.add(where, f"unknown label code {code!r} for {utt}; known: {' '.join(CODES)} xxx")
        elif not m:
            bad.add(where, f"utterance id {utt!r} is not like Ses01F_impro01_M003")
        elif utt in seen:
            bad.add(where, f"duplicate utterance id {utt} (already in {seen[utt]})")
        else:
            seen[utt] = where
            rows.append(dict(utt_id=utt, path=str(wav_dir / f"{utt}.wav"), speaker=utt[:5] + m[1], emotion=code,
                             dataset="iemocap", session=session, duration=end - start, gender=m[1],
                             text_id=script))
    return rows


def _sessions(root: Path) -> list[Path]:
    sessions = sorted((d for d in root.glob("Session*") if d.is_dir()), key=lambda d: natural_key(d.name))
    if not sessions:
        raise ManifestError(f"iemocap: no Session folders under {root}; expected {LAYOUT}")
    missing = sorted({f"Session{i}" for i in range(1, 6)} - {d.name for d in sessions})
    if missing:
        warnings.warn(f"iemocap: {root} lacks {missing}; loading {[d.name for d in sessions]} only", stacklevel=3)
    return sessions


@register_dataset("iemocap", layout=LAYOUT)
def load_iemocap(root, *, exclude_dialogs=("Ses05M_script01_1",), check_audio: bool = True,
                 on_error: str = "skip") -> pd.DataFrame:
    """IEMOCAP-10: every utterance labelled other than ``xxx``, codes neu hap exc sad ang fru fea sur dis oth.

    Speaker = session + utterance gender (``Ses01F_impro01_M003`` → ``Ses01M``), session ``Session1``..,
    duration from the label time span, text_id = script name (``script01_1``) for scripted dialogs.
    Dialogs in ``exclude_dialogs`` are left out (``Ses05M_script01_1`` by default). Label lines with an
    unknown code or id, audio folders without a label file and unreadable audio are skipped and listed in
    ``attrs["bad_files"]`` (``on_error="raise"``: an error naming the first).
    """
    bad = BadFiles("iemocap", on_error)
    root = corpus_root(root, "iemocap", LAYOUT)
    rows, seen, excluded = [], {}, set(exclude_dialogs or ())
    for sdir in _sessions(root):
        wav_dir, lab_dir = sdir / "sentences" / "wav", sdir / "dialog" / "EmoEvaluation"
        for folder in (wav_dir, lab_dir):
            if not folder.is_dir():
                raise ManifestError(f"iemocap: missing folder {folder}; expected {LAYOUT}")
        dialogs = {d.name for d in wav_dir.iterdir() if d.is_dir() and not d.name.startswith(".")}
        dialogs |= {p.stem for p in lab_dir.glob("*.txt") if not p.name.startswith(".")}
        for dialog in sorted(dialogs - excluded):
            label_file = lab_dir / f"{dialog}.txt"
            if not label_file.is_file():
                bad.add(wav_dir / dialog, f"no label file {label_file} for this audio folder")
                continue
            rows += _dialog_rows(label_file, wav_dir / dialog, sdir.name, seen, bad)
    return finish(rows, "iemocap", LAYOUT, bad, check_audio=check_audio)
