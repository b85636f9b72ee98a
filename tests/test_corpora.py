"""Loaders of the corpora registered in ``sercore/data/corpora/`` against fixture folders of their official
layouts (``tests/fixtures_more_corpora.py``), quirks included."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
from fixtures_more_corpora import (
    ASED_UPPER,
    BUILDERS,
    EXPECTED,
    MSP_ROWS,
    NEMO_TEXT,
    SUBESCO_QUIRK,
    TESS_96K,
    TESS_AIFF,
    make_msppodcast,
    make_nemo,
    make_savee,
    make_tess,
    write_audio,
)

from sercore.data.manifest import EMOTIONS, ManifestError, target_subset
from sercore.data.registry import available_datasets, bad_files, dataset_info, load_dataset

DOC = Path(__file__).resolve().parents[1] / "docs" / "corpora.md"


def _load(name, root, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(name, root, **params)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Every fixture corpus built once, loaded with the default settings."""
    out = {}
    for name, build in BUILDERS.items():
        root = build(tmp_path_factory.mktemp(name))
        out[name] = (root, _load(name, root))
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts(corpora, name):
    _, df = corpora[name]
    utterances, speakers, emotions, bad = EXPECTED[name]
    assert len(df) == utterances
    assert df["speaker"].nunique() == speakers
    assert df["emotion"].nunique() == emotions
    assert len(bad_files(df)) == bad, bad_files(df)
    assert set(df["dataset"]) == {name}
    assert set(df["emotion"]) <= set(EMOTIONS)
    assert df["duration"].gt(0).all() and df["utt_id"].is_unique
    assert all(r["step"] == "loader" for r in bad_files(df))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_strict_mode_names_the_first_bad_file(corpora, name):
    root, df = corpora[name]
    first = Path(bad_files(df)[0]["path"]).name
    with pytest.raises(ManifestError, match=re.escape(first)):
        load_dataset(name, root, on_error="raise")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_wrong_root_names_the_layout(tmp_path, name):
    with pytest.raises(ManifestError, match="expected"):
        load_dataset(name, tmp_path / "absent")
    with pytest.raises(ManifestError, match="expected"):
        load_dataset(name, tmp_path)


def test_tess_quirks(corpora):
    root, df = corpora["tess"]
    rows = df.set_index("utt_id")
    assert sf.info(root / TESS_96K).samplerate == 96000
    assert rows.loc["OAF_back_angry", "duration"] == pytest.approx(0.1, abs=1e-3)
    for name in TESS_AIFF:
        assert sf.info(root / name).format == "AIFF"
        assert Path(name).stem in rows.index
    assert set(df["speaker"]) == {"OAF", "YAF"} and set(df["gender"]) == {"F"}
    assert rows.loc["YAF_back_ps", "emotion"] == "sur" and rows.loc["YAF_back_ps", "text_id"] == "back"
    reasons = {Path(r["path"]).name: r["reason"] for r in bad_files(df)}
    assert "unreadable" in reasons["YAF_dog_sad.wav"]
    assert "unknown emotion" in reasons["YAF_back_bored.wav"] and "not like" in reasons["OAF_back.wav"]


def test_tess_kaggle_folders_and_no_audio_check(tmp_path):
    df = _load("tess", make_tess(tmp_path, kaggle=True))
    assert len(df) == 28 and df["path"].str.contains("OAF_pleasant_surprised").any()
    unchecked = _load("tess", tmp_path, check_audio=False)
    assert len(unchecked) == 29 and len(bad_files(unchecked)) == 2   # the unreadable file is not probed


def test_a_second_copy_is_reported_as_duplicate(tmp_path):
    make_tess(tmp_path)
    copy = write_audio(tmp_path / "TESS Toronto emotional speech set data" / "OAF_angry" / "OAF_back_angry.wav")
    df = _load("tess", tmp_path)
    assert len(df) == 28 and df.set_index("utt_id").loc["OAF_back_angry", "path"] == str(tmp_path / TESS_96K)
    reasons = {r["path"]: r["reason"] for r in bad_files(df)}
    assert reasons[str(copy)].startswith("duplicate utterance id OAF_back_angry")


def test_savee_kaggle_layout(tmp_path):
    df = _load("savee", make_savee(tmp_path, kaggle=True))
    assert len(df) == 32 and sorted(df["speaker"].unique()) == ["DC", "JE", "JK", "KL"]
    assert set(df["gender"]) == {"M"} and (df["emotion"] == "neu").sum() == 8


def test_emovo_stereo_48k(corpora):
    root, df = corpora["emovo"]
    info = sf.info(df["path"][0])
    assert (info.channels, info.samplerate) == (2, 48000)
    assert set(df["speaker"]) == {"f1", "f2", "m1"} and set(df["gender"]) == {"F", "M"}
    assert df["text_id"].nunique() == 2
    assert any("folder f2" in r["reason"] for r in bad_files(df))


def test_cafe_wav_and_aiff(corpora):
    _, df = corpora["cafe"]
    assert df["path"].str.endswith(".aiff").sum() == 8
    assert df.set_index("speaker")["gender"].to_dict() == {"01": "M", "02": "F", "03": "M"}
    assert (df["emotion"] == "neu").sum() == 6 and "ang" in set(df["emotion"])


def test_shemo_speakers_per_gender(corpora):
    _, df = corpora["shemo"]
    assert sorted(df["speaker"].unique()) == ["F01", "F02", "M01", "M02"]
    assert df.set_index("utt_id").loc["M01W01", "emotion"] == "sur"


def test_subesco_bracket_quirk(corpora):
    _, df = corpora["subesco"]
    rows = df.set_index("utt_id")
    assert rows.loc["F_02_MONIKA_S_2_SURPRISE_3", "path"].endswith(SUBESCO_QUIRK)
    assert sorted(df["speaker"].unique()) == ["F_01", "F_02", "M_01"]


def test_urdu_speaker_codes_from_names(corpora):
    _, df = corpora["urdu"]
    assert df.groupby("speaker")["gender"].first().to_dict() == {"SF1": "F", "SM1": "M", "SM2": "M"}
    reasons = " ".join(r["reason"] for r in bad_files(df))
    assert "folder Sad" in reasons and "SM1_F1_A01" in reasons


def test_mesd_voice_types(corpora):
    _, df = corpora["mesd"]
    assert df.groupby("speaker").size().to_dict() == {"C": 6, "F": 7, "M": 6}
    assert df.loc[df["speaker"] == "C", "gender"].isna().all()


def test_turevdb_folder_labels_and_speaker_prefix(corpora):
    _, df = corpora["turevdb"]
    assert sorted(df["speaker"].unique()) == ["1157", "1234", "1358"]
    assert df.groupby("emotion").size().to_dict() == {"ang": 6, "cal": 6, "hap": 6, "sad": 6}
    reasons = " ".join(r["reason"] for r in bad_files(df))
    assert "contradicts folder Calm" in reasons and "not in an emotion folder" in reasons


def test_aesdd_takes_and_improvised_text(corpora):
    _, df = corpora["aesdd"]
    rows = df.set_index("utt_id")
    assert {"s01_1", "s01_1b"} <= set(rows.index) and sorted(df["speaker"].unique()) == ["1", "2", "3"]
    assert pd.isna(rows.loc["h20_2", "text_id"]) and rows.loc["a01_2", "text_id"] == "01"


def test_jlcorpus_reads_the_raw_folder_only(corpora):
    _, df = corpora["jlcorpus"]
    assert not df["path"].str.contains("Primary emotions").any()
    assert df.groupby("emotion").size()["oth"] == 2
    assert df.groupby("speaker")["gender"].first().to_dict() == {"female1": "F", "female2": "F", "male1": "M",
                                                                 "male2": "M"}


def test_msppodcast_partitions(corpora):
    _, df = corpora["msppodcast"]
    assert df.groupby("partition").size().to_dict() == {"test": 1, "train": 3, "val": 2}
    rows = df.set_index("utt_id")
    assert rows.loc["MSP-PODCAST_0004_0001", "speaker"] == "unk-Test1-0004"
    assert rows.loc["MSP-PODCAST_0003_0002", "emotion"] == "oth"
    first = rows.loc["MSP-PODCAST_0001_0001"]
    assert (first["split_set"], first["gender"], first["speaker"]) == ("Train", "M", "127")
    assert df["session"].isna().all()
    reasons = " ".join(r["reason"] for r in bad_files(df))
    assert "EmoClass" in reasons and "missing" in reasons and "Holdout" in reasons


def test_msppodcast_test_sets_and_old_spelling(tmp_path):
    make_msppodcast(tmp_path, labels="labels_concensus.csv", audio="Audio")
    df = _load("msp-podcast", tmp_path, test_sets=("Test1", "Test2"))
    assert len(df) == 7 and (df["partition"] == "test").sum() == 2
    assert len(df) == sum(r[1] != "X" and r[4] != "Holdout" for r in MSP_ROWS) - 2   # minus Q and missing


def test_msppodcast_missing_columns(tmp_path):
    (tmp_path / "Labels").mkdir()
    (tmp_path / "Labels" / "labels_consensus.csv").write_text("FileName,EmoClass\nMSP-PODCAST_0001_0001.wav,A\n")
    write_audio(tmp_path / "Audios" / "MSP-PODCAST_0001_0001.wav")
    with pytest.raises(ManifestError, match="SpkrID"):
        load_dataset("msppodcast", tmp_path)


def test_nemo_tsv_quirks(corpora):
    root, df = corpora["nemo"]
    assert sorted(df["speaker"].unique()) == ["EB0", "KS0", "WR0"]          # padding stripped
    assert df.groupby("speaker")["gender"].first().to_dict() == {"EB0": "F", "KS0": "M", "WR0": "M"}
    rows = df.set_index("utt_id")
    assert rows.loc["WR0_surprised_2", "emotion"] == "sur" and rows.loc["EB0_happiness_1", "emotion"] == "hap"
    assert rows.loc["WR0_surprised_2", "text_id"] == "2" and len(NEMO_TEXT) == 2
    assert "fea" not in set(df.loc[df["speaker"] == "KS0", "emotion"])     # a speaker without fear still loads
    reasons = {Path(r["path"]).name: r["reason"] for r in bad_files(df)}
    assert "not like EB0_anger_1.wav" in reasons["EB0-anger-3.wav"]
    assert "unknown emotion code 'contempt'" in reasons["EB0_contempt_1.wav"]
    assert "data.tsv says speaker_id 'KS0' emotion 'neutral'" in reasons["KS0_anger_5.wav"]
    assert "audio file is missing" in reasons["WR0_sadness_3.wav"]
    assert "not listed in data.tsv" in reasons["WR0_anger_99.wav"]


def test_nemo_label_file_problems_name_the_file(tmp_path):
    root = make_nemo(tmp_path)
    table = (root / "data.tsv").read_text(encoding="utf-8")
    (root / "data.tsv").write_text(table.replace("speaker_id", "speaker"), encoding="utf-8")
    with pytest.raises(ManifestError, match=r"data\.tsv: missing column\(s\) \['speaker_id'\]"):
        load_dataset("nemo", root)
    (root / "data.tsv").unlink()
    with pytest.raises(ManifestError, match=r"no data\.tsv in .*expected"):
        load_dataset("nemo", root)


def test_ased_codes_folders_and_the_upper_case_file(corpora):
    root, df = corpora["ased"]
    rows = df.set_index("utt_id")
    upper = rows.loc["s4-01-01-01-01"]
    assert upper["path"] == str(root / ASED_UPPER) and upper["emotion"] == "sad"
    assert df.groupby("speaker")["gender"].first().to_dict() == {"01": "F", "02": "M", "03": "M"}
    assert rows.loc["a5-02-01-02-03", "text_id"] == "a02"
    assert "sad" not in set(df.loc[df["speaker"] == "03", "emotion"])
    reasons = {Path(r["path"]).name: r["reason"] for r in bad_files(df)}
    assert "unknown emotion code 'a3'" in reasons["a3-01-01-02-02.wav"]
    assert "folder 03Happy" in reasons["n1-02-01-02-03.wav"]
    assert "unknown gender code '03'" in reasons["n1-01-01-03-02.wav"] and "not like" in reasons["fear_01.wav"]


def test_baved_levels_and_its_task(corpora):
    _, df = corpora["baved"]
    rows = df.set_index("utt_id")
    assert [rows.loc[f"2-f-19-3-{level}-1", "emotion"] for level in "012"] == ["low", "neu", "high"]
    assert rows.loc["2-f-19-3-0-1", "text_id"] == "3" and rows.loc["2-f-19-3-0-1", "gender"] == "F"
    assert "high" not in set(df.loc[df["speaker"] == "3", "emotion"])
    reasons = {Path(r["path"]).name: r["reason"] for r in bad_files(df)}
    assert "word folder 0" in reasons["2-f-19-3-1-2.wav"] and "level code '3'" in reasons["1-m-21-3-3-2.wav"]
    assert "not like" in reasons["recording.wav"]
    with pytest.raises(ManifestError, match=r"leave one class, neu.*emotions: high low neu"):
        target_subset(df)
    task = target_subset(df, emotions=("low", "neu", "high"))
    assert task.groupby("emotion").size().to_dict() == {"high": 4, "low": 6, "neu": 6}


def test_every_registered_corpus_is_documented():
    names = available_datasets()
    assert set(EXPECTED) <= set(names)
    text = DOC.read_text(encoding="utf-8")
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert f"`{name}`" in text, f"docs/corpora.md does not list {name}"
        assert f"| `{name}` |" in readme, f"the README's corpus table does not list {name}"
        assert dataset_info(name).layout


def test_msppodcast_official_partition_is_the_one_fold(corpora):
    from sercore.data import describe_splits, make_splits

    _, df = corpora["msppodcast"]
    splits = make_splits(df, n_folds=5, seed=3)
    assert splits["fold"].unique().tolist() == [0]
    got = splits.set_index("utt_id")["split"].to_dict()
    assert got == dict(zip(df["utt_id"], df["partition"]))
    assert "official partition" in describe_splits(splits)
