import numpy as np
import pytest
import torch
from torch import nn

from sercore.features.featureset import FeatureSet
from sercore.models import available_encoders, build_encoder, register_encoder
from sercore.models.encoders import (
    EncoderClassifier,
    MelEncoder,
    MelEncoderConfig,
    MLPEncoder,
    ProjectionHead,
    Wav2Vec2Encoder,
    count_parameters,
    encoder_config,
)
from sercore.pairwise import parameter_counts


def _padded(items, width, fill=0.0):
    """Stack variable-length items ``[T_i, ...]`` into ``[B, width, ...]`` filled with ``fill``."""
    out = torch.full((len(items), width, *items[0].shape[1:]), fill)
    for i, item in enumerate(items):
        out[i, :len(item)] = item
    return out, torch.tensor([len(item) for item in items])


@pytest.mark.parametrize("kind, shape, x", [
    ("wav2vec2", (3, 10), torch.randn(4, 7, 3, 10)),
    ("mel", (16,), torch.randn(4, 9, 16)),
    ("mlp", (12,), torch.randn(4, 12)),
])
def test_build_gives_128_d_outputs(kind, shape, x):
    torch.manual_seed(0)
    enc = build_encoder(kind, shape)
    assert enc(x).shape == (4, 128)
    assert build_encoder(kind, shape, out_dim=32)(x).shape == (4, 32)
    assert encoder_config(enc)["out_dim"] == 128


def test_build_rejects_unknown_kind_and_bad_shapes():
    with pytest.raises(KeyError, match="unknown encoder kind 'lstm'; available encoders: mel, mlp, wav2vec2"):
        build_encoder("lstm", (64,))
    with pytest.raises(ValueError, match="2 dimension"):
        build_encoder("wav2vec2", (768,))
    with pytest.raises(TypeError, match="no option 'hiden'.*accepted: hidden, out_dim"):
        build_encoder("mlp", (8,), hiden=3)
    with pytest.raises(ValueError, match=r"\[B, T, 16\]"):
        build_encoder("mel", (16,))(torch.randn(2, 5, 15))
    with pytest.raises(ValueError, match="lengths"):
        build_encoder("mel", (16,))(torch.randn(2, 5, 16), torch.tensor([5, 6]))
    with pytest.raises(ValueError, match="kernel must be odd"):
        MelEncoder(16, kernel=2)


def test_registry_holds_the_three_kinds_and_rejects_a_second_owner():
    assert {"mel", "mlp", "wav2vec2"} <= set(available_encoders())
    with pytest.raises(ValueError, match="'mel' is registered twice"):
        register_encoder("mel")(lambda shape: None)
    with pytest.raises(TypeError, match="from_shape"):
        register_encoder("no-from-shape")(nn.Linear)


def test_each_default_is_written_once_in_the_config():
    """The encoders take their config's fields: no second set of defaults in ``__init__``."""
    assert MelEncoder().config == MelEncoderConfig()
    assert MelEncoder(16, channels=[8, 8]).config == MelEncoderConfig(16, (8, 8))
    assert MelEncoder(config=MelEncoderConfig(out_dim=32)).out_dim == 32
    with pytest.raises(TypeError, match="not both"):
        MelEncoder(16, config=MelEncoderConfig())
    # out_dim is a block of its own after ``channels``: three blocks 64 → 64 → 80 → 128
    assert [c.out_channels for c in MelEncoder().convs] == [64, 80, 128]


def test_pointwise_blocks_are_matmuls_equal_to_kernel_1_convolutions():
    torch.manual_seed(7)
    enc = MelEncoder(16, channels=(8, 8), kernel=1).eval()
    assert all(isinstance(layer, nn.Linear) for layer in enc.convs)
    x, lengths = _padded([torch.randn(n, 16) for n in (6, 9)], 9)
    h = x.transpose(1, 2)  # the conv1d way: [B, C, T]
    mask = torch.arange(9)[None, :] < lengths[:, None]
    for i, (layer, norm) in enumerate(zip(enc.convs, enc.norms)):
        h = torch.relu(norm(nn.functional.conv1d(h, layer.weight[:, :, None], layer.bias))) * mask[:, None]
        if i < 2:
            h = nn.functional.max_pool1d(h, 2, ceil_mode=True)
            lengths = (lengths + 1) // 2
            mask = torch.arange(h.shape[-1])[None, :] < lengths[:, None]
    expected = (h * mask[:, None]).sum(-1) / mask.sum(-1, keepdim=True)
    assert torch.allclose(enc(x, (torch.tensor([6, 9]))), expected, atol=1e-5)
    w2v = Wav2Vec2Encoder(2, 6, hidden=4, out_dim=3).eval()
    first, second = w2v.pointwise[0], w2v.pointwise[2]
    frames = torch.randn(1, 5, 2, 6)
    mixed = torch.einsum("btld,l->bdt", frames, w2v.layer_weights())
    conv = nn.functional.conv1d(torch.relu(nn.functional.conv1d(mixed, first.weight[:, :, None], first.bias)),
                                second.weight[:, :, None], second.bias)
    assert torch.allclose(w2v(frames), conv.mean(-1), atol=1e-6)


def test_notebook_07_parameter_counts_are_exact():
    """Table 5 on the default views: eGeMAPS-88 MLP, mel CNN, Resemblyzer-256 MLP, 4 classes, three heads."""
    ids = ["a", "b"]
    features = {"egemaps": FeatureSet(ids, np.zeros((2, 88), np.float32), meta={"encoder": "mlp"}),
                "mel": FeatureSet(ids, np.zeros((5, 64), np.float32), [2, 3], meta={"encoder": "mel"}),
                "speaker": FeatureSet(ids, np.zeros((2, 256), np.float32), meta={"encoder": "mlp"})}
    table = parameter_counts(features, n_classes=4)
    tuned = table[(table["stage"] == "fine-tuning") & ~table["frozen"].astype(bool)]
    assert dict(zip(tuned["view"], tuned["trainable_params"] - 516)) == {"egemaps": 55_680, "mel": 59_184,
                                                                          "speaker": 98_688}
    frozen = table[table["frozen"].eq(True)]
    assert set(frozen["trainable_params"]) == {516}
    assert table.loc[table["stage"] == "pre-training", "trainable_params"].item() == 412_848


@pytest.mark.parametrize("make, frame", [
    (lambda: Wav2Vec2Encoder(3, 10, hidden=8), (3, 10)),
    (lambda: MelEncoder(16, channels=(8, 8)), (16,)),
])
def test_padding_frames_do_not_change_the_output(make, frame):
    torch.manual_seed(1)
    enc = make()
    items = [torch.randn(n, *frame) for n in (5, 9, 12)]  # odd lengths exercise the ceil-mode pooling
    enc.train()  # masked BatchNorm: padding is excluded from the batch statistics too
    x, lengths = _padded(items, 12)
    x_more, _ = _padded(items, 20, fill=7.0)  # more padding, filled with garbage
    tight = enc(x, lengths)
    assert torch.allclose(tight, enc(x_more, lengths), atol=1e-5)
    enc.eval()
    alone = torch.cat([enc(item[None]) for item in items])
    assert torch.allclose(alone, enc(x_more, lengths), atol=1e-5)


def test_eval_batch_norm_equals_normalising_the_real_frames_alone():
    from sercore.models.encoders import _masked_batch_norm

    torch.manual_seed(3)
    norm = nn.BatchNorm1d(8)
    h, lengths = _padded([torch.randn(n, 8) for n in (3, 7, 10)], 12, fill=5.0)
    mask = torch.arange(12)[None, :] < lengths[:, None]
    norm(h[mask])  # one training step moves the running statistics off their defaults
    norm.eval()
    want = torch.zeros_like(h)
    want[mask] = norm(h[mask])
    assert torch.equal(_masked_batch_norm(norm, h, mask), want)  # frames as rows (a pointwise block's output)
    as_conv_gives = h.transpose(1, 2).contiguous().transpose(1, 2)  # [B, C, T] memory seen as [B, T, C]
    assert torch.equal(_masked_batch_norm(norm, as_conv_gives, mask), want)


def test_padding_receives_no_gradient():
    torch.manual_seed(2)
    enc = MelEncoder(16, channels=(8, 8))
    x, lengths = _padded([torch.randn(4, 16), torch.randn(11, 16)], 11)
    x.requires_grad_(True)
    enc(x, lengths).sum().backward()
    assert x.grad[0, 4:].abs().sum() == 0 and x.grad[0, :4].abs().sum() > 0


def test_wav2vec2_layer_weights_select_layers():
    torch.manual_seed(3)
    enc = Wav2Vec2Encoder(3, 10, hidden=8).eval()
    assert torch.allclose(enc.layer_weights().sum(), torch.tensor(1.0))
    with torch.no_grad():
        enc.layer_logits.copy_(torch.tensor([-50.0, 50.0, -50.0]))
    x = torch.randn(2, 6, 3, 10)
    only_layer_1 = enc.pointwise(x[:, :, 1]).mean(1)
    assert torch.allclose(enc(x), only_layer_1, atol=1e-5)
    assert enc(x).shape == (2, 128)


def test_mlp_encoder_z_normalises_with_given_statistics():
    torch.manual_seed(4)
    enc = MLPEncoder(5, hidden=16)
    x = torch.randn(3, 5) * 10 + 100
    mean, std = x.mean(0).numpy(), np.array([2.0, 0.0, 1.0, 4.0, 0.5], dtype=np.float32)
    assert not bool(enc.normalized)
    enc.set_normalization(mean, std)
    assert bool(enc.normalized) and enc.std[1] == 1.0  # a constant feature is left unscaled
    expected = enc.net((x - torch.from_numpy(mean)) / torch.tensor([2.0, 1.0, 1.0, 4.0, 0.5]))
    assert torch.allclose(enc(x), expected)
    assert "mean" in enc.state_dict() and "std" in enc.state_dict()
    with pytest.raises(ValueError, match=r"shape \[5\]"):
        enc.set_normalization(np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        enc.set_normalization(np.full(5, np.nan), np.ones(5))


def test_parameter_counts_follow_the_architecture():
    enc = MLPEncoder(88)  # eGeMAPS-88 → 256 → 128
    assert count_parameters(enc) == (88 * 256 + 256 + 256 * 128 + 128, 0)
    mel = MelEncoder(64)  # the paper's spectrogram CNN has about 61k
    assert count_parameters(mel) == (64 * 64 * 3 + 64 + 64 * 80 * 3 + 80 + 80 * 128 * 3 + 128 + 2 * (64 + 80 + 128), 0)
    w2v = Wav2Vec2Encoder(13, 768)
    assert count_parameters(w2v)[0] == 13 + 768 * 128 + 128 + 128 * 128 + 128
    head = ProjectionHead()
    assert count_parameters(head)[0] == 128 * 256 + 256 + 2 * 256 + 256 * 128 + 128
    model = EncoderClassifier(enc, 128, 4)
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    assert count_parameters(model) == (128 * 4 + 4, 88 * 256 + 256 + 256 * 128 + 128)


def test_projection_head_and_classifier_shapes():
    torch.manual_seed(5)
    assert ProjectionHead(128, 256, 64)(torch.randn(3, 128)).shape == (3, 64)
    model = EncoderClassifier(build_encoder("mel", (16,)), 128, 4)
    assert model(torch.randn(2, 7, 16), torch.tensor([7, 3])).shape == (2, 4)
