"""The feature store's promise: an utterance's features are extracted once per view, whatever manifest asks for
them (a subset, a union, a corpus with a file changed or added, the same audio under two ids)."""

import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from fake_views import SR, FakeFixed, FakeSeq, direct, fill, run, write_corpus

from sercore.features.cache import cache_info, cache_path
from sercore.features.featureset import FeatureSet, Frames


@pytest.fixture
def two_corpora(tmp_path):
    a = write_corpus(tmp_path / "a", n=6)
    b = write_corpus(tmp_path / "b", n=10).iloc[6:]  # other tones than a's (0.5 .. 1.0 s)
    b = b.assign(utt_id=["b_" + u for u in b.utt_id])
    return a, b


@pytest.mark.parametrize("view_cls", [FakeFixed, FakeSeq])
def test_subset_and_union_extract_nothing_again(two_corpora, tmp_path, view_cls):
    a, b = two_corpora
    for corpus in (a, b):
        view = view_cls()
        run(corpus, view, tmp_path / "c")
        assert view.calls == len(corpus)
    union = pd.concat([a, b], ignore_index=True)
    for manifest in (union, a.iloc[1:4], union.iloc[::2]):
        view = view_cls()
        fs = run(manifest, view, tmp_path / "c")
        assert view.calls == 0 and list(fs.ids) == sorted(manifest.utt_id)
        want = direct(manifest, view_cls)
        for i, u in enumerate(fs.ids):
            got = fs.batch([i])[0][0].numpy()
            np.testing.assert_allclose(got[:len(want[u])], want[u], rtol=2e-3, atol=1e-4)
    info = cache_info(union, view_cls(), cache_root=tmp_path / "c")
    assert (info["stored"], info["missing"], info["complete"]) == (10, 0, True)
    assert len(list((cache_path(union, view_cls(), cache_root=tmp_path / "c") / "shards").glob("*.npy"))) == 2


def test_a_changed_file_and_an_added_file_extract_one_each(two_corpora, tmp_path):
    a, _ = two_corpora
    run(a, FakeFixed(), tmp_path / "c")
    sf.write(a.path[2], np.full(int(0.7 * SR), 0.1, np.float32), SR, subtype="FLOAT")  # other audio, other size
    view = FakeFixed()
    fs = run(a, view, tmp_path / "c")
    assert view.calls == 1 and fs.numpy_fixed(fs.positions(["u02"]))[0, 3] == pytest.approx(0.7, abs=1e-3)
    extra = tmp_path / "a" / "new.wav"
    sf.write(extra, 0.2 * np.sin(np.arange(SR) / 7.0).astype(np.float32), SR, subtype="FLOAT")
    added = pd.concat([a, pd.DataFrame([{"utt_id": "new", "path": str(extra), "speaker": "s9"}])], ignore_index=True)
    view = FakeFixed()
    fs = run(added, view, tmp_path / "c")
    assert view.calls == 1 and len(fs) == 7


def test_identical_audio_under_two_ids_is_extracted_once(two_corpora, tmp_path):
    a, _ = two_corpora
    copy = tmp_path / "copy_of_u01.wav"
    shutil.copy(a.path[1], copy)
    manifest = pd.concat([a, pd.DataFrame([{"utt_id": "z_copy", "path": str(copy), "speaker": "s1"}])],
                         ignore_index=True)
    view = FakeSeq()
    fs = run(manifest, view, tmp_path / "c")
    assert view.calls == 6 and len(fs) == 7
    x, lengths = fs.batch(fs.positions(["u01", "z_copy"]))
    assert lengths[0] == lengths[1] and np.array_equal(x[0].numpy(), x[1].numpy())


def test_frames_over_several_shards_read_like_one_array():
    rng = np.random.default_rng(0)
    lengths = np.array([3, 1, 5, 2])
    frames = [rng.normal(size=(n, 2)).astype(np.float16) for n in lengths]
    parts = [np.concatenate([frames[2], frames[0]]), np.concatenate([frames[3], frames[1]])]
    data = Frames(parts, part=[0, 1, 0, 1], start=[5, 2, 0, 0], lengths=lengths)
    stored = FeatureSet(["a", "b", "c", "d"], data, lengths)
    plain = FeatureSet(["a", "b", "c", "d"], np.concatenate(frames), lengths)
    for positions, max_len in (([0, 1, 2, 3], None), ([2, 0], 4), ([1], None)):
        for got, want in zip(stored.batch(positions, max_len), plain.batch(positions, max_len)):
            assert torch.equal(got, want)
    assert np.array_equal(np.asarray(stored.data), np.asarray(plain.data)) and stored.data.shape == (11, 2)
    assert np.array_equal(stored.subset(["d", "a"]).data, plain.subset(["d", "a"]).data)


def test_a_set_from_the_store_reopens_to_the_same_features(two_corpora, tmp_path):
    a, b = two_corpora
    run(a, FakeSeq(), tmp_path / "c")
    fs = run(pd.concat([a, b]), FakeSeq(), tmp_path / "c")
    again = fs.engine_ref().reopen()
    assert list(again.ids) == list(fs.ids) and again.meta["content"] == fs.meta["content"]
    assert torch.equal(again.batch(range(len(fs)))[0], fs.batch(range(len(fs)))[0])
    other = run(a, FakeSeq(), tmp_path / "c")
    assert other.meta["content"] != fs.meta["content"]  # another set of utterances: another identity


def _cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "sercore.cache", *args], capture_output=True, text=True, timeout=120)


def test_cache_info_and_prune_from_the_command_line(two_corpora, tmp_path):
    a, b = two_corpora
    root = tmp_path / "c"
    run(a, FakeFixed(), root)
    run(b, FakeFixed(), root)
    run(a, FakeSeq(), root)
    legacy = root / "fakefix" / "0123456789abcdef01234567"
    legacy.mkdir()
    (legacy / "meta.json").write_text('{"n": 3}')
    out = _cli("--root", str(root), "info")
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0] + " " + line.split()[3]: line.split() for line in out.stdout.splitlines()
             if line.startswith("fake")}
    assert lines["fakefix store"][4:7] == ["10", "0", "2"] and lines["fakeseq store"][4:7] == ["6", "0", "1"]
    assert "fakefix legacy" in lines and "total" in out.stdout.splitlines()[-1]
    seq_folder = cache_path(a, FakeSeq(), cache_root=root)
    out = _cli("--root", str(root), "prune", "--view", "fakeseq", "--legacy", "--dry-run")
    assert "would remove 2 item(s)" in out.stdout and seq_folder.exists() and legacy.exists()
    out = _cli("--root", str(root), "prune", "--view", "fakeseq", "--legacy")
    assert out.returncode == 0 and not seq_folder.exists() and not legacy.exists()
    view = FakeSeq()
    run(a, view, root)
    assert view.calls == 6  # pruned: extracted again
    assert _cli("--root", str(root), "prune").returncode == 2  # nothing named: usage error


def test_prune_unused_shards(two_corpora, tmp_path):
    from datetime import date, timedelta

    from sercore.features.maintenance import prune
    from sercore.features.store import FeatureStore

    a, b = two_corpora
    (shard_a,) = run(a, FakeFixed(), tmp_path / "c").meta["shards"]
    (shard_b,) = run(b, FakeFixed(), tmp_path / "c").meta["shards"]
    store = FeatureStore(cache_path(a, FakeFixed(), cache_root=tmp_path / "c"))
    with store._db(write=True) as conn:
        conn.execute("UPDATE shards SET used = '2020-01-01' WHERE name = ?", (shard_a,))
    removed = prune(tmp_path / "c", unused_since=date.today() - timedelta(days=1))
    assert len(removed) == 1 and list(store.shard_records()) == [shard_b]
    view = FakeFixed()
    run(pd.concat([a, b]), view, tmp_path / "c")
    assert view.calls == 6  # the pruned shard's utterances (corpus a) only


def test_two_processes_with_overlapping_manifests_share_one_store(two_corpora, tmp_path):
    import multiprocessing as mp

    a, b = two_corpora
    manifests = [pd.concat([a, b.iloc[:2]]), pd.concat([a.iloc[3:], b])]  # 8 and 7 utterances, 5 in common
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=fill, args=(m, tmp_path / "c", barrier, tmp_path / f"out{i}.npy"))
             for i, m in enumerate(manifests)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    calls = sum(int((tmp_path / f"out{i}.npy.calls").read_text()) for i in range(2))
    assert calls == 10  # every distinct utterance once, by one process or the other
    for i, manifest in enumerate(manifests):
        want = direct(manifest, FakeFixed)
        got = np.load(tmp_path / f"out{i}.npy")
        np.testing.assert_allclose(got, np.stack([want[u] for u in sorted(want)]), rtol=2e-3, atol=1e-4)
