"""Corpus loaders on tiny fixture folders in each official layout; bad files skipped and listed, or fatal
with ``on_error="raise"``; the dataset registry."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import fixtures_corpora as fx
import pytest

from sercore.data import (
    COLUMNS,
    ManifestError,
    available_datasets,
    bad_files,
    dataset_info,
    load_cremad,
    load_dataset,
    load_emodb,
    load_esd,
    load_iemocap,
    load_ravdess,
    loader_params,
    ood_subset,
    target_subset,
    write_manifest_csv,
)


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


def test_iemocap_missing_label_file_is_skipped_and_named(fresh_iemocap):
    label = fresh_iemocap / "Session2/dialog/EmoEvaluation/Ses02F_impro01.txt"
    label.unlink()
    with pytest.warns(UserWarning, match="skipped 1 file"):
        df = load_iemocap(fresh_iemocap, check_audio=False)
    assert not df["utt_id"].str.startswith("Ses02F_impro01").any() and len(df) == fx.iemocap_expected()["n10"] - 5
    [record] = bad_files(df)
    assert record["path"].endswith("Session2/sentences/wav/Ses02F_impro01") and str(label) in record["reason"]
    with pytest.raises(ManifestError, match=rf"no label file {label}"):
        load_iemocap(fresh_iemocap, on_error="raise")


def test_iemocap_unknown_code_and_duplicate_id_name_the_label_file(fresh_iemocap):
    label = fresh_iemocap / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    good = label.read_text()
    label.write_text(good.replace("\tsad\t", "\tjoy\t"))
    with pytest.raises(ManifestError, match=rf"{label}:\d+: unknown label code 'joy' for Ses01F_impro01_M002"):
        load_iemocap(fresh_iemocap, on_error="raise")
    with pytest.warns(UserWarning, match="skipped 1 file"):
        df = load_iemocap(fresh_iemocap, check_audio=False)
    assert "Ses01F_impro01_M002" not in set(df["utt_id"])
    assert "unknown label code 'joy'" in bad_files(df)[0]["reason"]
    label.write_text(good + "[9.0000 - 9.5000]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n")
    with pytest.raises(ManifestError, match=r"Ses01F_impro01\.txt:\d+: duplicate utterance id Ses01F_impro01_F000"):
        load_iemocap(fresh_iemocap, on_error="raise")


def test_iemocap_corrupt_and_missing_wav(fresh_iemocap):
    wav = fresh_iemocap / "Session3/sentences/wav/Ses03F_impro01/Ses03F_impro01_F002.wav"
    wav.write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(ManifestError, match=rf"iemocap: {wav}: unreadable audio"):
        load_iemocap(fresh_iemocap, on_error="raise")
    with pytest.warns(UserWarning, match="skipped 1 file"):
        skipped = load_iemocap(fresh_iemocap)
    assert len(skipped) == fx.iemocap_expected()["n10"] - 1 and "Ses03F_impro01_F002" not in set(skipped["utt_id"])
    assert bad_files(skipped)[0]["step"] == "loader"
    wav.unlink()
    with pytest.raises(ManifestError, match=rf"{wav}: file not found"):
        load_iemocap(fresh_iemocap, on_error="raise")
    with pytest.warns(UserWarning, match="skipped 1 file"):
        assert len(load_iemocap(fresh_iemocap)) == fx.iemocap_expected()["n10"] - 1


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


def _two_bad_files_skipped(load, root, folder, names, first_error):
    """Write two bad files ``names`` into ``folder`` of the corpus at ``root``: ``on_error="raise"`` names the
    first (``first_error``); by default both are skipped with a warning. Returns the manifest and
    ``{file name: reason}`` of its bad files."""
    for name in names:
        fx.write_wav(folder / name)
    with pytest.raises(ManifestError, match=first_error):
        load(root, on_error="raise")
    with pytest.warns(UserWarning, match="skipped 2 file"):
        df = load(root)
    return df, {Path(r["path"]).name: r["reason"] for r in bad_files(df)}


def test_cremad_bad_names_and_wrong_root(tmp_path):
    root = fx.make_cremad(tmp_path / "c")
    with pytest.raises(ManifestError, match=r"expected <root>/AudioWAV/1001_DFA_ANG_XX\.wav"):
        load_cremad(tmp_path)
    df, reasons = _two_bad_files_skipped(load_cremad, root, root / "AudioWAV", ["1001_DFA_JOY_XX.wav", "take2.wav"],
                                         r"1001_DFA_JOY_XX\.wav: unknown emotion code 'JOY'")
    assert len(df) == 7 * len(fx.CREMAD_ACTORS)
    assert reasons == {"1001_DFA_JOY_XX.wav": "unknown emotion code 'JOY'; known: ANG DIS FEA HAP NEU SAD",
                       "take2.wav": "file name is not like 1001_DFA_ANG_XX.wav"}
    (root / "VideoDemographics.csv").write_text("Actor,Sex\n1001,Male\n")
    with pytest.raises(ManifestError, match=r"VideoDemographics\.csv: expected columns ActorID and Sex"):
        load_cremad(root, on_error="raise", check_audio=False)


def test_ravdess_calm_keep_and_merge(tmp_path):
    root = fx.make_ravdess(tmp_path)
    df = load_ravdess(root)
    assert len(df) == 8 * len(fx.RAVDESS_ACTORS)  # the song file is left out
    emotions = ("neu", "cal", "hap", "sad", "ang", "fea", "dis", "sur")
    assert df["emotion"].value_counts().to_dict() == {e: 6 for e in emotions}
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
    with pytest.raises(ManifestError, match=r"03-01-09-01-01-01-02\.wav: unknown emotion code '09'"):
        load_ravdess(root, on_error="raise")
    fx.write_wav(root / "Actor_02" / "03-01-01-01-01-01-03.wav")
    fx.write_wav(root / "Actor_02" / "Copy of 03-01-01-01-01-01-02.wav")
    with pytest.warns(UserWarning, match="skipped 3 file"):
        df = load_ravdess(root)
    assert len(df) == 8 * len(fx.RAVDESS_ACTORS)
    reasons = sorted(r["reason"] for r in bad_files(df))
    assert reasons == ["file name is not like 03-01-01-01-01-01-01.wav", "names actor 03 but lies in Actor_02",
                       "unknown emotion code '09'; known: 01 02 03 04 05 06 07 08"]


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
    with pytest.raises(ManifestError, match=r"/(evaluation|train)/0014_000351\.wav: duplicate utterance id 0014_000351 "
                                            r"\(also .*/(evaluation|train)/0014_000351\.wav\)"):
        load_esd(root, on_error="raise")
    fx.write_wav(root / "0012" / "Fear" / "0012_001801.wav")
    with pytest.raises(ManifestError, match=r"0012/Fear: unknown emotion folder"):
        load_esd(root, on_error="raise")
    with pytest.warns(UserWarning, match="skipped 2 file"):
        df = load_esd(root)
    assert len(df) == 3 * 5 + 2 * 10
    assert sorted(Path(r["path"]).name for r in bad_files(df)) == ["0014_000351.wav", "Fear"]
    with pytest.raises(ManifestError, match=r"expected <root>/0011/Angry/0011_000351\.wav"):
        load_esd(root / "0012")


def test_emodb_labels_gender_and_errors(tmp_path):
    root = fx.make_emodb(tmp_path)
    df = load_dataset("EmoDB", root)
    assert len(df) == 35 and df["emotion"].value_counts().to_dict() == {
        e: 5 for e in ("ang", "bor", "dis", "fea", "hap", "sad", "neu")}
    assert bad_files(df) == []
    row = df.set_index("utt_id").loc["08a05Fa"]
    assert (row.speaker, row.emotion, row.gender, row.text_id) == ("08", "hap", "F", "a05")
    assert df.set_index("utt_id").loc["10a01Wa", "gender"] == "M"
    with pytest.raises(ManifestError, match=r"expected <root>/wav/03a01Fa\.wav"):
        load_emodb(root / "wav")
    df, reasons = _two_bad_files_skipped(load_emodb, root, root / "wav", ["03a01Xa.wav", "05a01Wa.wav"],
                                         r"03a01Xa\.wav: unknown emotion letter 'X'")
    assert len(df) == 35
    assert reasons == {"03a01Xa.wav": "unknown emotion letter 'X'; known: W L E A F T N",
                       "05a01Wa.wav": "unknown speaker '05'; known: 03 08 09 10 11 12 13 14 15 16"}


def test_emodb_misnamed_unreadable_and_truncated_files_are_skipped_and_listed(tmp_path):
    root = fx.add_bad_emodb_files(fx.make_emodb(tmp_path))
    with pytest.warns(UserWarning, match=r"emodb: skipped 5 file\(s\)"):
        df = load_emodb(root)
    assert len(df) == 35 and set(df["utt_id"]).isdisjoint(Path(n).stem for n in fx.EMODB_BAD)
    records = {Path(r["path"]).name: r for r in bad_files(df)}
    assert set(records) == set(fx.EMODB_BAD)
    for name, words in fx.EMODB_BAD.items():
        assert words in records[name]["reason"] and records[name]["step"] == "loader"
    assert records["10a04Tb.wav"]["reason"].startswith("truncated (the header promises 4800 frames")
    assert df["duration"].tolist() == pytest.approx([fx.SECONDS] * 35)
    with pytest.raises(ManifestError, match=r"emodb: .*/wav/(recording_1|03a04Fb)\.wav: "):
        load_emodb(root, on_error="raise")
    for name in fx.EMODB_BAD:  # each bad file alone is fatal in strict mode, and the error names it
        strict_root = fx.make_emodb(tmp_path / f"strict_{Path(name).stem}")
        (strict_root / "wav" / name).write_bytes((root / "wav" / name).read_bytes())
        with pytest.raises(ManifestError, match=rf"emodb: {strict_root / 'wav' / name}: .*{fx.EMODB_BAD[name]}"):
            load_emodb(strict_root, on_error="raise")


def test_a_folder_of_only_bad_files_is_a_layout_error_naming_the_first(tmp_path):
    fx.write_truncated(tmp_path / "wav" / "03a01Fa.wav")
    with pytest.raises(ManifestError, match=r"none of the 1 audio files is usable .*03a01Fa\.wav: truncated"):
        load_emodb(tmp_path)
    fx.write_wav(tmp_path / "other" / "wav" / "recording_1.wav")
    with pytest.raises(ManifestError, match=r"no labelled utterances found; expected <root>/wav/03a01Fa\.wav .*"
                                            r"\(1 file\(s\) skipped, first: .*recording_1\.wav"):
        load_emodb(tmp_path / "other")


def test_csv_round_trip_of_a_manifest(tmp_path, iemocap_root):
    df = load_iemocap(iemocap_root, check_audio=False)
    write_manifest_csv(df, tmp_path / "manifest.csv")
    back = load_dataset("csv", tmp_path)
    assert back["utt_id"].tolist() == df["utt_id"].tolist() and back["path"].tolist() == df["path"].tolist()
    assert back["duration"].tolist() == pytest.approx(df["duration"].tolist())
    assert (back["dataset"] == "iemocap").all() and bad_files(back) == []


def test_registry_lists_every_corpus_and_rejects_unknown_names_and_parameters(tmp_path):
    names = available_datasets()
    assert {"default", "iemocap", "cremad", "ravdess", "esd", "emodb", "csv"} <= set(names)
    assert names == sorted(names)
    with pytest.raises(KeyError, match=r"unknown dataset 'timit'; known: ") as err:
        load_dataset("timit", tmp_path)
    assert all(name in str(err.value) for name in names)
    assert dataset_info("crema-d").name == "cremad" and dataset_info("emo_db").name == "emodb"
    assert dataset_info("EmoDB").loader is load_emodb and not dataset_info("default").needs_root
    with pytest.raises(TypeError, match=r"emodb: unknown dataset parameter\(s\) \['calm'\]; accepted: "
                                        r"check_audio, on_error"):
        load_dataset("emodb", tmp_path, calm="merge")
    with pytest.raises(ValueError, match=r"on_error must be 'raise' or 'skip'"):
        load_emodb(fx.make_emodb(tmp_path), on_error="ignore")


@pytest.mark.parametrize("name", ["default", "iemocap", "cremad", "ravdess", "esd", "emodb", "csv"])
def test_every_loader_skips_bad_files_by_default(name):
    assert loader_params(name)["on_error"] == "skip"


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
