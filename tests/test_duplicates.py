"""Byte-identical audio under two ids or two speakers (``sercore.data.duplicates``), on real WAV files whose
digests come from the digest memo the feature cache uses."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from sercore.core.digests import DigestMemo
from sercore.data import make_manifest, make_splits
from sercore.data.duplicates import DuplicateAudioError, find_duplicates, leave_out_copies, split_leaks

# utt_id → (speaker, the utt_id whose file it copies, or None)
FILES = {"a": ("s1", None), "b": ("s1", "a"), "c": ("s2", "a"), "d": ("s2", None), "e": ("s3", None),
         "f": ("s3", "d"), "g": ("s4", None)}


def _corpus(folder):
    """WAVs in ``folder`` (copies byte-identical), their manifest and digests; ``x.wav`` is listed but absent."""
    rows = []
    for i, (utt, (speaker, copy_of)) in enumerate(FILES.items()):
        path = folder / f"{utt}.wav"
        if copy_of is None:
            noise = np.random.default_rng(i).normal(0, 0.1, 1600).astype(np.float32)
            sf.write(path, noise, 16000, subtype="PCM_16")
        else:
            shutil.copyfile(folder / f"{copy_of}.wav", path)
        rows.append(dict(utt_id=utt, path=str(path), speaker=speaker, emotion="neu", dataset="toy"))
    rows.append(dict(utt_id="x", path=str(folder / "x.wav"), speaker="s4", emotion="neu", dataset="toy"))
    manifest = make_manifest(rows)
    return manifest, DigestMemo(folder / "memo.sqlite").digests(manifest["path"])


def _splits(assignments):
    """A splits table from ``{fold: {utt_id: split}}``."""
    rows = [dict(fold=fold, utt_id=utt, speaker=FILES.get(utt, ("s4",))[0], group="g", split=split)
            for fold, part in assignments.items() for utt, split in part.items()]
    return pd.DataFrame(rows)


def test_copies_are_found_with_their_first_copy_and_kind(tmp_path):
    manifest, digests = _corpus(tmp_path)
    assert digests[str(tmp_path / "x.wav")] is None
    dups = find_duplicates(manifest, digests)
    got = {r.utt_id: (r.first_utt_id, r.kind) for r in dups.itertuples()}
    assert got == {"b": ("a", "within_speaker"), "c": ("a", "across_speakers"), "f": ("d", "across_speakers")}
    row = dups.set_index("utt_id").loc["c"]
    assert (row["path"], row["first_path"], row["first_speaker"]) == (str(tmp_path / "c.wav"),
                                                                     str(tmp_path / "a.wav"), "s1")


def test_split_leaks_are_the_folds_where_copies_part(tmp_path):
    manifest, digests = _corpus(tmp_path)
    dups = find_duplicates(manifest, digests)
    same = {"a": "train", "b": "train", "c": "train", "d": "test", "f": "test"}
    splits = _splits({0: same, 1: dict(same, a="test", b="val", c="train")})
    leaks = split_leaks(dups, splits)
    assert leaks.values.tolist() == [[1, "b", "val", "a", "test"], [1, "c", "train", "a", "test"]]
    assert split_leaks(dups, _splits({0: same})).empty


def test_copies_are_left_out_and_reported(tmp_path):
    manifest, digests = _corpus(tmp_path)
    manifest.attrs["bad_files"] = [{"path": "p", "reason": "r", "step": "loader"}]
    splits = _splits({0: {u: "test" if u in "cd" else "train" for u in "abcdefgx"}})
    splits.attrs["scheme"] = "leave-one-group-out"
    report = tmp_path / "out" / "duplicates.csv"
    with pytest.warns(UserWarning, match=r"3 file\(s\) are byte-identical .*2 across speakers, 2 fold/split"):
        kept, kept_splits, dups = leave_out_copies(manifest, splits, digests, report=report)
    assert kept["utt_id"].tolist() == ["a", "d", "e", "g", "x"]
    assert sorted(set(kept_splits["utt_id"])) == ["a", "d", "e", "g", "x"]
    assert kept.attrs["bad_files"] == manifest.attrs["bad_files"]
    assert kept_splits.attrs["scheme"] == "leave-one-group-out"
    table = pd.read_csv(report, dtype=str, keep_default_na=False).set_index("utt_id")
    assert table["leak_folds"].to_dict() == {"b": "", "c": "0", "f": "0"}
    assert table.loc["f", "kind"] == "across_speakers" and len(dups) == 3


def test_strict_names_both_files_of_a_cross_split_copy(tmp_path):
    manifest, digests = _corpus(tmp_path)
    crossing = _splits({0: {u: "test" if u == "c" else "train" for u in "abcdefgx"}})
    with pytest.raises(DuplicateAudioError, match=rf"{tmp_path / 'c.wav'} \(c, test in fold 0\) has the same bytes "
                                                  rf"as {tmp_path / 'a.wav'} \(a, train\)"):
        leave_out_copies(manifest, crossing, digests, strict=True)
    apart = _splits({0: {u: "test" if u in "abc" else "train" for u in "abcdefgx"}})
    with pytest.warns(UserWarning):
        kept, _, _ = leave_out_copies(manifest, apart, digests, strict=True)   # copies in one split: no error
    assert "c" not in set(kept["utt_id"])


def test_no_copies_changes_nothing(tmp_path):
    manifest, digests = _corpus(tmp_path)
    unique = manifest[~manifest["utt_id"].isin(["b", "c", "f"])].reset_index(drop=True)
    splits = make_splits(unique, n_folds=2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept, kept_splits, dups = leave_out_copies(unique, splits, digests, report=tmp_path / "duplicates.csv")
    assert kept is unique and kept_splits is splits and dups.empty
    assert (tmp_path / "duplicates.csv").read_text().startswith("kind,utt_id,path,speaker,first_utt_id")


def test_real_splits_keep_every_remaining_id(tmp_path):
    manifest, digests = _corpus(tmp_path)
    splits = make_splits(manifest, n_folds=2, seed=0)
    with pytest.warns(UserWarning):
        kept, kept_splits, _ = leave_out_copies(manifest, splits, digests)
    for fold in kept_splits["fold"].unique():
        assert set(kept_splits.loc[kept_splits["fold"] == fold, "utt_id"]) == set(kept["utt_id"])


def _csv_corpus(folder):
    """A user's corpus (``csv`` loader): 4 speakers × 4 emotions × 2 files of tones, then ``s0``'s first file
    filed again as ``s3``'s (across speakers: the two are in different folds' test sets)."""
    t = np.arange(4000) / 16000
    rows = ["utt_id,path,speaker,emotion"]
    for s in range(4):
        for emotion, hz in (("neu", 150.0), ("hap", 260.0), ("sad", 120.0), ("ang", 330.0)):
            for n in range(2):
                wave = 0.3 * np.sin(2 * np.pi * (hz + 40 * s + 7 * n) * t)
                sf.write(folder / f"s{s}_{emotion}_{n}.wav", wave.astype(np.float32), 16000, subtype="PCM_16")
                rows.append(f"s{s}_{emotion}_{n},s{s}_{emotion}_{n}.wav,s{s},{emotion}")
    shutil.copyfile(folder / "s0_neu_0.wav", folder / "s3_neu_9.wav")
    rows.append("s3_neu_9,s3_neu_9.wav,s3,neu")
    (folder / "corpus.csv").write_text("\n".join(rows) + "\n")
    return folder / "corpus.csv"


def test_prepare_leaves_copies_out_and_strict_names_them(tmp_path, monkeypatch):
    from sercore.notebook.experiment import prepare
    from sercore.notebook.settings import Params

    monkeypatch.setenv("SERCORE_CACHE", str(tmp_path / "cache"))
    csv = _csv_corpus(tmp_path)
    with pytest.warns(UserWarning, match="byte-identical"):
        exp = prepare(Params(dataset="csv", data_root=str(csv), views=["mel"], n_folds=4,
                             output_dir=str(tmp_path / "out")), workers=1)
    for frame in (exp.manifest, exp.task, exp.splits):
        assert "s3_neu_9" not in set(frame["utt_id"]) and "s0_neu_0" in set(frame["utt_id"])
    report = pd.read_csv(tmp_path / "out" / "duplicates.csv", dtype=str, keep_default_na=False)
    assert report[["utt_id", "first_utt_id", "kind"]].values.tolist() == [["s3_neu_9", "s0_neu_0",
                                                                           "across_speakers"]]
    assert report["leak_folds"][0] != ""
    with pytest.raises(DuplicateAudioError, match=r"s3_neu_9\.wav \(s3_neu_9, .*same bytes as .*s0_neu_0\.wav"):
        prepare(Params(dataset="csv", data_root=str(csv), views=["mel"], n_folds=4, output_dir=str(tmp_path / "out"),
                       strict=True), workers=1)
