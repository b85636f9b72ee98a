"""Manifest format: validation errors, CSV round trip, emotion subsets; the ``csv`` dataset (users' own data)."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from fixtures_corpora import write_wav

from sercore.data import (
    COLUMNS,
    ManifestError,
    bad_files,
    canonical_emotion,
    load_dataset,
    make_manifest,
    ood_subset,
    read_manifest_csv,
    target_subset,
    validate_manifest,
    write_manifest_csv,
)


@pytest.fixture
def four_utterances(tmp_path):
    """Four utterances on disk and their manifest rows (relative-free, absolute paths)."""
    labels = [("u1", "03", "neu"), ("u2", "03", "exc"), ("u3", "08", "fru"), ("u4", "08", "ang")]
    rows = []
    for i, (utt, spk, emo) in enumerate(labels):
        path = write_wav(tmp_path / "audio" / f"{utt}.wav", seed=i)
        rows.append(dict(utt_id=utt, path=str(path), speaker=spk, emotion=emo, dataset="toy"))
    return tmp_path, rows


def test_validate_adds_optional_columns_and_keeps_values(four_utterances):
    _, rows = four_utterances
    df = validate_manifest(pd.DataFrame(rows))
    assert list(df.columns) == list(COLUMNS)
    assert df["speaker"].tolist() == ["03", "03", "08", "08"]
    assert df["session"].isna().all() and df["duration"].isna().all()
    assert all(os.path.isabs(p) for p in df["path"])


def test_validate_makes_relative_paths_absolute(four_utterances, monkeypatch):
    root, rows = four_utterances
    monkeypatch.chdir(root)
    rows[0]["path"] = "audio/u1.wav"
    df = validate_manifest(pd.DataFrame(rows))
    assert df.loc[0, "path"] == str(root / "audio" / "u1.wav")


def test_missing_required_column_is_named(four_utterances):
    _, rows = four_utterances
    with pytest.raises(ManifestError, match=r"missing required column.*'emotion'"):
        validate_manifest(pd.DataFrame(rows).drop(columns="emotion"), source="mycorpus")


def test_duplicate_ids_are_named(four_utterances):
    _, rows = four_utterances
    rows[2]["utt_id"] = "u1"
    with pytest.raises(ManifestError, match=r"mycorpus: duplicate utt_id\(s\) u1 in rows 0, 2"):
        validate_manifest(pd.DataFrame(rows), source="mycorpus")


def test_unknown_emotion_code_is_named(four_utterances):
    _, rows = four_utterances
    rows[3]["emotion"] = "angry"
    with pytest.raises(ManifestError, match=r"unknown emotion code\(s\) \['angry'\] in rows 3 \(utt_id u4\)"):
        validate_manifest(pd.DataFrame(rows))


@pytest.mark.parametrize("value", [None, "", "  "])
def test_empty_speaker_is_rejected(four_utterances, value):
    _, rows = four_utterances
    rows[1]["speaker"] = value
    with pytest.raises(ManifestError, match=r"empty 'speaker' in 1 row\(s\): rows 1 \(utt_id u2\)"):
        validate_manifest(pd.DataFrame(rows))


def test_missing_file_is_named_unless_not_checked(four_utterances):
    root, rows = four_utterances
    (root / "audio" / "u3.wav").unlink()
    with pytest.raises(ManifestError, match=r"1 audio file\(s\) do not exist: .*u3\.wav"):
        validate_manifest(pd.DataFrame(rows))
    assert len(validate_manifest(pd.DataFrame(rows), check_files=False)) == 4


def test_empty_manifest_and_non_frame_are_rejected():
    with pytest.raises(ManifestError, match="no utterances"):
        validate_manifest(make_manifest([]))
    with pytest.raises(ManifestError, match="expected a pandas DataFrame, got list"):
        validate_manifest([{"utt_id": "a"}])


def test_csv_round_trip_keeps_strings_and_moves_with_its_folder(four_utterances, tmp_path_factory):
    root, rows = four_utterances
    rows[0].update(session="S1", duration=0.3, gender="F", text_id="a01")
    csv = write_manifest_csv(pd.DataFrame(rows), root / "manifest.csv")
    stored = pd.read_csv(csv, dtype=str)
    assert stored.loc[0, "path"] == "audio/u1.wav"  # relative inside the folder
    moved = tmp_path_factory.mktemp("moved") / "corpus"
    os.rename(root, moved)
    df = read_manifest_csv(moved / "manifest.csv")
    assert df.loc[0, "path"] == str(moved / "audio" / "u1.wav")
    assert df["speaker"].tolist() == ["03", "03", "08", "08"]
    assert df.loc[0, "duration"] == pytest.approx(0.3) and df.loc[0, "text_id"] == "a01"
    assert df["session"].iloc[1:].isna().all()


def test_csv_with_bad_duration_or_missing_file_names_the_csv(four_utterances):
    root, rows = four_utterances
    pd.DataFrame(rows).assign(duration="long").to_csv(root / "bad.csv", index=False)
    with pytest.raises(ManifestError, match=r"bad\.csv: column 'duration' is not numeric"):
        read_manifest_csv(root / "bad.csv")
    with pytest.raises(ManifestError, match=r"mine: column 'duration' is not numeric"):
        validate_manifest(pd.DataFrame(rows).assign(duration=["1.0", "x", None, 2]), source="mine")
    with pytest.raises(ManifestError, match=r"nothere\.csv: manifest CSV not found"):
        read_manifest_csv(root / "nothere.csv")


def _labels(emotions):
    return make_manifest(dict(utt_id=f"u{i}", path=f"/x/u{i}.wav", speaker="s", emotion=e, dataset="toy")
                         for i, e in enumerate(emotions))


def test_target_subset_merges_excited_and_ood_is_the_complement():
    df = _labels(["neu", "exc", "hap", "sad", "ang", "fru", "sur", "oth"])
    four = target_subset(df)
    assert four["utt_id"].tolist() == ["u0", "u1", "u2", "u3", "u4"]
    assert four["emotion"].tolist() == ["neu", "hap", "hap", "sad", "ang"]
    ood = ood_subset(df)
    assert ood["utt_id"].tolist() == ["u5", "u6", "u7"]
    assert ood["emotion"].tolist() == ["fru", "sur", "oth"]
    assert df["emotion"].iloc[1] == "exc"  # the input is left unchanged
    no_merge = target_subset(df, merge={})
    assert "u1" not in no_merge["utt_id"].tolist() and "u1" in ood_subset(df, merge={})["utt_id"].tolist()


def test_target_subset_warns_on_absent_class_and_rejects_unknown_codes():
    df = _labels(["neu", "hap", "sad", "fru"])
    with pytest.warns(UserWarning, match=r"no utterance labelled \['ang'\]"):
        assert len(target_subset(df)) == 3
    with pytest.raises(ValueError, match=r"unknown emotion code\(s\) \['joy'\]"):
        target_subset(df, emotions=("neu", "joy"))
    with pytest.raises(ManifestError, match="no utterance with emotion in"):
        target_subset(df, emotions=("dis",))
    with pytest.raises(ManifestError, match=r"leave one class, neu.*emotions: fru hap neu sad; choose"):
        target_subset(df, emotions=("neu", "ang"))


def _user_corpus(root, header="utt_id,path,speaker,emotion", rows=None):
    """A user's corpus as the README describes it: WAVs in a subfolder, a CSV with relative paths."""
    write_wav(root / "clips" / "a.wav", seconds=0.3, seed=1)
    write_wav(root / "clips" / "b.wav", seconds=0.5, seed=2)
    write_wav(root / "clips" / "c.wav", seconds=0.4, seed=3)
    rows = rows or ["a,clips/a.wav,spk1,Angry", "b,clips/b.wav,spk1,happy", "c,clips/c.wav,spk2,neu"]
    (root / "my_corpus.csv").write_text("\n".join([header] + rows) + "\n")
    return root / "my_corpus.csv"


def test_csv_dataset_with_the_four_readme_columns(tmp_path, monkeypatch):
    csv = _user_corpus(tmp_path / "data")
    monkeypatch.chdir(tmp_path)  # relative paths resolve against the CSV's folder, not the working folder
    df = load_dataset("csv", "data/my_corpus.csv")
    assert list(df.columns) == list(COLUMNS) and df["utt_id"].tolist() == ["a", "b", "c"]
    assert (df["dataset"] == "my_corpus").all()
    assert df["emotion"].tolist() == ["ang", "hap", "neu"]
    assert df["path"].tolist() == [str(csv.parent.resolve() / "clips" / f"{u}.wav") for u in "abc"]
    assert df["duration"].tolist() == pytest.approx([0.3, 0.5, 0.4])  # from the audio headers
    assert df[["session", "gender", "text_id"]].isna().all().all() and bad_files(df) == []


def test_csv_optional_columns_may_be_partly_empty(tmp_path):
    csv = _user_corpus(tmp_path, header="utt_id,path,speaker,emotion,session,duration,gender,dataset",
                       rows=["a,clips/a.wav,spk1,ang,S1,,F,", "b,clips/b.wav,spk1,sad,,0.45,,mine",
                             "c,clips/c.wav,spk2,neu,S2,0.4,M,"])
    df = load_dataset("csv", csv)
    assert df["session"].tolist() == ["S1", None, "S2"] and df["gender"].tolist() == ["F", None, "M"]
    assert df["duration"].tolist() == pytest.approx([0.3, 0.45, 0.4])  # given values are kept
    assert df["dataset"].tolist() == ["my_corpus", "mine", "my_corpus"]
    (tmp_path / "manifest.csv").write_text(csv.read_text())
    assert load_dataset("csv", tmp_path)["dataset"].tolist() == [tmp_path.name, "mine", tmp_path.name]


def test_csv_bad_rows_are_skipped_and_listed_or_fatal_in_strict_mode(tmp_path):
    csv = _user_corpus(tmp_path, rows=["a,clips/a.wav,spk1,joyful", "b,clips/b.wav,,hap", "c,clips/c.wav,spk2,neu",
                                       "c,clips/a.wav,spk2,sad", "d,clips/gone.wav,spk2,sad"])
    with pytest.raises(ManifestError, match=r"clips/a\.wav: my_corpus\.csv line 2: unknown emotion 'joyful'; use a "
                                            r"canonical code \(neu hap exc sad ang fru fea sur dis oth cal bor "
                                            r"low high\)"):
        load_dataset("csv", csv, on_error="raise")
    with pytest.warns(UserWarning, match=r"skipped 4 file"):
        df = load_dataset("csv", csv)
    assert df["utt_id"].tolist() == ["c"]
    reasons = [r["reason"] for r in bad_files(df)]
    assert reasons[0].startswith("my_corpus.csv line 2: unknown emotion 'joyful'")
    assert reasons[1] == "my_corpus.csv line 3: empty 'speaker'"
    assert reasons[2].startswith("duplicate utterance id c") and reasons[3] == "file not found"


def test_csv_missing_column_or_file_is_an_error_naming_what_is_expected(tmp_path):
    csv = _user_corpus(tmp_path, header="id,path,speaker,emotion")
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['utt_id'\]; found \['id', 'path', 'speaker', "
                                            r"'emotion'\]; expected a CSV file .* utt_id, path, speaker, emotion"):
        load_dataset("csv", csv)
    with pytest.raises(ManifestError, match=r"is a folder without manifest\.csv"):
        load_dataset("csv", tmp_path)
    with pytest.raises(ManifestError, match=r"csv: a root is required"):
        load_dataset("csv")


def test_emotion_names_map_to_canonical_codes():
    assert [canonical_emotion(x) for x in ("Angry", " happy ", "anger", "NEU", "Fearful", "boredom")] == [
        "ang", "hap", "ang", "neu", "fea", "bor"]
    assert canonical_emotion("joyful") is None and canonical_emotion(None) is None


def test_read_manifest_csv_defaults_dataset_to_the_stem(four_utterances):
    root, rows = four_utterances
    pd.DataFrame(rows).drop(columns="dataset").to_csv(root / "toy_corpus.csv", index=False)
    assert (read_manifest_csv(root / "toy_corpus.csv")["dataset"] == "toy_corpus").all()
