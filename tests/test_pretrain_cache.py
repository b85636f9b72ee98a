"""Pre-trained encoders are cached on disk when the features come from the feature cache."""

import numpy as np
import torch

from sercore import train
from sercore.featureset import FeatureSet
from sercore.train import PretrainConfig, pretrain_pairwise


def _features(folder_tag: str | None):
    rng = np.random.default_rng(0)
    ids = [f"u{i}" for i in range(48)]
    y = np.repeat([0, 1, 2, 3], 12)
    a = rng.normal(size=(48, 10)) + y[:, None]
    b = rng.normal(size=(48, 6)) - y[:, None]
    meta = (lambda v: {"view": v, "encoder": "mlp", "folder": f"/cache/{v}/{folder_tag}"}) if folder_tag \
        else (lambda v: {"view": v, "encoder": "mlp"})
    return {"a": FeatureSet(ids, a.astype(np.float32), meta=meta("a")),
            "b": FeatureSet(ids, b.astype(np.float32), meta=meta("b"))}, ids


def _weights(result):
    return torch.cat([p.detach().flatten() for m in result.encoders.values() for p in m.parameters()])


def test_second_run_is_served_from_disk_and_any_change_misses(monkeypatch):
    features, ids = _features("k1")
    config = PretrainConfig(max_epochs=3, patience=3, batch_size=16)
    first = pretrain_pairwise(features, ids[:32], ids[32:], config=config)
    calls = []
    monkeypatch.setattr(train, "_pretrain_pairwise", lambda *a, **k: calls.append(1) or first)
    again = pretrain_pairwise(features, ids[:32], ids[32:], config=config)
    assert calls == [] and torch.equal(_weights(again), _weights(first))
    pretrain_pairwise(features, ids[:32], ids[32:], config=PretrainConfig(max_epochs=3, patience=3, batch_size=16,
                                                                           temperature=0.1))
    pretrain_pairwise(_features("k2")[0], ids[:32], ids[32:], config=config)
    pretrain_pairwise(features, ids[:31], ids[32:], config=config)
    assert len(calls) == 3


def test_in_memory_features_are_never_cached(monkeypatch):
    features, ids = _features(None)
    config = PretrainConfig(max_epochs=2, patience=2, batch_size=16)
    pretrain_pairwise(features, ids[:32], ids[32:], config=config)
    calls = []
    real = train._pretrain_pairwise
    monkeypatch.setattr(train, "_pretrain_pairwise", lambda *a, **k: calls.append(1) or real(*a, **k))
    pretrain_pairwise(features, ids[:32], ids[32:], config=config)
    assert calls == [1]
