"""Splits in and out (issue 33): the suite's splits.csv and EmoBox fold folders read in, checked like ours, our folds
exported as EmoBox fold files; a split with test speakers in training runs and says so."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sercore.analysis.overview import probe_table
from sercore.data import (
    SplitFileError,
    describe_splits,
    export_emobox,
    read_splits,
    save_splits,
    speaker_dependent_test,
)
from sercore.notebook.experiment import Experiment
from sercore.training.folds import fold_data

KEEP = ["fold", "utt_id", "speaker", "group", "split"]


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a[KEEP].reset_index(drop=True), b[KEEP].reset_index(drop=True))


def test_round_trip_through_emobox_files_and_csv_gives_the_same_folds_and_tables(grid_corpus, tmp_path):
    manifest, task, splits, features = grid_corpus
    files = export_emobox(splits, manifest, tmp_path / "emobox", "synthetic")
    assert sorted(p.relative_to(tmp_path / "emobox").as_posix() for p in files)[:3] == [
        "fold_1/synthetic_test_fold_1.jsonl", "fold_1/synthetic_train_fold_1.jsonl",
        "fold_1/synthetic_valid_fold_1.jsonl"]
    line = json.loads((tmp_path / "emobox" / "fold_1" / "synthetic_test_fold_1.jsonl").read_text().splitlines()[0])
    assert {"key", "wav", "emo", "speaker", "dataset"} <= set(line) and line["dataset"] == "synthetic"
    back = read_splits(tmp_path / "emobox", manifest, dataset="synthetic")
    _same(back.drop(columns="group").assign(group=splits["group"].values), splits)  # EmoBox has no groups
    csv = read_splits(save_splits(splits, tmp_path / "splits.csv"), manifest)
    _same(csv, splits)
    assert not back.attrs["speaker_dependent_test"] and not back.attrs["speaker_dependent_val"]
    before = probe_table({"fixed": features["fixed"]}, task, splits, seed=0)
    after = probe_table({"fixed": features["fixed"]}, task, back, seed=0)
    pd.testing.assert_frame_equal(before, after)  # the same folds: the same results, to the last digit


def _emobox_folder(folder, manifest, test_sessions, *, with_valid=False, prefix="synthetic-"):
    """EmoBox's own shape: keys ``<dataset>-<id>``, ``wav`` and ``emo``, no speaker, no valid files."""
    for k, session in enumerate(test_sessions, start=1):
        out = folder / f"fold_{k}"
        out.mkdir(parents=True)
        test = manifest["session"] == session
        val = manifest["session"] == test_sessions[k % len(test_sessions)] if with_valid else test & False
        for part, rows in (("train", manifest[~test & ~val]), ("test", manifest[test]), ("valid", manifest[val])):
            if part == "valid" and not with_valid:
                continue
            lines = [json.dumps({"key": prefix + r.utt_id, "dataset": "synthetic", "wav": f"downloads/{r.utt_id}.wav",
                                 "type": "raw", "emo": r.emotion[0], "channel": 1}) for r in rows.itertuples()]
            (out / f"synthetic_{part}_fold_{k}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_an_emobox_fold_folder_runs_with_validation_drawn_from_training_speakers(grid_corpus, tmp_path):
    manifest, task, _, features = grid_corpus
    folder = _emobox_folder(tmp_path / "emobox", manifest, ["Ses1", "Ses2", "Ses3"])
    splits = read_splits(folder, manifest, dataset="synthetic", seed=1)
    assert sorted(splits["fold"].unique()) == [0, 1, 2] and len(splits) == 3 * len(manifest)
    for fold, part in splits.groupby("fold"):
        train, val = (set(part.loc[part["split"] == s, "speaker"]) for s in ("train", "val"))
        assert len(val) == 2 and not val & train  # 20% of 8 training speakers, rounded up: unseen in training
        data = fold_data(manifest, task, splits, fold)
        assert data.test_ids and data.val_ids and data.train_ids
    assert describe_splits(splits) == ("3 folds, EmoBox fold files from emobox/; test speakers unseen in training; "
                                       "validation speakers are unseen in training")
    assert read_splits(folder, manifest, dataset="synthetic", seed=1).equals(splits)  # seeded
    table = probe_table({"fixed": features["fixed"]}, task, splits, seed=0)
    assert table.loc[table["metric"] == "test_uar", "fold"].tolist() == [0, 1, 2]


def test_emobox_lines_matched_by_file_name_and_official_validation_kept(grid_corpus, tmp_path):
    manifest = grid_corpus[0].assign(path=lambda m: "/corpus/" + m["utt_id"] + ".wav")
    folder = _emobox_folder(tmp_path / "emobox", manifest, ["Ses4", "Ses5", "Ses1"], with_valid=True, prefix="x")
    splits = read_splits(folder, manifest)  # keys "x<id>" are unknown: matched by the wav file's name
    first = splits[splits["fold"] == 0]
    assert set(first.loc[first["split"] == "val", "utt_id"]) == set(manifest.loc[manifest["session"] == "Ses5",
                                                                                "utt_id"])


def test_a_speaker_dependent_split_runs_and_is_labelled_so(grid_corpus, tmp_path):
    manifest, task, splits, features = grid_corpus
    own = splits[splits["fold"] < 2].copy()
    moved = own[(own["fold"] == 0) & (own["split"] == "test")].groupby("speaker").head(2)["utt_id"]
    own.loc[(own["fold"] == 0) & own["utt_id"].isin(moved), "split"] = "train"  # test speakers also train
    path = tmp_path / "dependent.csv"
    own.drop(columns=["speaker", "group"]).to_csv(path, index=False)  # speakers come from the manifest
    read = read_splits(path, manifest)
    assert read.attrs["speaker_dependent_test"] and speaker_dependent_test(read)
    assert "SPEAKER-DEPENDENT: test speakers also in training" in describe_splits(read)
    data = fold_data(manifest, task, read, 0)  # no LeakageError: the file says what it is
    assert set(moved) & set(data.pool_train) and not set(data.test_ids) & set(data.pool_train)
    exp = Experiment(manifest, task, read, {"fixed": features["fixed"]}, [0], "synthetic", output_dir=tmp_path / "out")
    runs = exp.table(pd.DataFrame({"fold": [0], "test_uar": [0.5]}), "runs")
    assert runs["speaker_dependent"].tolist() == [True] and runs["chance_uar"].tolist() == [0.25]
    caption = (tmp_path / "out" / "runs.md").read_text().splitlines()[0]
    assert "protocol: 2 folds, splits from dependent.csv; SPEAKER-DEPENDENT" in caption
    assert "classes: 4 (ang, hap, neu, sad); chance UAR 0.25" in caption


def test_bad_split_files_are_refused_naming_the_problem(grid_corpus, tmp_path):
    manifest, _, splits, _ = grid_corpus
    bad = splits[splits["fold"] == 0].copy()
    bad.loc[bad.index[0], "utt_id"] = "nobody_1"
    with pytest.raises(SplitFileError, match="1 utterance\\(s\\) not in the manifest.*nobody_1"):
        read_splits(save_splits(bad, tmp_path / "unknown.csv"), manifest)
    twice = pd.concat([splits[splits["fold"] == 0], splits[splits["fold"] == 0].head(1).assign(split="test")])
    with pytest.raises(SplitFileError, match="fold 0: utterance.*listed more than once"):
        read_splits(save_splits(twice, tmp_path / "twice.csv"), manifest)
    no_test = splits[(splits["fold"] == 0) & (splits["split"] != "test")]
    with pytest.raises(SplitFileError, match="fold 0 has no test utterances"):
        read_splits(save_splits(no_test, tmp_path / "no_test.csv"), manifest)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SplitFileError, match="no EmoBox fold files"):
        read_splits(tmp_path / "empty", manifest)
    with pytest.raises(SplitFileError, match="no such splits file"):
        read_splits(tmp_path / "missing.csv", manifest)
