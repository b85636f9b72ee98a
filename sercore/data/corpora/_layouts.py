"""Helpers the file-name-coded corpora share: the loader preamble (:func:`open_corpus`), a recursive audio
walk, name matching and label lookup that report misnamed files to a
:class:`~sercore.data.registry.BadFiles` collector, and a row list that reports duplicate utterance ids (the
same release unpacked twice, a Kaggle copy nested inside itself) instead of letting the manifest validation
fail on them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

from sercore.data.corpora._common import corpus_root
from sercore.data.registry import BadFiles

_SKIPPED_DIRS = ("__MACOSX",)


def walk_audio(folder: Path, suffixes=(".wav",)) -> list[Path]:
    """Audio files anywhere under ``folder`` (suffix compared case-insensitively), sorted; hidden files and
    folders and macOS resource forks (``__MACOSX``, ``._name``) left out."""
    found = []
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        if any(p.startswith(".") or p in _SKIPPED_DIRS for p in parts):
            continue
        if path.suffix.lower() in suffixes and path.is_file():
            found.append(path)
    return sorted(found)


def match_name(pattern: re.Pattern, path: Path, bad: BadFiles, example: str) -> re.Match | None:
    """``pattern`` matched against the file's stem; a miss goes to ``bad`` naming the expected form."""
    m = pattern.match(path.stem)
    if m is None:
        bad.add(path, f"file name is not like {example}")
    return m


def named_audio(folder: Path, pattern: re.Pattern, bad: BadFiles, example: str, suffixes=(".wav",)):
    """``(path, match)`` for each audio file under ``folder`` whose stem matches ``pattern``; the others go to
    ``bad`` naming the expected form (``example``)."""
    for path in walk_audio(folder, suffixes):
        m = match_name(pattern, path, bad, example)
        if m is not None:
            yield path, m


def folder_agrees(path: Path, code: str, folders: Mapping[str, str], bad: BadFiles) -> bool:
    """False (and ``path`` reported) when the file lies in an emotion folder whose code is not ``code``."""
    folder = folders.get(path.parent.name.lower())
    if folder is not None and folder != code:
        bad.add(path, f"emotion letter {code} but lies in folder {path.parent.name}")
        return False
    return True


def lookup(code: str, mapping: Mapping[str, str], path: Path, bad: BadFiles, what: str = "emotion") -> str | None:
    """``mapping[code]``; an unknown code goes to ``bad`` with the known ones."""
    if code in mapping:
        return mapping[code]
    bad.add(path, f"unknown {what} code {code!r}; known: {' '.join(mapping)}")
    return None


class Rows(list):
    """Manifest rows and the loader's bad-file collector ``bad`` (which ``finish`` then reports to as well);
    :meth:`add` reports a repeated ``utt_id`` to ``bad`` and keeps the first."""

    def __init__(self, bad: BadFiles):
        super().__init__()
        self.bad, self.first = bad, {}

    def add(self, **row) -> None:
        utt = row["utt_id"]
        if utt in self.first:
            self.bad.add(row["path"], f"duplicate utterance id {utt} (first seen at {self.first[utt]})")
            return
        self.first[utt] = row["path"]
        self.append(row)

    def add_labelled(self, code: str, emotions: Mapping[str, str], **row) -> None:
        """:meth:`add` the row with ``emotion=emotions[code]``; an unknown code goes to ``bad`` (see
        :func:`lookup`) and adds nothing."""
        emotion = lookup(code, emotions, row["path"], self.bad)
        if emotion is not None:
            self.add(**row, emotion=emotion)


def open_corpus(root, name: str, layout: str, on_error: str) -> tuple[Path, Rows]:
    """A loader's start: the checked root of corpus ``name`` (:func:`corpus_root`) and empty :class:`Rows`
    whose ``bad`` collects its bad files under ``on_error`` (checked first)."""
    bad = BadFiles(name, on_error)
    return corpus_root(root, name, layout), Rows(bad)
