"""Feature store through extract_features: keys (hit/miss), float16 storage, variable-length layout, resume, bad
audio, workers. (What only the store does, per-utterance reuse, is in tests/test_store.py.)

The views are small fakes (tests/fake_views.py and below; the cache only relies on the View contract), on the
``tone_corpus`` of tests/conftest.py.
"""

import json
import multiprocessing as mp

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from fake_views import FAIL, SR, FakeFixed, FakeSeq, direct, run

from sercore.data.audio import AudioError
from sercore.features.cache import FeatureError, cache_info, cache_path, extract_features


class FakeParallel(FakeFixed):
    name, parallel = "fakepar", True


class FakeBig(FakeFixed):
    name = "fakebig"

    def extract(self, wave, sr=SR):
        return super().extract(wave, sr) * 1e6


class FakeNaN(FakeFixed):
    name = "fakenan"

    def extract(self, wave, sr=SR):
        out = super().extract(wave, sr)
        return out * np.nan if len(wave) > 1.35 * sr else out


class FakeRejects(FakeFixed):
    """Raises ValueError (the views' error for unusable input) on the longest file, like opensmile on NaN."""

    name = "fakerej"

    def extract(self, wave, sr=SR):
        if len(wave) > 1.35 * sr:
            raise ValueError("degenerate input")
        return super().extract(wave, sr)


def make_fake(name, **params):
    """Picklable view factory for the worker processes."""
    return {"fakepar": FakeParallel}[name](**params)


@pytest.fixture(autouse=True)
def _reset_fail():
    yield
    FAIL.update(after=None, hard=False)


def test_second_call_is_a_hit(tone_corpus, tmp_path):
    first = FakeFixed()
    fs1 = run(tone_corpus, first, tmp_path / "c")
    assert first.calls == 10
    again = FakeFixed()
    fs2 = run(tone_corpus.sample(frac=1.0, random_state=1), again, tmp_path / "c")  # row order does not matter
    assert again.calls == 0
    assert fs2.data.dtype == np.float16
    np.testing.assert_array_equal(fs1.ids, fs2.ids)
    np.testing.assert_array_equal(np.asarray(fs1.data), np.asarray(fs2.data))
    folder = cache_path(tone_corpus, again, cache_root=tmp_path / "c")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "index.sqlite", "lock", "pending", "shards"]
    assert len(list((folder / "shards").glob("*.npy"))) == 1
    config = json.loads((folder / "config.json").read_text())
    assert config["view"] == "fakefix" and config["params"] == {"scale": 1.0} and config["version"] == "1"
    meta = fs2.meta
    assert meta["view"] == "fakefix" and meta["params"] == {"scale": 1.0} and meta["version"] == "1"
    assert meta["provenance"] == {"source": "fake"} and meta["skipped"] == [] and meta["n"] == 10
    assert cache_info(tone_corpus, again, cache_root=tmp_path / "c")["complete"]


def _change_row(m, tmp_path):
    m = m.copy()
    m.loc[3, "utt_id"] = "renamed"
    return m


def _change_size(m, tmp_path):
    sf.write(m.path[2], np.full(int(2.5 * SR), 0.2, np.float32), SR, subtype="FLOAT")
    return m


CHANGES = {  # what changed → (new store folder, extractions)
    "param": (lambda m, p: m, {"scale": 2.0}, True, 10),
    "version": (lambda m, p: m, {"version": "2"}, True, 10),
    "row_removed": (lambda m, p: m.iloc[1:], {}, False, 0),
    "utt_id": (_change_row, {}, False, 0),
    "file_size": (_change_size, {}, False, 1),
}


@pytest.mark.parametrize("case", sorted(CHANGES))
def test_a_change_extracts_what_it_changed(tone_corpus, tmp_path, case):
    run(tone_corpus, FakeFixed(), tmp_path / "c")
    before = cache_path(tone_corpus, FakeFixed(), cache_root=tmp_path / "c")
    change, params, new_folder, calls = CHANGES[case]
    manifest = change(tone_corpus, tmp_path)
    view = FakeFixed(**params)
    fs = run(manifest, view, tmp_path / "c")
    assert view.calls == calls
    assert (cache_path(manifest, view, cache_root=tmp_path / "c") != before) == new_folder
    want = direct(manifest, FakeFixed, **params)
    got = fs.numpy_fixed(fs.positions(list(want)))
    np.testing.assert_allclose(got, np.stack(list(want.values())), rtol=2e-3, atol=1e-4)


def test_file_size_change_gives_new_features(tone_corpus, tmp_path):
    run(tone_corpus, FakeFixed(), tmp_path / "c")
    _change_size(tone_corpus, tmp_path)
    fs = run(tone_corpus, FakeFixed(), tmp_path / "c")
    assert fs.numpy_fixed(fs.positions(["u02"]))[0, 3] == pytest.approx(2.5)  # the new duration


def test_float16_round_trip(tone_corpus, tmp_path):
    fs = run(tone_corpus, FakeFixed(scale=3.0), tmp_path / "c")
    want = direct(tone_corpus, FakeFixed, scale=3.0)
    got = fs.numpy_fixed()
    assert got.dtype == np.float32 and fs.meta["dtype"] == "float16"
    np.testing.assert_allclose(got, np.stack([want[u] for u in fs.ids]), rtol=1e-3, atol=1e-5)


def test_values_beyond_float16_are_kept_in_float32(tone_corpus, tmp_path):
    fs = run(tone_corpus, FakeBig(), tmp_path / "c")
    assert fs.data.dtype == np.float32 and fs.meta["dtype"] == "float32"
    want = direct(tone_corpus, FakeBig)
    np.testing.assert_allclose(fs.numpy_fixed(), np.stack([want[u] for u in fs.ids]), rtol=1e-6)


def test_variable_length_layout_and_batch(tone_corpus, tmp_path):
    fs = run(tone_corpus, FakeSeq(), tmp_path / "c", chunk_size=4)
    want = direct(tone_corpus, FakeSeq)
    lengths = [len(want[u]) for u in fs.ids]
    assert list(fs.lengths) == lengths and lengths[0] == 10 and lengths[-1] == 28  # 0.5 s / 1.4 s of 50 ms
    assert fs.data.shape == (sum(lengths), 3) and fs.feature_shape == (3,)
    folder = cache_path(tone_corpus, FakeSeq(), cache_root=tmp_path / "c")
    (shard,) = (folder / "shards").glob("*.npy")
    assert np.load(shard).shape == (sum(lengths), 3)  # every frame back to back, nothing padded
    x, lens = fs.batch([0, 9, 4])
    assert x.shape == (3, 28, 3) and lens.tolist() == [10, 28, 18]
    for row, u in enumerate(fs.ids[[0, 9, 4]]):
        n = len(want[u])
        np.testing.assert_allclose(x[row, :n].numpy(), want[u], rtol=1e-3, atol=1e-4)
        assert not x[row, n:].any()  # zero padding past the item's length
    sub = fs.subset(["u03", "u01"])
    np.testing.assert_allclose(sub.batch([0])[0][0, :len(want["u03"])].numpy(), want["u03"], rtol=1e-3, atol=1e-4)


def test_resume_after_crash_matches_uninterrupted_run(tone_corpus, tmp_path):
    ref = run(tone_corpus, FakeSeq(), tmp_path / "ref", chunk_size=3)
    FAIL["after"] = 7  # dies inside the third chunk (chunks of 3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(tone_corpus, FakeSeq(), tmp_path / "c", chunk_size=3)
    info = cache_info(tone_corpus, FakeSeq(), cache_root=tmp_path / "c")
    assert not info["complete"] and info["pending"] == 2 and info["stored"] == 0
    FAIL["after"] = None
    view = FakeSeq()
    fs = run(tone_corpus, view, tmp_path / "c", chunk_size=3)
    assert view.calls == 4  # only the two unfinished chunks
    np.testing.assert_array_equal(fs.ids, ref.ids)
    np.testing.assert_array_equal(fs.lengths, ref.lengths)
    np.testing.assert_array_equal(np.asarray(fs.data), np.asarray(ref.data))
    folder = cache_path(tone_corpus, view, cache_root=tmp_path / "c")
    assert not list((folder / "pending").glob("*")) and cache_info(tone_corpus, view, cache_root=tmp_path / "c")[
        "complete"]


def test_resume_after_hard_kill(tone_corpus, tmp_path):
    FAIL.update(after=5, hard=True)
    proc = mp.get_context("fork").Process(target=run, args=(tone_corpus, FakeFixed(), tmp_path / "c"),
                                          kwargs={"chunk_size": 2})
    proc.start()
    proc.join(30)
    assert proc.exitcode == 3
    FAIL.update(after=None, hard=False)
    folder = cache_path(tone_corpus, FakeFixed(), cache_root=tmp_path / "c")
    assert not list((folder / "shards").glob("*.npy")) and len(list((folder / "pending").glob("chunk-*.npz"))) == 2
    view = FakeFixed()
    fs = run(tone_corpus, view, tmp_path / "c", chunk_size=2)
    ref = run(tone_corpus, FakeFixed(), tmp_path / "ref", chunk_size=2)
    assert view.calls == 6
    np.testing.assert_array_equal(np.asarray(fs.data), np.asarray(ref.data))


def test_stale_tmp_and_broken_leftovers_are_ignored(tone_corpus, tmp_path):
    ref = run(tone_corpus, FakeFixed(), tmp_path / "ref", chunk_size=4)
    folder = cache_path(tone_corpus, FakeFixed(), cache_root=tmp_path / "c")
    for sub in ("pending", "shards"):
        (folder / sub).mkdir(parents=True)
    (folder / "pending" / "chunk-0.npz.tmp-99999").write_bytes(b"half a chunk")
    (folder / "pending" / "chunk-1.npz").write_bytes(b"not an npz")
    (folder / "shards" / "x.npy.tmp-99999").write_bytes(b"half a shard")
    (folder / "shards" / "y.npy").write_bytes(b"a shard the index does not list")
    view = FakeFixed()
    fs = run(tone_corpus, view, tmp_path / "c", chunk_size=4)
    assert view.calls == 10
    np.testing.assert_array_equal(np.asarray(fs.data), np.asarray(ref.data))


def test_chunks_of_another_chunk_size_are_kept(tone_corpus, tmp_path):
    FAIL["after"] = 6
    with pytest.raises(RuntimeError):
        run(tone_corpus, FakeFixed(), tmp_path / "c", chunk_size=3)
    FAIL["after"] = None
    view = FakeFixed()
    fs = run(tone_corpus, view, tmp_path / "c", chunk_size=4)
    assert view.calls == 4  # the two finished chunks of 3 were merged, whatever the chunk size now
    ref = run(tone_corpus, FakeFixed(), tmp_path / "ref", chunk_size=4)
    np.testing.assert_array_equal(np.asarray(fs.data), np.asarray(ref.data))


def _with_bad_files(tone_corpus, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(SR, np.float32), SR)
    bad = pd.DataFrame([{"utt_id": "zz_silent", "path": str(silent), "speaker": "s0"},
                        {"utt_id": "zz_gone", "path": str(tmp_path / "gone.wav"), "speaker": "s1"}])
    return pd.concat([tone_corpus, bad], ignore_index=True)


def test_skip_records_bad_audio_and_excludes_it(tone_corpus, tmp_path):
    manifest = _with_bad_files(tone_corpus, tmp_path)
    with pytest.warns(UserWarning, match="skipped 2 of 12"):
        fs = run(manifest, FakeFixed(), tmp_path / "c", on_error="skip")
    assert len(fs) == 10 and "zz_silent" not in fs.ids
    reasons = {s["utt_id"]: s["reason"] for s in fs.meta["skipped"]}
    assert reasons["zz_gone"] == "file not found" and reasons["zz_silent"].startswith("silent")
    with pytest.raises(AudioError, match="gone.wav: file not found"):  # a hit still honours "raise"
        run(manifest, FakeFixed(), tmp_path / "c")


def test_raise_names_the_bad_file(tone_corpus, tmp_path):
    manifest = _with_bad_files(tone_corpus, tmp_path)
    with pytest.raises(AudioError, match="gone.wav: file not found"):
        run(manifest, FakeFixed(), tmp_path / "c", chunk_size=4)
    with pytest.raises(ValueError, match="on_error"):
        run(manifest, FakeFixed(), tmp_path / "c", on_error="warn")


def test_all_bad_raises_even_with_skip(tmp_path):
    manifest = pd.DataFrame([{"utt_id": "a", "path": str(tmp_path / "none.wav")}])
    with pytest.raises(AudioError, match="no utterance could be used"):
        run(manifest, FakeFixed(), tmp_path / "c", on_error="skip")


def test_nan_features_are_skipped_or_raised(tone_corpus, tmp_path):
    with pytest.warns(UserWarning, match="skipped 1 of 10"):
        fs = run(tone_corpus, FakeNaN(), tmp_path / "c", on_error="skip")
    assert "u09" not in fs.ids and "NaN" in fs.meta["skipped"][0]["reason"]
    with pytest.raises(FeatureError, match="u09.wav: view fakenan returned NaN"):
        run(tone_corpus, FakeNaN(), tmp_path / "c2")


@pytest.mark.parametrize("factory", [None, make_fake])
def test_process_pool_matches_sequential(tone_corpus, tmp_path, factory):
    seq = run(tone_corpus, FakeParallel(scale=2.0), tmp_path / "seq", workers=1, chunk_size=3)
    par_view = FakeParallel(scale=2.0)
    par = run(tone_corpus, par_view, tmp_path / "par", workers=2, chunk_size=3, view_factory=factory)
    assert par_view.calls == 0  # the workers used their own copies
    np.testing.assert_array_equal(par.ids, seq.ids)
    np.testing.assert_array_equal(np.asarray(par.data), np.asarray(seq.data))


def test_unpicklable_view_gets_a_clear_error(tone_corpus, tmp_path):
    view = FakeParallel()
    view.hook = lambda x: x
    with pytest.raises(TypeError, match="cannot be sent to worker processes"):
        run(tone_corpus, view, tmp_path / "c", workers=2, chunk_size=3)
    assert len(run(tone_corpus, view, tmp_path / "c", workers=1)) == 10


def test_process_pool_raises_audio_error_of_worker(tone_corpus, tmp_path):
    manifest = _with_bad_files(tone_corpus, tmp_path)
    with pytest.raises(AudioError, match="gone.wav: file not found"):  # rebuilt after pickling
        run(manifest, FakeParallel(), tmp_path / "c", workers=2, chunk_size=3, view_factory=make_fake)


def test_manifest_problems_are_clear(tone_corpus, tmp_path):
    with pytest.raises(ValueError, match="duplicate utt_id"):
        run(pd.concat([tone_corpus, tone_corpus.iloc[:1]]), FakeFixed(), tmp_path / "c")
    with pytest.raises(ValueError, match="empty"):
        run(tone_corpus.iloc[:0], FakeFixed(), tmp_path / "c")
    with pytest.raises(ValueError, match="'path' column"):
        run(tone_corpus.drop(columns="path"), FakeFixed(), tmp_path / "c")


def test_progress_bar_counts_utterances(tone_corpus, tmp_path, capsys):
    extract_features(tone_corpus, FakeFixed(), cache_root=tmp_path / "c", chunk_size=4)
    err = capsys.readouterr().err
    assert "features fakefix" in err and "10/10" in err


def test_view_value_error_is_skipped_or_raised_naming_the_file(tone_corpus, tmp_path):
    with pytest.warns(UserWarning, match="skipped 1 of 10"):
        fs = run(tone_corpus, FakeRejects(), tmp_path / "c", batch_size=4, on_error="skip")
    assert len(fs) == 9 and fs.meta["skipped"][0] == {"utt_id": "u09", "path": tone_corpus.path[9],
                                                     "reason": "degenerate input"}
    want = direct(tone_corpus.iloc[:9], FakeFixed)
    np.testing.assert_allclose(fs.numpy_fixed(), np.stack([want[u] for u in fs.ids]), rtol=1e-3, atol=1e-5)
    with pytest.raises(FeatureError, match="u09.wav: degenerate input"):
        run(tone_corpus, FakeRejects(), tmp_path / "c2")
