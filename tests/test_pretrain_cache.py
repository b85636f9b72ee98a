"""Pre-trained encoders are cached on disk when the features come from the feature cache: keyed by the code too,
stored as safetensors (nothing unpickled), checked and retrained when damaged."""

import pickle
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sercore.core.config import cache_dir
from sercore.features.featureset import FeatureSet
from sercore.models import encoders
from sercore.pairwise import pretrain as pairwise_pretrain
from sercore.pairwise.pretrain import PretrainConfig, pretrain_pairwise_cached


def _features(folder_tag: str | None):
    rng = np.random.default_rng(0)
    ids = [f"u{i}" for i in range(48)]
    y = np.repeat([0, 1, 2, 3], 12)
    a = rng.normal(size=(48, 10)) + y[:, None]
    b = rng.normal(size=(48, 6)) - y[:, None]
    meta = (lambda v: {"view": v, "encoder": "mlp", "folder": f"/cache/{v}", "content": folder_tag}) if folder_tag \
        else (lambda v: {"view": v, "encoder": "mlp"})
    return {"a": FeatureSet(ids, a.astype(np.float32), meta=meta("a")),
            "b": FeatureSet(ids, b.astype(np.float32), meta=meta("b"))}, ids


def _weights(result):
    return torch.cat([p.detach().flatten() for m in result.encoders.values() for p in m.parameters()])


def test_second_run_is_served_from_disk_and_any_change_misses(monkeypatch):
    features, ids = _features("k1")
    config = PretrainConfig(max_epochs=3, patience=3, batch_size=16)
    first = pretrain_pairwise_cached(features, ids[:32], ids[32:], config=config)
    calls = []
    monkeypatch.setattr(pairwise_pretrain, "pretrain_pairwise", lambda *a, **k: calls.append(1) or first)
    again = pretrain_pairwise_cached(features, ids[:32], ids[32:], config=config)
    assert calls == [] and torch.equal(_weights(again), _weights(first))
    pretrain_pairwise_cached(features, ids[:32], ids[32:], config=PretrainConfig(max_epochs=3, patience=3,
    batch_size=16,
                                                                           temperature=0.1))
    pretrain_pairwise_cached(_features("k2")[0], ids[:32], ids[32:], config=config)
    pretrain_pairwise_cached(features, ids[:31], ids[32:], config=config)
    assert len(calls) == 3


def test_in_memory_features_are_never_cached(monkeypatch):
    features, ids = _features(None)
    config = PretrainConfig(max_epochs=2, patience=2, batch_size=16)
    pretrain_pairwise_cached(features, ids[:32], ids[32:], config=config)
    calls = []
    real = pairwise_pretrain.pretrain_pairwise
    monkeypatch.setattr(pairwise_pretrain, "pretrain_pairwise", lambda *a, **k: calls.append(1) or real(*a, **k))
    pretrain_pairwise_cached(features, ids[:32], ids[32:], config=config)
    assert calls == [1]


CONFIG = PretrainConfig(max_epochs=2, patience=2, batch_size=16)


def _counting(monkeypatch):
    calls = []
    real = pairwise_pretrain.pretrain_pairwise
    monkeypatch.setattr(pairwise_pretrain, "pretrain_pairwise", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_a_change_to_the_encoder_code_is_a_miss(monkeypatch, tmp_path):
    features, ids = _features("code")
    pretrain_pairwise_cached(features, ids[:32], ids[32:], config=CONFIG)
    calls = _counting(monkeypatch)
    pretrain_pairwise_cached(features, ids[:32], ids[32:], config=CONFIG)
    assert calls == []
    lines = Path(encoders.__file__).read_text().splitlines()
    lines[-1] += "  # one changed line"
    edited = tmp_path / "encoders.py"
    edited.write_text("\n".join(lines) + "\n")
    files = [edited if p == Path(encoders.__file__) else p for p in pairwise_pretrain.code_files()]
    assert edited in files
    monkeypatch.setattr(pairwise_pretrain, "code_files", lambda: files)
    pretrain_pairwise_cached(features, ids[:32], ids[32:], config=CONFIG)
    assert calls == [1]


class _Payload:
    """Unpickling this creates a marker file: stands for any code a planted pickle could run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_pickle_runs_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("SERCORE_CACHE", str(tmp_path / "cache"))
    features, ids = _features("pickle")
    first = pretrain_pairwise_cached(features, ids[:32], ids[32:], config=CONFIG)
    marker, folder = tmp_path / "code-ran", cache_dir() / "pretrained"
    payload = pickle.dumps(_Payload(marker))
    for path in [*folder.iterdir(), folder / "planted.pt"]:
        if not path.name.endswith(".lock"):
            path.write_bytes(payload)
    with pytest.warns(UserWarning, match="pre-training cache: .*moved the entry aside"):
        again = pretrain_pairwise_cached(features, ids[:32], ids[32:], config=CONFIG)
    assert not marker.exists()
    assert _weights(again).shape == _weights(first).shape and set(again.heads) == {"a", "b"}


def test_a_tampered_tensor_file_is_moved_aside_and_retrained(monkeypatch, tmp_path):
    monkeypatch.setenv("SERCORE_CACHE", str(tmp_path / "cache"))
    features, ids = _features("tamper")
    first = pretrain_pairwise_cached(features, ids[:32], ids[32:], config=CONFIG)
    (blob,) = (cache_dir() / "pretrained").glob("*.safetensors")
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x01  # same size, one weight changed
    blob.write_bytes(bytes(data))
    calls = _counting(monkeypatch)
    with pytest.warns(UserWarning, match=rf"{blob}: size or checksum differs"):
        again = pretrain_pairwise_cached(features, ids[:32], ids[32:], config=CONFIG)
    assert calls == [1] and len(list(blob.parent.glob("*.corrupt-*.safetensors"))) == 1
    assert torch.equal(_weights(again), _weights(first))  # retrained the same way
    third = pretrain_pairwise_cached(features, ids[:32], ids[32:], config=CONFIG)
    assert calls == [1] and torch.equal(_weights(third), _weights(first))
    assert all(not m.training for m in [*third.encoders.values(), *third.heads.values()])
    pd.testing.assert_frame_equal(third.history, again.history)


def test_concurrent_runs_of_one_key_train_once(monkeypatch, tmp_path):
    monkeypatch.setenv("SERCORE_CACHE", str(tmp_path / "cache"))
    features, ids = _features("threads")
    calls = _counting(monkeypatch)
    barrier, results = threading.Barrier(2), []

    def one():
        barrier.wait()
        results.append(pretrain_pairwise_cached(features, ids[:32], ids[32:], config=CONFIG))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert calls == [1] and len(results) == 2
    assert torch.equal(_weights(results[0]), _weights(results[1]))
