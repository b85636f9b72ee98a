"""Feature store that cannot go stale and checks itself: content keys, package versions, corrupt shards moved
aside and extracted again, a planted pickle left inert, concurrent processes filling one store, the digest memo."""

import json
import multiprocessing as mp
import os

import numpy as np
import pytest
import soundfile as sf
from fake_views import FakeFixed, FakeSeq, direct, fill, run

from sercore.core import digests
from sercore.features import cache
from sercore.features.cache import CacheCorrupt, cache_path, store_for


@pytest.fixture
def memo_now(monkeypatch):
    """Remember digests of files written a moment ago (the tests write and read within one second)."""
    monkeypatch.setattr(digests, "RACY_SECONDS", 0.0)


def _rewrite_same_size(path, keep_mtime: bool):
    """Different audio, same number of samples (so the same file size); optionally the old mtime restored."""
    st = os.stat(path)
    wave, sr = sf.read(path, dtype="float32")
    sf.write(path, (0.5 * wave[::-1]).astype(np.float32), sr, subtype="FLOAT")
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.path.getsize(path) == st.st_size


@pytest.mark.parametrize("keep_mtime", [False, True])
def test_same_size_audio_edit_is_a_miss_with_new_features(tone_corpus, tmp_path, memo_now, keep_mtime):
    run(tone_corpus, FakeFixed(), tmp_path / "c")
    run(tone_corpus, FakeFixed(), tmp_path / "c")  # the digests are remembered now
    _rewrite_same_size(tone_corpus.path[2], keep_mtime)
    view = FakeFixed()
    fs = run(tone_corpus, view, tmp_path / "c")
    assert view.calls == 1  # the changed file only
    want = direct(tone_corpus, FakeFixed)["u02"]
    np.testing.assert_allclose(fs.numpy_fixed(fs.positions(["u02"]))[0], want, rtol=2e-3, atol=1e-4)


def test_rerun_hashes_neither_audio_nor_data_again(tone_corpus, tmp_path, memo_now, monkeypatch):
    run(tone_corpus, FakeFixed(), tmp_path / "c")
    run(tone_corpus, FakeFixed(), tmp_path / "c")  # verifies data.npy once and remembers it
    hashed = []
    real = digests.file_digest
    monkeypatch.setattr(digests, "file_digest", lambda p: hashed.append(os.path.basename(p)) or real(p))
    view = FakeFixed()
    run(tone_corpus, view, tmp_path / "c")
    assert view.calls == 0 and hashed == []
    assert (tmp_path / "c" / cache.DIGESTS).is_file()


class FakeVersioned(FakeFixed):
    name, packages, encoder = "fakever", ("numpy",), "mlp"


def test_package_version_is_part_of_the_key(tone_corpus, tmp_path, monkeypatch):
    fs = run(tone_corpus, FakeVersioned(), tmp_path / "c")
    assert fs.meta["packages"]["numpy"] == np.__version__ and fs.meta["encoder"] == "mlp"
    before = cache_path(tone_corpus, FakeVersioned(), cache_root=tmp_path / "c")
    real = cache.metadata.version
    monkeypatch.setattr(cache.metadata, "version", lambda name: "0.0-other" if name == "numpy" else real(name))
    view = FakeVersioned()
    run(tone_corpus, view, tmp_path / "c")
    assert view.calls == 10 and cache_path(tone_corpus, view, cache_root=tmp_path / "c") != before


def _shard(folder):
    (path,) = (folder / "shards").glob("*.npy")
    return path


def _truncate(folder):
    path = _shard(folder)
    path.write_bytes(path.read_bytes()[:-7])
    return path.name


def _overwrite(folder):
    path = _shard(folder)
    st = os.stat(path)
    with open(path, "r+b") as f:  # same size, header intact: only the numbers change
        f.seek(-8, os.SEEK_END)
        f.write(b"\xff\x7b" * 4)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return path.name


def _delete(folder):
    path = _shard(folder)
    path.unlink()
    return path.name


def _pickle_in_place(folder):
    """A pickle planted where the shard was: it must fail the check, never be unpickled."""
    path = _shard(folder)
    np.save(path, np.array([Bomb()], dtype=object), allow_pickle=True)
    return path.name


class Bomb:
    def __reduce__(self):
        return (os.mkdir, (BOMB_DIR[0],))


BOMB_DIR = [""]

DAMAGE = {"truncated": (_truncate, FakeFixed), "overwritten": (_overwrite, FakeFixed),
          "deleted": (_delete, FakeSeq), "overwritten_seq": (_overwrite, FakeSeq),
          "pickle": (_pickle_in_place, FakeFixed)}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_shard_is_moved_aside_and_extracted_again(tone_corpus, tmp_path, memo_now, case):
    BOMB_DIR[0] = str(tmp_path / "exploded")
    damage, view_cls = DAMAGE[case]
    ref = run(tone_corpus, view_cls(), tmp_path / "c")
    run(tone_corpus, view_cls(), tmp_path / "c")  # shard verified and remembered: the memo must not hide damage
    folder = cache_path(tone_corpus, view_cls(), cache_root=tmp_path / "c")
    ref_data = np.asarray(ref.data).copy()
    name = damage(folder)
    with pytest.raises(CacheCorrupt, match=name):
        store_for(view_cls(), cache_root=tmp_path / "c").assemble([(u, p, d) for u, p, d in _rows(tone_corpus,
                                                                                                  tmp_path / "c")])
    view = view_cls()
    with pytest.warns(UserWarning, match=rf"{name}.*moved the shard to .*\.corrupt-"):
        fs = run(tone_corpus, view, tmp_path / "c")
    assert view.calls == 10
    np.testing.assert_array_equal(fs.ids, ref.ids)
    np.testing.assert_array_equal(np.asarray(fs.data), ref_data)
    assert len(list((folder / "shards").glob("*.corrupt-*"))) == (0 if case == "deleted" else 1)
    view = view_cls()
    run(tone_corpus, view, tmp_path / "c")  # sound again: a plain hit
    assert view.calls == 0
    assert not os.path.exists(BOMB_DIR[0])  # nothing was unpickled


def _rows(manifest, root):
    from sercore.features.cache import _rows as rows

    return rows(manifest, root)


def test_a_damaged_index_moves_the_folder_aside(tone_corpus, tmp_path):
    ref = run(tone_corpus, FakeFixed(), tmp_path / "c")
    folder = cache_path(tone_corpus, FakeFixed(), cache_root=tmp_path / "c")
    (folder / "index.sqlite").write_bytes(b"not a database" * 100)
    view = FakeFixed()
    with pytest.warns(UserWarning, match="index.sqlite: unreadable"):
        fs = run(tone_corpus, view, tmp_path / "c")
    assert view.calls == 10 and len(list(folder.parent.glob(f"{folder.name}.corrupt-*"))) == 1
    np.testing.assert_array_equal(np.asarray(fs.data), np.asarray(ref.data))


def test_a_pickle_planted_as_a_pending_chunk_is_inert(tone_corpus, tmp_path):
    BOMB_DIR[0] = str(tmp_path / "exploded")
    folder = cache_path(tone_corpus, FakeFixed(), cache_root=tmp_path / "c")
    (folder / "pending").mkdir(parents=True)
    with open(folder / "pending" / "chunk-planted.npz", "wb") as f:
        np.savez(f, keys=np.array([Bomb()], dtype=object), lengths=np.array([1]), data=np.zeros((1, 4)),
                 skipped=np.array("{}"), provenance=np.array("null"), all_keys=np.array(["x"]))
    view = FakeFixed()
    fs = run(tone_corpus, view, tmp_path / "c")
    assert view.calls == 10 and len(fs) == 10 and not os.path.exists(BOMB_DIR[0])
    assert not (folder / "pending" / "chunk-planted.npz").exists()  # an unreadable leftover is dropped


def test_an_old_layout_entry_is_ignored(tone_corpus, tmp_path):
    old = tmp_path / "c" / "fakefix" / "0123456789abcdef01234567"  # the manifest-keyed layout of sercore 0.2
    old.mkdir(parents=True)
    (old / "meta.json").write_text(json.dumps({"view": "fakefix"}))
    np.save(old / "data.npy", np.zeros((10, 4), np.float16))
    view = FakeFixed()
    fs = run(tone_corpus, view, tmp_path / "c")
    assert view.calls == 10 and np.asarray(fs.data).any()


def test_two_processes_filling_one_entry_wait_for_each_other(tone_corpus, tmp_path):
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")  # two processes either way
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=fill, args=(tone_corpus, tmp_path / "c", barrier, tmp_path / f"out{i}.npy"))
             for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    calls = sorted(int((tmp_path / f"out{i}.npy.calls").read_text()) for i in range(2))
    assert calls == [0, 10]  # one extracted, the other waited and found everything stored
    ref = direct(tone_corpus, FakeFixed)
    got = [np.load(tmp_path / f"out{i}.npy") for i in range(2)]
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_allclose(got[0], np.stack([ref[u] for u in sorted(ref)]), rtol=2e-3, atol=1e-4)
    assert not list((tmp_path / "c").rglob("*.tmp-*"))


def test_digest_memo_that_cannot_be_used_only_warns(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"abc")
    memo = digests.DigestMemo(tmp_path)  # a folder: SQLite cannot open it
    with pytest.warns(UserWarning, match="cannot be used"):
        got = memo.digests([tmp_path / "f.bin", tmp_path / "missing.bin"])
    assert got == {str(tmp_path / "f.bin"): digests.bytes_digest(b"abc"), str(tmp_path / "missing.bin"): None}
