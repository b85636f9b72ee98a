import numpy as np
import pytest
import torch

from sercore.models.encoders import (EncoderClassifier, MelEncoder, MLPEncoder, ProjectionHead, Wav2Vec2Encoder,
                                     build, count_parameters, encoder_config)


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
    enc = build(kind, shape)
    assert enc(x).shape == (4, 128)
    assert build(kind, shape, out_dim=32)(x).shape == (4, 32)
    assert encoder_config(enc)["out_dim"] == 128


def test_build_rejects_unknown_kind_and_bad_shapes():
    with pytest.raises(KeyError, match="wav2vec2, mel, mlp"):
        build("lstm", (64,))
    with pytest.raises(ValueError, match="2 dimension"):
        build("wav2vec2", (768,))
    with pytest.raises(ValueError, match=r"\[B, T, 16\]"):
        build("mel", (16,))(torch.randn(2, 5, 15))
    with pytest.raises(ValueError, match="lengths"):
        build("mel", (16,))(torch.randn(2, 5, 16), torch.tensor([5, 6]))


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
    only_layer_1 = enc.conv(x[:, :, 1].transpose(1, 2)).mean(-1)
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
    mel = MelEncoder(64)
    trainable, frozen = count_parameters(mel)
    assert frozen == 0 and 40_000 < trainable < 80_000  # the paper's spectrogram CNN has about 61k
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
    model = EncoderClassifier(build("mel", (16,)), 128, 4)
    assert model(torch.randn(2, 7, 16), torch.tensor([7, 3])).shape == (2, 4)
