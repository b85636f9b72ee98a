"""Corpus loaders on tiny fixture folders in each official layout, and their errors on bad input."""

from __future__ import annotations

import sys
import types

import pytest

import fixtures_corpora as fx
from sercore.data import (COLUMNS, ManifestError, load_cremad, load_dataset, load_emodb, load_esd, load_iemocap,
                          load_ravdess, ood_subset, target_subset, write_manifest_csv)


@pytest.fixture(scope="module")
def iemocap_root(tmp_path_factory):
    return fx.make_iemocap(tmp_path_factory.mktemp("iemocap"))


@pytest.fixture
def fresh_iemocap(tmp_path):
    return fx.make_iemocap(tmp_path / "IEMOCAP_full_release")


def test_iemocap10_speakers_sessions_labels(iemocap_root):
    df = load_iemocap(iemocap_root)
    want = fx.iemocap_expected()
    assert list(df.columns) == list(COLUMNS) and len(df) == want["n10"] == 37
    assert set(df["emotion"]) == {"neu", "hap", "exc", "fru", "sad", "ang", "sur"}
    assert (df["dataset"] == "iemocap").all()
    assert sorted(df["speaker"].unique()) == [f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"]
    assert sorted(df["session"].unique()) == [f"Session{s}" for s in range(1, 6)]
    row = df.set_index("utt_id").loc["Ses02F_impro01_M002"]
    assert (row.speaker, row.gender, row.session, row.emotion) == ("Ses02M", "M", "Session2", "sad")
    assert row.duration == pytest.approx(0.3 + 0.1 * 5)  # label span of the 6th turn
    assert row.path == str(iemocap_root / "Session2/sentences/wav/Ses02F_impro01/Ses02F_impro01_M002.wav")
    assert row.text_id is None
    assert df.set_index("utt_id").loc["Ses03M_script01_1_F001", "text_id"] == "script01_1"
    assert not df["utt_id"].str.endswith("_M001").any()  # both M001 turns are xxx
    assert not df["utt_id"].str.startswith("Ses05M_script01_1").any()


def test_iemocap4_subset_and_dialog_exclusion(iemocap_root):
    four = target_subset(load_iemocap(iemocap_root))
    want = fx.iemocap_expected()["four"]
    assert four["emotion"].value_counts().to_dict() == want == {"neu": 9, "hap": 10, "sad": 5, "ang": 4}
    assert four.set_index("utt_id").loc["Ses01F_impro01_F001", "emotion"] == "hap"  # exc merged
    everything = load_iemocap(iemocap_root, exclude_dialogs=())
    assert len(everything) == fx.iemocap_expected(exclude_script_5=False)["n10"] == 40
    assert sorted(ood_subset(everything)["emotion"].unique()) == ["fru", "sur"]


def test_iemocap_wrong_root_names_the_layout(tmp_path):
    with pytest.raises(ManifestError, match=r"expected <root>/Session1/sentences/wav/<dialog>/<utt>\.wav"):
        load_iemocap(tmp_path)
    with pytest.raises(ManifestError, match=r"is not a folder"):
        load_iemocap(tmp_path / "nothere")
    with pytest.raises(ManifestError, match=r"a data root is required"):
        load_dataset("iemocap")


def test_iemocap_partial_release_warns_and_loads_what_is_there(tmp_path):
    root = fx.make_iemocap(tmp_path, sessions=(1, 2))
    with pytest.warns(UserWarning, match=r"lacks \['Session3', 'Session4', 'Session5'\]"):
        df = load_iemocap(root, check_audio=False)
    assert sorted(df["session"].unique()) == ["Session1", "Session2"] and len(df) == 16


def test_iemocap_missing_label_file_is_named(fresh_iemocap):
    label = fresh_iemocap / "Session2/dialog/EmoEvaluation/Ses02F_impro01.txt"
    label.unlink()
    with pytest.raises(ManifestError, match=rf"label file {label} missing"):
        load_iemocap(fresh_iemocap)


def test_iemocap_unknown_code_and_duplicate_id_name_the_label_file(fresh_iemocap):
    label = fresh_iemocap / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    good = label.read_text()
    label.write_text(good.replace("\tsad\t", "\tjoy\t"))
    with pytest.raises(ManifestError, match=rf"{label}:\d+: unknown label code 'joy' for Ses01F_impro01_M002"):
        load_iemocap(fresh_iemocap)
    label.write_text(good + "[9.0000 - 9.5000]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n")
    with pytest.raises(ManifestError, match=r"Ses01F_impro01\.txt:\d+: duplicate utterance id Ses01F_impro01_F000"):
        load_iemocap(fresh_iemocap)


def test_iemocap_corrupt_and_missing_wav(fresh_iemocap):
    wav = fresh_iemocap / "Session3/sentences/wav/Ses03F_impro01/Ses03F_impro01_F002.wav"
    wav.write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(ManifestError, match=rf"1 unreadable audio file\(s\): {wav}"):
        load_iemocap(fresh_iemocap)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        skipped = load_iemocap(fresh_iemocap, on_error="skip")
    assert len(skipped) == fx.iemocap_expected()["n10"] - 1 and "Ses03F_impro01_F002" not in set(skipped["utt_id"])
    wav.unlink()
    with pytest.raises(ManifestError, match=rf"do not exist: {wav}"):
        load_iemocap(fresh_iemocap)


def test_cremad_emotions_speakers_gender(tmp_path):
    df = load_cremad(fx.make_cremad(tmp_path))
    assert len(df) == 7 * len(fx.CREMAD_ACTORS)
    assert set(df["emotion"]) == {"ang", "dis", "fea", "hap", "neu", "sad"}
    assert sorted(df["speaker"].unique()) == list(fx.CREMAD_ACTORS)
    assert df["session"].isna().all()
    row = df.set_index("utt_id").loc["1002_IEO_ANG_HI"]
    assert (row.speaker, row.emotion, row.text_id, row.gender) == ("1002", "ang", "IEO", "F")
    assert row.duration == pytest.approx(fx.SECONDS)  # from the WAV header
    (tmp_path / "VideoDemographics.csv").unlink()
    assert load_cremad(tmp_path, check_audio=False)["gender"].isna().all()


def test_cremad_bad_names_and_wrong_root(tmp_path):
    root = fx.make_cremad(tmp_path / "c")
    with pytest.raises(ManifestError, match=r"expected <root>/AudioWAV/1001_DFA_ANG_XX\.wav"):
        load_cremad(tmp_path)
    fx.write_wav(root / "AudioWAV" / "1001_DFA_JOY_XX.wav")
    with pytest.raises(ManifestError, match=r"unknown emotion code 'JOY' in .*1001_DFA_JOY_XX\.wav"):
        load_cremad(root)
    (root / "AudioWAV" / "1001_DFA_JOY_XX.wav").rename(root / "AudioWAV" / "take2.wav")
    with pytest.raises(ManifestError, match=r"take2\.wav is not like 1001_DFA_ANG_XX\.wav"):
        load_cremad(root)


def test_ravdess_calm_keep_and_merge(tmp_path):
    root = fx.make_ravdess(tmp_path)
    df = load_ravdess(root)
    assert len(df) == 8 * len(fx.RAVDESS_ACTORS)  # the song file is left out
    assert df["emotion"].value_counts().to_dict() == {e: 6 for e in ("neu", "cal", "hap", "sad", "ang", "fea", "dis", "sur")}
    assert sorted(df["speaker"].unique()) == ["01", "02", "03", "04", "05", "06"]
    genders = df.drop_duplicates("speaker").set_index("speaker")["gender"].to_dict()
    assert genders == {"01": "M", "02": "F", "03": "M", "04": "F", "05": "M", "06": "F"}
    merged = load_dataset("ravdess", root, calm="merge", check_audio=False)
    assert merged["emotion"].value_counts()["neu"] == 12 and "cal" not in set(merged["emotion"])
    with pytest.raises(ValueError, match="calm must be 'keep' or 'merge'"):
        load_ravdess(root, calm="drop")


def test_ravdess_errors(tmp_path):
    with pytest.raises(ManifestError, match=r"expected <root>/Actor_01/03-01-01-01-01-01-01\.wav"):
        load_ravdess(tmp_path)
    root = fx.make_ravdess(tmp_path / "r")
    fx.write_wav(root / "Actor_02" / "03-01-09-01-01-01-02.wav")
    with pytest.raises(ManifestError, match=r"unknown emotion code '09' in .*03-01-09-01-01-01-02\.wav"):
        load_ravdess(root)
    (root / "Actor_02" / "03-01-09-01-01-01-02.wav").rename(root / "Actor_02" / "03-01-01-01-01-01-03.wav")
    with pytest.raises(ManifestError, match=r"names actor 03 but lies in Actor_02"):
        load_ravdess(root)


def test_esd_languages_and_subfolders(tmp_path):
    root = fx.make_esd(tmp_path)
    english = load_esd(root)
    assert sorted(english["speaker"].unique()) == ["0011", "0012", "0013", "0014", "0015"]
    assert len(english) == 3 * 5 + 2 * 10  # flat speakers 1 file per emotion, split speakers 2
    assert set(english["emotion"]) == {"ang", "hap", "neu", "sad", "sur"}
    row = english.set_index("utt_id").loc["0014_001052"]  # test/ subfolder, Sad, second sentence
    assert (row.emotion, row.text_id) == ("sad", "en002") and "/Sad/test/" in row.path
    assert english.set_index("utt_id").loc["0012_000351", "text_id"] == "en001"
    assert load_esd(root, language="mandarin", check_audio=False)["speaker"].unique().tolist() == ["0001"]
    assert len(load_dataset("esd", root, language="both", check_audio=False)) == 35 + 5
    with pytest.raises(ValueError, match="language must be"):
        load_esd(root, language="german")


def test_esd_duplicate_and_unknown_folder(tmp_path):
    root = fx.make_esd(tmp_path)
    fx.write_wav(root / "0014" / "Angry" / "evaluation" / "0014_000351.wav")
    with pytest.raises(ManifestError, match=r"duplicate utterance id 0014_000351: .*/(evaluation|train)/0014_000351\.wav and .*/(evaluation|train)/"):
        load_esd(root)
    (root / "0014" / "Angry" / "evaluation" / "0014_000351.wav").unlink()
    fx.write_wav(root / "0012" / "Fear" / "0012_001801.wav")
    with pytest.raises(ManifestError, match=r"unknown emotion folder .*0012/Fear"):
        load_esd(root)
    with pytest.raises(ManifestError, match=r"expected <root>/0011/Angry/0011_000351\.wav"):
        load_esd(root / "0012")


def test_emodb_labels_gender_and_errors(tmp_path):
    root = fx.make_emodb(tmp_path)
    df = load_dataset("EmoDB", root)
    assert len(df) == 35 and df["emotion"].value_counts().to_dict() == {
        e: 5 for e in ("ang", "bor", "dis", "fea", "hap", "sad", "neu")}
    row = df.set_index("utt_id").loc["08a05Fa"]
    assert (row.speaker, row.emotion, row.gender, row.text_id) == ("08", "hap", "F", "a05")
    assert df.set_index("utt_id").loc["10a01Wa", "gender"] == "M"
    with pytest.raises(ManifestError, match=r"expected <root>/wav/03a01Fa\.wav"):
        load_emodb(root / "wav")
    fx.write_wav(root / "wav" / "03a01Xa.wav")
    with pytest.raises(ManifestError, match=r"unknown emotion letter 'X' in .*03a01Xa\.wav"):
        load_emodb(root)
    (root / "wav" / "03a01Xa.wav").rename(root / "wav" / "05a01Wa.wav")
    with pytest.raises(ManifestError, match=r"unknown speaker '05'"):
        load_emodb(root)
    (root / "wav" / "05a01Wa.wav").unlink()
    (root / "wav" / "03a02Wa.wav").write_bytes(b"")
    with pytest.raises(ManifestError, match=r"unreadable audio file\(s\): .*03a02Wa\.wav"):
        load_emodb(root)


def test_csv_dataset_and_dispatch(tmp_path, iemocap_root):
    df = load_iemocap(iemocap_root, check_audio=False)
    write_manifest_csv(df, tmp_path / "manifest.csv")
    back = load_dataset("csv", tmp_path)
    assert back["utt_id"].tolist() == df["utt_id"].tolist() and back["path"].tolist() == df["path"].tolist()
    assert back["duration"].tolist() == pytest.approx(df["duration"].tolist())
    with pytest.raises(ValueError, match=r"unknown dataset 'timit'; known: default, iemocap, cremad, ravdess, esd, emodb, csv"):
        load_dataset("timit", tmp_path)


def test_default_dispatches_lazily_to_synth(monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("sercore.data.synth")
    fake.load_default_corpus = lambda root=None, *, size="default", seed=0: calls.append((root, size, seed)) or "m"
    monkeypatch.setitem(sys.modules, "sercore.data.synth", fake)
    import sercore.data as data

    monkeypatch.setitem(data.__dict__, "synth", fake)  # a plain setattr would import the real module first
    assert load_dataset("default", tmp_path, size="tiny", seed=3) == "m"
    assert calls == [(tmp_path, "tiny", 3)]
    assert data.load_default_corpus is fake.load_default_corpus
