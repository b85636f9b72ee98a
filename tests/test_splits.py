"""Splits: leave-one-session-out folds, speaker-disjoint groups, leave-one-speaker-out for two speakers,
determinism, leakage detection, CSV, errors whose advice works."""

from __future__ import annotations

import re

import fixtures_corpora as fx
import pandas as pd
import pytest

from sercore.data import (
    LeakageError,
    assert_no_leakage,
    describe_splits,
    load_iemocap,
    load_splits,
    make_manifest,
    make_splits,
    save_splits,
    speaker_dependent_val,
    split_ids,
    target_subset,
)


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


def test_too_many_folds_or_bad_values_are_clear_errors():
    with pytest.raises(ValueError, match=r"3 speakers \(a, b, c\) cannot fill 5 speaker-disjoint folds; "
                                         r"use n_folds between 2 and 3, or n_folds=None"):
        make_splits(_manifest(["a", "b", "c"]), n_folds=5)
    with pytest.raises(ValueError, match=r"2 speakers \(a, b\) cannot fill 3 speaker-disjoint folds; use n_folds=2,"):
        make_splits(_manifest(["a", "b"]), n_folds=3)
    with pytest.raises(ValueError, match=r"only one speaker \(a\): .* add recordings of another speaker"):
        make_splits(_manifest(["a"]))
    with pytest.raises(ValueError, match=r"n_folds must be an integer or None"):
        make_splits(_manifest(["a", "b", "c"]), n_folds="3")
    with pytest.raises(ValueError, match=r"duplicate utt_id"):
        make_splits(pd.concat([_manifest(["a"]), _manifest(["a"])]))


@pytest.mark.parametrize("n_speakers", [2, 3, 4, 7])
@pytest.mark.parametrize("n_folds", [1, 2, 3, 5, 8])
def test_every_error_gives_advice_that_works(n_speakers, n_folds):
    manifest = _manifest([f"s{i}" for i in range(n_speakers)], per_speaker=4)
    try:
        splits = make_splits(manifest, n_folds=n_folds)
    except ValueError as err:
        advice = re.search(r"use n_folds(?:=(\d+)| between (\d+) and (\d+))", str(err))
        assert advice, f"no advice in: {err}"
        low, high = (int(advice[1]), int(advice[1])) if advice[1] else (int(advice[2]), int(advice[3]))
        assert low <= high
        for k in (low, high, None):
            assert make_splits(manifest, n_folds=k)["fold"].nunique() == (k or min(5, n_speakers))
    else:
        assert splits["fold"].nunique() == n_folds


def test_automatic_number_of_folds():
    assert make_splits(_manifest(list("abc")))["fold"].nunique() == 3
    assert make_splits(_manifest([f"s{i:02d}" for i in range(11)]))["fold"].nunique() == 5
    assert make_splits(_manifest(list("ab")))["fold"].nunique() == 2


def _two_speaker_corpus():
    """TESS-like: two speakers, the same emotions each, 10 utterances per speaker × emotion."""
    rows = [dict(utt_id=f"{spk}_{emo}_{i:02d}", path=f"/x/{spk}_{emo}_{i}.wav", speaker=spk, emotion=emo, dataset="toy")
            for spk in ("OAF", "YAF") for emo in ("neu", "hap", "sad", "ang", "fea") for i in range(10)]
    return make_manifest(rows)


def test_two_speakers_leave_one_speaker_out_with_speaker_dependent_validation(tmp_path):
    manifest = _two_speaker_corpus()
    splits = make_splits(manifest, seed=3)
    assert sorted(splits["fold"].unique()) == [0, 1]
    assert splits.attrs == {"scheme": "leave-one-speaker-out", "n_folds": 2, "speaker_dependent_val": True}
    assert describe_splits(splits) == ("2 folds, leave-one-speaker-out; test speakers unseen in training; "
                                       "validation is speaker-dependent "
                                       "(a stratified part of the training speakers' utterances)")
    emotion = manifest.set_index("utt_id")["emotion"]
    tested = []
    for fold, part in splits.groupby("fold"):
        speakers = part.groupby("split")["speaker"].unique().map(list).to_dict()
        assert len(speakers["test"]) == 1 and speakers["train"] == speakers["val"] != speakers["test"]
        tested += speakers["test"]
        val = part.loc[part["split"] == "val", "utt_id"]
        assert emotion[val].value_counts().to_dict() == {e: 2 for e in ("neu", "hap", "sad", "ang", "fea")}
        assert len(part[part["split"] == "train"]) == 40 and len(part) == 100
    assert sorted(tested) == ["OAF", "YAF"] and (splits["group"] == splits["speaker"]).all()
    assert_no_leakage(splits)  # test speakers stay unseen; only validation shares the training speaker
    pd.testing.assert_frame_equal(make_splits(manifest.sample(frac=1.0, random_state=1), seed=3), splits)
    assert not make_splits(manifest, seed=4)["split"].equals(splits["split"])
    back = load_splits(save_splits(splits, tmp_path / "splits.csv"))
    assert speaker_dependent_val(back) and describe_splits(back) == describe_splits(splits)


def test_validation_keeps_rare_emotions_in_training():
    manifest = _two_speaker_corpus()
    manifest = manifest[~manifest["utt_id"].str.match(r"OAF_fea_0[1-9]")]  # one fearful utterance left for OAF
    part = make_splits(manifest).query("fold == 1")
    oaf_fear = part[part["utt_id"].str.startswith("OAF_fea")]
    assert oaf_fear["split"].tolist() == ["train"]


def test_two_folds_of_many_speakers_say_their_validation_is_speaker_dependent():
    splits = make_splits(_manifest([f"s{i}" for i in range(6)], per_speaker=5), n_folds=2)
    assert splits["fold"].nunique() == 2 and speaker_dependent_val(splits)
    assert describe_splits(splits).startswith("2 folds, 2 speaker-disjoint groups; test speakers unseen in training; "
                                              "validation is speaker-dependent")
    assert_no_leakage(splits)


def test_describe_speaker_independent_schemes(tmp_path):
    manifest = target_subset(load_iemocap(fx.make_iemocap(tmp_path), check_audio=False))
    splits = make_splits(manifest)
    assert describe_splits(splits) == ("5 folds, leave-one-session-out; test speakers unseen in training; "
                                       "validation speakers are unseen in training")
    assert not speaker_dependent_val(splits)
    assert describe_splits(make_splits(manifest, n_folds=3)).startswith("3 folds, 3 session-disjoint groups;")
    groups = make_splits(_manifest([f"s{i:02d}" for i in range(11)]))
    assert describe_splits(groups) == ("5 folds, 5 speaker-disjoint groups; test speakers unseen in training; "
                                       "validation speakers are unseen in training")
    assert load_splits(save_splits(groups, tmp_path / "g.csv")).pipe(describe_splits).startswith(
        "5 folds, leave-one-group-out; test speakers unseen in training; validation speakers are unseen")


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


def test_sessions_that_do_not_nest_speakers_fall_back_to_speaker_groups():
    manifest = _manifest(["a", "b", "c"], per_speaker=3)
    manifest["session"] = [f"S{i % 3}" for i in range(len(manifest))]  # every speaker in every session
    with pytest.warns(UserWarning, match=r"speaker\(s\) a, b, c appear in several session values; folds are speaker"):
        splits = make_splits(manifest)
    assert splits["group"].nunique() == 3 and splits.groupby("group")["speaker"].nunique().eq(1).all()
    partly = _manifest(["a", "b", "c", "d"], session_of=lambda s: {"a": "S1", "b": "S2", "c": "S3"}.get(s))
    with pytest.warns(UserWarning, match=r"column 'session' is empty for 3 utterance\(s\)"):
        splits = make_splits(partly)
    assert (splits["group"] == splits["speaker"]).all()  # one speaker per fold: groups named by the speaker


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
