"""View-level encoders of Pairwise-CL, the projection head and the linear classifier.

Every encoder maps ``forward(x, lengths=None)`` to ``[B, out_dim]`` (128 in the paper):

- ``Wav2Vec2Encoder``: ``x: [B, T, L, D]`` (all hidden layers of a frozen wav2vec 2.0) → softmax-weighted sum
  of the L layers → two-layer pointwise (kernel 1) Conv1d D→hidden→out, ReLU between → mean over real frames.
- ``MelEncoder``: ``x: [B, T, n_mels]`` → three Conv1d blocks over time (mel bins as channels; BatchNorm +
  ReLU + max-pool) → mean over real frames. Padding frames are zeroed after every block and excluded from the
  BatchNorm statistics, so the output of an utterance does not depend on how much padding its batch has.
- ``MLPEncoder``: ``x: [B, F]`` → z-normalisation with training-fold statistics → Linear-ReLU-Linear (256-128).

``build(kind, feature_shape, out_dim=128, **cfg)`` is what views call from ``View.build_encoder``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

KINDS = ("wav2vec2", "mel", "mlp")


def frame_mask(lengths: torch.Tensor | None, batch: int, time: int, device) -> torch.Tensor:
    """Boolean ``[B, T]`` mask of real frames (all True when ``lengths`` is None)."""
    if lengths is None:
        return torch.ones(batch, time, dtype=torch.bool, device=device)
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape [{batch}], got {tuple(lengths.shape)}")
    if (lengths < 1).any() or (lengths > time).any():
        raise ValueError(f"lengths must lie in [1, {time}] (the padded length), got {lengths.tolist()}")
    return torch.arange(time, device=device)[None, :] < lengths[:, None]


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``h: [B, C, T]`` over the frames where ``mask: [B, T]`` is True → ``[B, C]``."""
    m = mask[:, None, :].to(h.dtype)
    return (h * m).sum(-1) / m.sum(-1).clamp_min(1.0)


def _check_input(x: torch.Tensor, ndim: int, last: tuple[int, ...], name: str) -> None:
    if x.dim() != ndim or tuple(x.shape[ndim - len(last):]) != last:
        want = ", ".join(["B", "T"][: ndim - len(last)] + [str(d) for d in last])
        raise ValueError(f"{name} expects input [{want}], got {tuple(x.shape)}")


@dataclass
class Wav2Vec2EncoderConfig:
    """Pointwise-CNN encoder over the stacked hidden layers of wav2vec 2.0 (Pepino et al. 2021)."""

    n_layers: int = 13
    dim: int = 768
    hidden: int = 128
    out_dim: int = 128


class Wav2Vec2Encoder(nn.Module):
    """Learnable softmax layer weights + two pointwise convolutions + masked mean pooling."""

    def __init__(self, n_layers: int = 13, dim: int = 768, *, hidden: int = 128, out_dim: int = 128):
        super().__init__()
        self.config = Wav2Vec2EncoderConfig(n_layers, dim, hidden, out_dim)
        self.out_dim = out_dim
        self.layer_logits = nn.Parameter(torch.zeros(n_layers))
        self.conv = nn.Sequential(nn.Conv1d(dim, hidden, 1), nn.ReLU(), nn.Conv1d(hidden, out_dim, 1))

    def layer_weights(self) -> torch.Tensor:
        """The softmax-normalised weights of the L layers ``[L]``."""
        return torch.softmax(self.layer_logits, dim=0)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``x: [B, T, L, D]``, ``lengths: [B]`` → ``[B, out_dim]``."""
        _check_input(x, 4, (self.config.n_layers, self.config.dim), "Wav2Vec2Encoder")
        mixed = torch.einsum("btld,l->bdt", x, self.layer_weights())
        h = self.conv(mixed)
        return masked_mean(h, frame_mask(lengths, x.shape[0], x.shape[1], x.device))


@dataclass
class MelEncoderConfig:
    """Three Conv1d blocks over time; ``channels[-1]`` is replaced by ``out_dim``."""

    n_mels: int = 64
    channels: tuple[int, int] = (64, 80)
    kernel: int = 3
    pool: int = 2
    out_dim: int = 128


class MelEncoder(nn.Module):
    """Three conv blocks (Conv1d → masked BatchNorm → ReLU → max-pool) and masked mean pooling."""

    def __init__(self, n_mels: int = 64, *, channels: tuple[int, int] = (64, 80), kernel: int = 3, pool: int = 2,
                 out_dim: int = 128):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"MelEncoder: kernel must be odd (same padding), got {kernel}")
        self.config = MelEncoderConfig(n_mels, tuple(channels), kernel, pool, out_dim)
        self.out_dim = out_dim
        sizes = [n_mels, *channels, out_dim]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, kernel, padding=kernel // 2) for a, b in zip(sizes, sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in sizes[1:])
        self.pool = nn.MaxPool1d(pool, ceil_mode=True) if pool > 1 else nn.Identity()

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``x: [B, T, n_mels]``, ``lengths: [B]`` → ``[B, out_dim]``."""
        _check_input(x, 3, (self.config.n_mels,), "MelEncoder")
        batch, time = x.shape[:2]
        mask = frame_mask(lengths, batch, time, x.device)
        lens = mask.sum(1)
        h = x.transpose(1, 2) * mask[:, None, :]
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = torch.relu(_masked_batch_norm(norm, conv(h), mask))
            if i < len(self.convs) - 1 and self.config.pool > 1:
                # Post-ReLU values are >= 0 and padding is 0, so a window that mixes both keeps the real maximum.
                h = self.pool(h)
                lens = torch.div(lens + self.config.pool - 1, self.config.pool, rounding_mode="floor")
                mask = torch.arange(h.shape[-1], device=x.device)[None, :] < lens[:, None]
        return masked_mean(h, mask)


def _masked_batch_norm(norm: nn.BatchNorm1d, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BatchNorm of ``h: [B, C, T]`` using real frames only; padding frames come out as zeros."""
    frames = h.transpose(1, 2)
    out = frames.new_zeros(frames.shape)
    out[mask] = norm(frames[mask])
    return out.transpose(1, 2)


@dataclass
class MLPEncoderConfig:
    """Two-layer MLP on z-normalised fixed-length features (eGeMAPS-88, speaker embeddings)."""

    in_dim: int = 88
    hidden: int = 256
    out_dim: int = 128


class MLPEncoder(nn.Module):
    """z-normalisation (buffers ``mean``/``std``) then Linear-ReLU-Linear."""

    def __init__(self, in_dim: int = 88, *, hidden: int = 256, out_dim: int = 128):
        super().__init__()
        self.config = MLPEncoderConfig(in_dim, hidden, out_dim)
        self.out_dim = out_dim
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.register_buffer("normalized", torch.tensor(False))
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def set_normalization(self, mean, std, eps: float = 1e-6) -> "MLPEncoder":
        """Use ``mean``/``std`` (``[F]``, training-fold statistics) to z-normalise inputs; ``std`` < eps → 1."""
        mean = torch.as_tensor(np.asarray(mean, dtype=np.float32))
        std = torch.as_tensor(np.asarray(std, dtype=np.float32))
        if mean.shape != (self.config.in_dim,) or std.shape != (self.config.in_dim,):
            raise ValueError(f"set_normalization: mean/std must have shape [{self.config.in_dim}], "
                             f"got {tuple(mean.shape)} and {tuple(std.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise ValueError("set_normalization: mean/std contain NaN or inf")
        self.mean.copy_(mean)
        self.std.copy_(torch.where(std < eps, torch.ones_like(std), std))
        self.normalized.fill_(True)
        return self

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``x: [B, F]`` → ``[B, out_dim]`` (``lengths`` is ignored: fixed-length input)."""
        _check_input(x, 2, (self.config.in_dim,), "MLPEncoder")
        return self.net((x - self.mean) / self.std)


class ProjectionHead(nn.Module):
    """Pre-training projection g: Linear → BatchNorm → ReLU → Linear (128 → 256 → 128)."""

    def __init__(self, in_dim: int = 128, hidden: int = 256, out: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h: [B, in_dim]`` → ``z: [B, out]``."""
        return self.net(h)


class EncoderClassifier(nn.Module):
    """A view-level encoder followed by a linear classifier; returns logits ``[B, n_classes]``."""

    def __init__(self, encoder: nn.Module, in_dim: int, n_classes: int):
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(in_dim, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, n_classes]``."""
        return self.classifier(self.encoder(x, lengths))


def build(kind: str, feature_shape, *, out_dim: int = 128, **cfg) -> nn.Module:
    """Build the encoder ``kind`` (``wav2vec2``, ``mel``, ``mlp``) for features of one frame/vector ``feature_shape``.

    ``feature_shape`` is ``FeatureSet.feature_shape``: ``(L, D)`` for wav2vec2, ``(n_mels,)`` for mel, ``(F,)`` for
    mlp. ``cfg`` goes to the encoder (``hidden``, ``channels``, ``kernel``, ``pool``).
    """
    shape = tuple(int(s) for s in feature_shape)
    want = {"wav2vec2": 2, "mel": 1, "mlp": 1}
    if kind not in want:
        raise KeyError(f"unknown encoder kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if len(shape) != want[kind]:
        raise ValueError(f"encoder {kind!r} needs a feature shape of {want[kind]} dimension(s), got {shape}")
    if kind == "wav2vec2":
        return Wav2Vec2Encoder(shape[0], shape[1], out_dim=out_dim, **cfg)
    if kind == "mel":
        return MelEncoder(shape[0], out_dim=out_dim, **cfg)
    return MLPEncoder(shape[0], out_dim=out_dim, **cfg)


def encoder_config(encoder: nn.Module) -> dict:
    """The config of one of our encoders as a plain dict (for ``params.json``), or ``{}`` for others."""
    config = getattr(encoder, "config", None)
    return asdict(config) if config is not None else {}


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """``(trainable, frozen)`` numbers of parameters of ``module`` (by ``requires_grad``)."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    return trainable, frozen
