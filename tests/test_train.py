import numpy as np
import pytest
import torch
from golden import golden
from sklearn.metrics import balanced_accuracy_score

from sercore.core.precision import resolve_precision
from sercore.features.featureset import FeatureSet
from sercore.models.losses import pairwise_nt_xent
from sercore.pairwise.pretrain import PretrainConfig, pretrain_pairwise
from sercore.training import (
    FinetuneConfig,
    batch_indices,
    default_encoder,
    embed,
    encode_labels,
    encoder_kind,
    finetune,
    supervised_baseline,
)


def make_data(per_class=12, groups=5, seed=0):
    """Two views sharing a class-dependent latent, each plus its own (view-specific) nuisance latent and noise:
    fixed ``[24]`` vectors and ``[T, 8]`` sequences. Contrastive pre-training can find the shared part; a random
    encoder mixes it with the nuisance."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.repeat(np.arange(4), per_class), groups)
    group = np.repeat(np.arange(groups), 4 * per_class)
    n = len(labels)
    ids = np.array([f"u{i:04d}" for i in range(n)])
    shared = 1.5 * rng.normal(size=(4, 4))[labels] + 0.5 * rng.normal(size=(n, 4))

    def view(dim):
        return shared @ rng.normal(size=(4, dim)) + rng.normal(size=(n, 8)) @ rng.normal(size=(8, dim))

    fixed = view(24) + rng.normal(size=(n, 24)) + 10.0
    lengths = rng.integers(5, 20, size=n)
    per_utt = view(8)
    frames = np.concatenate([per_utt[i] + rng.normal(size=(k, 8)) for i, k in enumerate(lengths)])
    features = {"fixed": FeatureSet(ids, fixed.astype(np.float32), meta={"view": "fixed", "encoder": "mlp"}),
                "seq": FeatureSet(ids, frames.astype(np.float16), lengths, meta={"view": "seq", "encoder": "mel"})}
    names = np.array(["ang", "hap", "neu", "sad"])[labels]
    split = {s: list(ids[np.isin(group, g)]) for s, g in (("train", [0, 1, 2]), ("val", [3]), ("test", [4]))}
    return features, split, dict(zip(ids, names))


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def pretrained(data):
    features, split, _ = data
    config = PretrainConfig(max_epochs=15, batch_size=32, patience=30)
    return pretrain_pairwise(features, split["train"], split["val"], config=config)


def _run(features, split, label, encoder, config, n_train=None):
    train = split["train"][:: (len(split["train"]) // n_train)] if n_train else split["train"]
    return finetune(encoder, features, train, [label[u] for u in train], split["val"], [label[u] for u in split["val"]],
                    config=config, test_ids=split["test"], test_labels=[label[u] for u in split["test"]])


def _val_loss(result, features, val_ids, temperature=0.5, batch_size=32):
    views = list(features)
    pos = {v: features[v].positions(val_ids) for v in views}
    total = 0.0
    with torch.no_grad():
        for idx in batch_indices(len(val_ids), batch_size, min_size=2):
            zs = [result.heads[v](result.encoders[v](*features[v].batch(pos[v][idx]))) for v in views]
            total += pairwise_nt_xent(zs, temperature).item() * len(idx)
    return total / len(val_ids)


def test_pretraining_lowers_validation_loss_and_restores_best_epoch(data, pretrained):
    features, split, _ = data
    hist = pretrained.history
    assert list(hist.columns) == ["epoch", "train_loss", "steps", "val_loss", "seconds"] and len(hist) == 15
    assert hist["epoch"].tolist() == list(range(15))  # 0-based, as in paper B's pre-training
    steps_per_epoch = -(-len(split["train"]) // 32)  # batches of 32, min_size=2
    assert hist["steps"].tolist() == [steps_per_epoch * e for e in range(1, 16)]
    assert pretrained.metrics["steps"] == 15 * steps_per_epoch and pretrained.metrics["epochs_run"] == 15
    assert pretrained.metrics["best_epoch"] == int(hist.loc[hist["val_loss"].idxmin(), "epoch"])
    # the default precision is auto: the run records what auto chose here, and why (fp32 on a CPU without fast bf16)
    used = (pretrained.metrics["precision"], pretrained.metrics["precision_note"])
    assert used == resolve_precision("auto", "cpu") and used[1].startswith(f"auto: {used[0]}, ")
    assert hist["val_loss"].min() < hist["val_loss"].iloc[0] - 0.05
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    assert set(pretrained.encoders) == {"fixed", "seq"}
    assert encoder_kind(features["fixed"]) == "mlp" and encoder_kind(features["seq"]) == "mel"
    assert _val_loss(pretrained, features, split["val"]) == pytest.approx(hist["val_loss"].min(), rel=1e-4)
    # the MLP encoder was z-normalised with the training ids
    train_x = features["fixed"].numpy_fixed(features["fixed"].positions(split["train"]))
    assert np.allclose(pretrained.encoders["fixed"].mean.numpy(), train_x.mean(0), atol=1e-3)


def test_early_stopping_triggers_after_patience(data):
    features, split, _ = data
    config = PretrainConfig(max_epochs=60, batch_size=16, patience=3, lr=0.05)
    result = pretrain_pairwise(features, split["train"][:60], split["val"][:40], config=config)
    hist = result.history
    best_epoch = int(hist.loc[hist["val_loss"].idxmin(), "epoch"])
    assert len(hist) < 60 and len(hist) == best_epoch + 1 + 3  # 0-based epochs: the best, then 3 without gain
    assert result.metrics["best_epoch"] == best_epoch and result.metrics["epochs_run"] == len(hist)
    assert _val_loss(result, features, split["val"][:40], batch_size=16) == pytest.approx(hist["val_loss"].min(),
                                                                                           rel=1e-4)


def test_pretraining_and_finetuning_repeat_exactly(data):
    features, split, label = data
    config = PretrainConfig(max_epochs=2, batch_size=32, max_frames=12)
    a = pretrain_pairwise(features, split["train"], split["val"], config=config)
    b = pretrain_pairwise(features, split["train"], split["val"], config=config)
    assert a.history[["train_loss", "val_loss"]].equals(b.history[["train_loss", "val_loss"]])
    other = pretrain_pairwise(features, split["train"], split["val"], config=PretrainConfig(max_epochs=2, seed=1))
    assert not np.isclose(other.history["train_loss"].iloc[0], a.history["train_loss"].iloc[0])
    ft = FinetuneConfig(max_epochs=3)
    m1 = _run(features["seq"], split, label, a.encoders["seq"], ft).metrics
    m2 = _run(features["seq"], split, label, b.encoders["seq"], ft).metrics
    assert m1 == m2


def test_frozen_finetuning_leaves_encoder_unchanged(data, pretrained):
    features, split, label = data
    encoder = pretrained.encoders["seq"]
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    frozen = _run(features["seq"], split, label, encoder, FinetuneConfig(max_epochs=3, frozen=True))
    for key, value in frozen.model.encoder.state_dict().items():  # weights and BatchNorm statistics
        assert torch.equal(value, before[key]), key
    tuned = _run(features["seq"], split, label, encoder, FinetuneConfig(max_epochs=3))
    assert not torch.equal(tuned.model.encoder.convs[0].weight, before["convs.0.weight"])
    for key, value in encoder.state_dict().items():  # the caller's encoder is never modified
        assert torch.equal(value, before[key]), key


def test_pretrained_probe_beats_random_probe_and_supervised_learns(data, pretrained):
    features, split, label = data
    probe = FinetuneConfig(max_epochs=40, frozen=True, lr=1e-2)
    for view in ("fixed", "seq"):
        trained = _run(features[view], split, label, pretrained.encoders[view], probe, n_train=20).metrics
        random = _run(features[view], split, label, default_encoder(features[view], seed=0), probe, n_train=20).metrics
        assert trained["test_uar"] > random["test_uar"] + 0.05, (view, trained, random)
    sup = supervised_baseline(features["fixed"], split["train"], [label[u] for u in split["train"]], split["val"],
                              [label[u] for u in split["val"]], config=FinetuneConfig(max_epochs=15),
                              test_ids=split["test"], test_labels=[label[u] for u in split["test"]])
    assert sup.metrics["test_uar"] > 0.6  # chance is 0.25
    assert sup.metrics["val_uar"] == pytest.approx(sup.history["val_uar"].max())  # chosen on validation UAR


def test_returned_model_is_the_best_epoch_and_reproduces_its_validation_uar(data):
    features, split, label = data
    result = _run(features["fixed"], split, label, default_encoder(features["fixed"], seed=0),
                  FinetuneConfig(max_epochs=15), n_train=20)
    assert result.metrics["best_epoch"] < len(result.history)  # a later epoch was worse: the restore matters
    with torch.no_grad():
        logits = result.model.eval()(*features["fixed"].batch(features["fixed"].positions(split["val"])))
    predicted = np.asarray(result.classes)[logits.argmax(1).numpy()]
    uar = balanced_accuracy_score([label[u] for u in split["val"]], predicted)
    assert result.metrics["val_uar"] == pytest.approx(uar) == result.history["val_uar"].max()


def test_learning_rate_decays_on_validation_plateaus(data, pretrained):
    features, split, label = data
    config = FinetuneConfig(max_epochs=12, frozen=True, lr=1e-9, decay_patience=2, patience=None)
    hist = _run(features["fixed"], split, label, pretrained.encoders["fixed"], config).history
    # lr=1e-9: predictions (and UAR) never change, so epochs 2, 3, 4 bring no gain and the LR drops every 3 epochs
    steps = np.round(np.log(hist["lr"] / 1e-9) / np.log(0.9)).astype(int).tolist()
    assert steps == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3]


def test_finetune_early_stops_and_normalises_fresh_mlp(data):
    features, split, label = data
    result = _run(features["fixed"], split, label, default_encoder(features["fixed"], seed=0),
                  FinetuneConfig(max_epochs=50, patience=2, lr=1e-9))
    assert len(result.history) == 3
    assert result.metrics["epochs_run"] == 3 and result.metrics["best_epoch"] == 0  # 0-based: the first epoch
    batches = -(-len(split["train"]) // 64)
    assert result.history["steps"].tolist() == [batches, 2 * batches, 3 * batches] == [3, 6, 9]
    assert result.metrics["steps"] == 9 and result.metrics["precision"] == "fp32"
    train_x = features["fixed"].numpy_fixed(features["fixed"].positions(split["train"]))
    assert np.allclose(result.model.encoder.std.numpy(), train_x.std(0), rtol=1e-3)


def test_embed_keeps_id_order(data, pretrained):
    features, split, _ = data
    ids = split["test"][:30]
    enc = pretrained.encoders["seq"]
    out = embed(enc, features["seq"], ids, batch_size=7)
    assert out.shape == (30, 128) and out.dtype == np.float32
    assert np.allclose(embed(enc, features["seq"], ids[::-1], batch_size=4), out[::-1], atol=1e-5)
    with torch.no_grad():
        single = enc(*features["seq"].batch(features["seq"].positions(ids[3:4]))).numpy()
    assert np.allclose(single[0], out[3], atol=1e-5)


def test_labels_batches_and_input_errors(data):
    features, split, label = data
    classes, (a, b, c) = encode_labels(["sad", "ang", "sad"], ["ang"], None)
    assert classes == ["ang", "sad"] and a.tolist() == [1, 0, 1] and b.tolist() == [0] and c is None
    with pytest.raises(ValueError, match="val labels \\['hap'\\]"):
        encode_labels(["sad"], ["hap"])
    assert [len(b) for b in batch_indices(9, 4, min_size=2)] == [4, 5]
    assert [len(b) for b in batch_indices(10, 4, min_size=2)] == [4, 4, 2]
    lengths = np.random.default_rng(0).integers(1, 1000, size=100)
    bucketed = batch_indices(100, 10, generator=torch.Generator().manual_seed(0), lengths=lengths, bucket_batches=5)
    assert sorted(np.concatenate(bucketed).tolist()) == list(range(100))
    spread = np.mean([np.ptp(lengths[b]) for b in bucketed])
    assert spread < 0.4 * np.mean([np.ptp(lengths[b]) for b in batch_indices(100, 10, generator=torch.Generator())])
    again = batch_indices(100, 10, generator=torch.Generator().manual_seed(1), lengths=lengths, bucket_batches=5)
    assert {tuple(sorted(b)) for b in again} != {tuple(sorted(b)) for b in bucketed}
    with pytest.raises(ValueError, match="at least 2 views"):
        pretrain_pairwise({"fixed": features["fixed"]}, split["train"], split["val"])
    with pytest.raises(KeyError, match="no features in view fixed"):
        pretrain_pairwise(features, split["train"] + ["nope"], split["val"])
    with pytest.raises(ValueError, match="2 ids but 1 labels"):
        finetune(default_encoder(features["fixed"]), features["fixed"], split["train"][:2], ["sad"], split["val"],
                 [label[u] for u in split["val"]])


class Probe(torch.nn.Module):
    """An MLP encoder that records, at each forward, its mode, inference mode and autocast state."""

    def __init__(self, in_dim):
        super().__init__()
        one = FeatureSet(["a"], np.zeros((1, in_dim), np.float32), meta={"encoder": "mlp"})
        self.inner = default_encoder(one, seed=0)
        self.out_dim, self.calls = self.inner.out_dim, []

    def set_normalization(self, mean, std):
        self.inner.set_normalization(mean, std)

    def forward(self, x, lengths=None):
        self.calls.append((self.training, torch.is_inference_mode_enabled(), torch.is_autocast_enabled("cpu")))
        return self.inner(x, lengths)


def test_bf16_runs_record_precision_steps_and_validate_in_inference_mode(data, monkeypatch):
    features, split, label = data
    monkeypatch.setenv("SERCORE_BF16_EMULATED", "1")  # bf16 autocast on any CPU (emulated where not native)
    probe = Probe(24)
    config = PretrainConfig(max_epochs=2, batch_size=32, precision="bf16")
    result = pretrain_pairwise(features, split["train"], split["val"], config=config, encoders={"fixed": probe})
    assert result.metrics["precision"] == "bf16" and result.metrics["epochs_run"] == 2
    assert result.metrics["steps"] == result.history["steps"].iloc[-1] == 2 * -(-len(split["train"]) // 32)
    calls = result.encoders["fixed"].calls  # the probe's copy that was trained
    assert {c for c in calls if c[0]} == {(True, False, True)}  # training: autograd on, bf16 autocast
    assert {c for c in calls if not c[0]} == {(False, True, True)}  # validation: inference mode
    assert np.isfinite(result.history[["train_loss", "val_loss"]].to_numpy()).all()
    ft = _run(features["fixed"], split, label, result.encoders["fixed"], FinetuneConfig(max_epochs=2, precision="bf16"))
    assert ft.metrics["precision"] == "bf16" and ft.metrics["epochs_run"] == 2
    assert ft.metrics["steps"] == ft.history["steps"].iloc[-1] == 2 * -(-len(split["train"]) // 64)
    calls = ft.model.encoder.calls[len(calls):]
    assert {c for c in calls if c[0]} == {(True, False, True)}
    assert {c for c in calls if not c[0]} == {(False, True, True)}
    assert ft.metrics["test_uar"] == golden(0.7708333333333334)  # the seeded value (emulated bf16)


def test_precision_falls_back_to_fp32_with_a_note(data, monkeypatch):
    import sercore.core.precision as precision

    features, split, label = data
    monkeypatch.setattr(precision, "bf16_support", lambda device_type: (False, "no bf16 here"))
    monkeypatch.delenv("SERCORE_BF16_EMULATED", raising=False)
    sup = supervised_baseline(features["fixed"], split["train"], [label[u] for u in split["train"]], split["val"],
                              [label[u] for u in split["val"]], config=FinetuneConfig(max_epochs=1, precision="bf16"))
    assert sup.metrics["precision"] == "fp32"
    assert sup.metrics["precision_note"] == "bf16 requested, ran in fp32: no bf16 here"
    monkeypatch.setattr(precision, "bf16_support", lambda device_type: (True, "native"))
    assert precision.resolve_precision("bf16", "cpu") == ("bf16", "native")
    assert precision.resolve_precision("fp32", "cpu") == ("fp32", "")
    with pytest.raises(ValueError, match="PretrainConfig.precision must be one of auto, fp32, bf16, got 'fp16'"):
        PretrainConfig(precision="fp16")
    with pytest.raises(ValueError, match="FinetuneConfig.precision must be one of auto, fp32, bf16"):
        FinetuneConfig(precision="half")
