"""Atomic writes (sercore.core.atomic) and the synthetic corpus folder that names its generator version."""

import json

import numpy as np
import pytest

from sercore.core.atomic import atomic_save_npy, atomic_write_bytes, atomic_write_json, atomic_write_text
from sercore.data import synth


def test_writes_replace_the_target_and_leave_no_temporary_file(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "a.txt", "héllo")
    atomic_write_json(tmp_path / "a.json", {"x": [1, 2], "p": tmp_path})
    atomic_save_npy(tmp_path / "a.npy", np.arange(3))
    atomic_save_npy(tmp_path / "a.npy", np.arange(4))  # replaces the older file
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01" and (tmp_path / "a.txt").read_text() == "héllo"
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": [1, 2], "p": str(tmp_path)}
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.arange(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.json", "a.npy", "a.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    atomic_write_text(tmp_path / "a.json", "old")
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "a.json", {1j: 1})  # a complex key: not JSON
    with pytest.raises(ValueError, match="allow_pickle=False"):
        atomic_save_npy(tmp_path / "a.npy", np.array([{"a": 1}], dtype=object))
    assert (tmp_path / "a.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_corpus_folder_names_the_generator_version(tmp_path, monkeypatch):
    before = synth.corpus_path(tmp_path, size="tiny", seed=0)
    assert before.name == f"synthetic-tiny-seed0-v{synth.GENERATOR_VERSION}"
    monkeypatch.setattr(synth, "GENERATOR_VERSION", synth.GENERATOR_VERSION + "-next")
    assert synth.corpus_path(tmp_path, size="tiny", seed=0) != before
