"""Splits: leave-one-session-out folds, speaker-disjoint groups, determinism, leakage detection, CSV."""

from __future__ import annotations

import pandas as pd
import pytest

import fixtures_corpora as fx
from sercore.data import (LeakageError, assert_no_leakage, load_iemocap, load_splits, make_manifest, make_splits,
                          save_splits, split_ids, target_subset)


def _manifest(speakers, per_speaker=3, session_of=None):
    rows = [dict(utt_id=f"{spk}_{i}", path=f"/x/{spk}_{i}.wav", speaker=spk, emotion="neu", dataset="toy",
                 session=session_of(spk) if session_of else None)
            for spk in speakers for i in range(per_speaker)]
    return make_manifest(rows)


def _check_structure(splits, manifest):
    """Each fold: one test group, one validation group, the rest train; each utterance tested exactly once."""
    groups = sorted(splits["group"].unique())
    for fold, part in splits.groupby("fold"):
        assert len(part) == len(manifest) and set(part["utt_id"]) == set(manifest["utt_id"])
        per_split = part.groupby("split")["group"].unique()
        assert len(per_split["test"]) == 1 and len(per_split["val"]) == 1
        assert per_split["test"][0] != per_split["val"][0]
        assert sorted(per_split["train"]) == sorted(set(groups) - {per_split["test"][0], per_split["val"][0]})
    tested = splits.loc[splits["split"] == "test", "utt_id"]
    assert tested.value_counts().eq(1).all() and set(tested) == set(manifest["utt_id"])


def test_iemocap_leave_one_session_out(tmp_path):
    manifest = target_subset(load_iemocap(fx.make_iemocap(tmp_path), check_audio=False))
    splits = make_splits(manifest)
    assert list(splits.columns) == ["fold", "utt_id", "speaker", "group", "split"]
    assert sorted(splits["fold"].unique()) == [0, 1, 2, 3, 4]
    _check_structure(splits, manifest)
    for f in range(5):
        part = splits[splits["fold"] == f]
        assert set(part.loc[part["split"] == "test", "group"]) == {f"Session{f + 1}"}
        assert set(part.loc[part["split"] == "val", "group"]) == {f"Session{(f + 1) % 5 + 1}"}
    fold4 = splits[splits["fold"] == 4]
    assert set(fold4.loc[fold4["split"] == "test", "speaker"]) == {"Ses05F", "Ses05M"}
    assert set(fold4.loc[fold4["split"] == "val", "speaker"]) == {"Ses01F", "Ses01M"}
    assert split_ids(splits, 0, "test") == sorted(manifest.loc[manifest["session"] == "Session1", "utt_id"])


def test_speaker_groups_are_disjoint_balanced_and_deterministic():
    speakers = [f"{n:02d}" for n in (3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)]
    manifest = _manifest(speakers)
    splits = make_splits(manifest, n_folds=5, seed=0)
    _check_structure(splits, manifest)
    assert sorted(splits["fold"].unique()) == [0, 1, 2, 3, 4]
    per_group = splits[splits["fold"] == 0].groupby("group")["speaker"].nunique()
    assert sorted(per_group) == [2, 2, 2, 2, 3]  # 11 speakers dealt round-robin into 5 groups
    assert splits[splits["fold"] == 0].groupby("speaker")["group"].nunique().eq(1).all()
    shuffled = manifest.sample(frac=1.0, random_state=7)
    pd.testing.assert_frame_equal(make_splits(shuffled, n_folds=5, seed=0), splits)
    other = make_splits(manifest, n_folds=5, seed=1)
    assert not other["group"].equals(splits["group"])


def test_sessions_too_few_fall_back_to_speaker_groups():
    manifest = _manifest(["a", "b", "c", "d"], session_of=lambda s: "S1" if s in "ab" else "S2")
    splits = make_splits(manifest, n_folds=4)
    assert splits["group"].nunique() == 4 and splits.groupby("group")["speaker"].nunique().eq(1).all()


def test_too_few_speakers_or_folds_is_a_clear_error():
    with pytest.raises(ValueError, match=r"3 speaker\(s\) \(a, b, c\) cannot fill 5 speaker-disjoint folds"):
        make_splits(_manifest(["a", "b", "c"]))
    with pytest.raises(ValueError, match="n_folds must be at least 3"):
        make_splits(_manifest(["a", "b", "c"]), n_folds=2)
    with pytest.raises(ValueError, match=r"duplicate utt_id"):
        make_splits(pd.concat([_manifest(["a"]), _manifest(["a"])]))


def test_leakage_detected_on_hand_made_table():
    rows = [(0, "u1", "spkA", "g1", "test"), (0, "u2", "spkB", "g1", "test"), (0, "u3", "spkA", "g2", "train"),
            (0, "u4", "spkC", "g3", "val"), (1, "u1", "spkA", "g1", "train")]
    table = pd.DataFrame(rows, columns=["fold", "utt_id", "speaker", "group", "split"])
    with pytest.raises(LeakageError, match=r"fold 0: test speaker\(s\) spkA also in train/val"):
        assert_no_leakage(table)
    assert_no_leakage(table[table["utt_id"] != "u3"])  # no shared speaker: passes
    twice = pd.concat([table[table["utt_id"] != "u3"], table.iloc[[3]].assign(split="train")])
    with pytest.raises(LeakageError, match=r"fold 0: utterance\(s\) \['u4'\] appear in more than one split"):
        assert_no_leakage(twice)


def test_sessions_sharing_speakers_raise_leakage():
    manifest = _manifest(["a", "b", "c"], per_speaker=3)
    manifest["session"] = [f"S{i % 3}" for i in range(len(manifest))]  # every speaker in every session
    with pytest.raises(LeakageError, match=r"fold 0: test speaker\(s\) a, b, c also in train/val"):
        make_splits(manifest)


def test_save_load_round_trip_and_checks(tmp_path):
    manifest = _manifest(["03", "08", "09", "10", "11"])
    splits = make_splits(manifest, n_folds=5, seed=2)
    path = save_splits(splits, tmp_path / "res" / "splits.csv")
    back = load_splits(path)
    pd.testing.assert_frame_equal(back, splits, check_dtype=False)
    assert back["speaker"].iloc[0] == "03"
    assert split_ids(back, 3, "val") == split_ids(splits, 3, "val")
    leaky = splits.copy()
    leaky.loc[(leaky["fold"] == 1) & (leaky["split"] == "train"), "speaker"] = split_ids(splits, 1, "test")[0][:2]
    save_splits(leaky, tmp_path / "leaky.csv")
    with pytest.raises(LeakageError, match="fold 1"):
        load_splits(tmp_path / "leaky.csv")
    with pytest.raises(ValueError, match=r"fold 9 not in the splits table"):
        split_ids(splits, 9, "test")
    with pytest.raises(ValueError, match=r"split must be one of"):
        split_ids(splits, 0, "dev")
