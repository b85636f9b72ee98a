"""View-level encoders of Pairwise-CL, the projection head and the linear classifier.

Every encoder maps ``forward(x, lengths=None)`` to ``[B, out_dim]`` (128 in the paper) and is registered under
its kind (``sercore.models.registry``):

- ``wav2vec2`` (``Wav2Vec2Encoder``): ``x: [B, T, L, D]`` (the hidden layers of a frozen SSL speech model:
  wav2vec 2.0, HuBERT, WavLM, data2vec, Whisper's encoder; any L and D, from the features' shape) →
  learned softmax weights over the L layers → two-layer pointwise CNN D→hidden→out (computed as ``Linear``
  on ``[B, T, C]``), ReLU between → mean over real frames (Pepino et al. 2021; paper A).
  ``learnt_layer_weights(model)`` reads the weights of such an encoder inside any model (for results).
- ``mel`` (``MelEncoder``): ``x: [B, T, n_mels]`` → three conv blocks over time (mel bins as channels;
  BatchNorm + ReLU + max-pool) → mean over real frames. Padding frames are zeroed after every block and
  excluded from the BatchNorm statistics, so the output of an utterance does not depend on how much padding
  its batch has. Pointwise blocks (``kernel=1``) are ``Linear`` layers on ``[B, T, C]``.
- ``mlp`` (``MLPEncoder``): ``x: [B, F]`` → z-normalisation with training-fold statistics → Linear-ReLU-Linear.

Each encoder takes the fields of its config dataclass (positionally or by name) or ``config=``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from sercore.models.registry import register_encoder


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
    """Mean of ``h: [B, T, C]`` over the frames where ``mask: [B, T]`` is True → ``[B, C]``."""
    m = mask[:, :, None].to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


def _check_input(x: torch.Tensor, ndim: int, last: tuple[int, ...], name: str) -> None:
    if x.dim() != ndim or tuple(x.shape[ndim - len(last):]) != last:
        want = ", ".join(["B", "T"][: ndim - len(last)] + [str(d) for d in last])
        raise ValueError(f"{name} expects input [{want}], got {tuple(x.shape)}")


def _config(cls, args, config, kwargs):
    """``config`` or ``cls(*args, **kwargs)`` (not both)."""
    if config is None:
        return cls(*args, **kwargs)
    if args or kwargs:
        raise TypeError(f"pass either config= or the fields of {cls.__name__}, not both")
    return config


def _shape_config(cls, name: str, shape: tuple[int, ...], leading: tuple[str, ...], cfg: dict):
    """``cls`` with the fields ``leading`` taken from the feature ``shape`` and the rest from ``cfg``."""
    if len(shape) != len(leading):
        raise ValueError(f"encoder {name!r} needs a feature shape of {len(leading)} dimension(s) "
                         f"({', '.join(leading)}), got {shape}")
    known = {f.name for f in fields(cls)} - set(leading)
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise TypeError(f"encoder {name!r} has no option {', '.join(map(repr, unknown))}; accepted: "
                        f"{', '.join(sorted(known))}")
    return cls(**dict(zip(leading, shape)), **cfg)


@dataclass
class Wav2Vec2EncoderConfig:
    """Layer weights + pointwise CNN over the stacked hidden layers of wav2vec 2.0 (Pepino et al. 2021)."""

    n_layers: int = 13
    dim: int = 768
    hidden: int = 128
    out_dim: int = 128


@register_encoder("wav2vec2")
class Wav2Vec2Encoder(nn.Module):
    """Learnable softmax layer weights, two pointwise layers (``Linear`` over frames), masked mean pooling."""

    def __init__(self, *args, config: Wav2Vec2EncoderConfig | None = None, **kwargs):
        super().__init__()
        self.config = c = _config(Wav2Vec2EncoderConfig, args, config, kwargs)
        self.out_dim = c.out_dim
        self.layer_logits = nn.Parameter(torch.zeros(c.n_layers))
        self.pointwise = nn.Sequential(nn.Linear(c.dim, c.hidden), nn.ReLU(), nn.Linear(c.hidden, c.out_dim))

    @classmethod
    def from_shape(cls, feature_shape, **cfg) -> "Wav2Vec2Encoder":
        """Encoder for frames of ``(L, D)``: L hidden layers of width D."""
        return cls(config=_shape_config(Wav2Vec2EncoderConfig, "wav2vec2", tuple(feature_shape),
                                        ("n_layers", "dim"), cfg))

    def layer_weights(self) -> torch.Tensor:
        """The softmax-normalised weights of the L layers ``[L]``."""
        return torch.softmax(self.layer_logits, dim=0)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``x: [B, T, L, D]``, ``lengths: [B]`` → ``[B, out_dim]``."""
        _check_input(x, 4, (self.config.n_layers, self.config.dim), "Wav2Vec2Encoder")
        mixed = torch.einsum("btld,l->btd", x, self.layer_weights().to(x.dtype))
        return masked_mean(self.pointwise(mixed), frame_mask(lengths, x.shape[0], x.shape[1], x.device))


@dataclass
class MelEncoderConfig:
    """Conv blocks over time: ``n_mels`` → each of ``channels`` → ``out_dim`` (``len(channels) + 1`` blocks)."""

    n_mels: int = 64
    channels: tuple[int, ...] = (64, 80)
    kernel: int = 3  # odd (same padding); 1 makes every block pointwise (Linear over frames)
    pool: int = 2
    out_dim: int = 128

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if self.kernel % 2 != 1:
            raise ValueError(f"MelEncoder: kernel must be odd (same padding), got {self.kernel}")


class _TimeConv(nn.Conv1d):
    """``Conv1d`` over time applied to channels-last frames ``[B, T, C]``."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return super().forward(h.transpose(1, 2)).transpose(1, 2)


@register_encoder("mel")
class MelEncoder(nn.Module):
    """Conv blocks (conv → masked BatchNorm → ReLU → max-pool, none after the last) and masked mean pooling."""

    def __init__(self, *args, config: MelEncoderConfig | None = None, **kwargs):
        super().__init__()
        self.config = c = _config(MelEncoderConfig, args, config, kwargs)
        self.out_dim = c.out_dim
        sizes = [c.n_mels, *c.channels, c.out_dim]
        self.convs = nn.ModuleList(nn.Linear(a, b) if c.kernel == 1 else _TimeConv(a, b, c.kernel,
                                                                                   padding=c.kernel // 2)
                                   for a, b in zip(sizes, sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in sizes[1:])
        self.pool = nn.MaxPool1d(c.pool, ceil_mode=True) if c.pool > 1 else None

    @classmethod
    def from_shape(cls, feature_shape, **cfg) -> "MelEncoder":
        """Encoder for frames of ``(n_mels,)``."""
        return cls(config=_shape_config(MelEncoderConfig, "mel", tuple(feature_shape), ("n_mels",), cfg))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``x: [B, T, n_mels]``, ``lengths: [B]`` → ``[B, out_dim]``."""
        _check_input(x, 3, (self.config.n_mels,), "MelEncoder")
        batch, time = x.shape[:2]
        mask = frame_mask(lengths, batch, time, x.device)
        lens = mask.sum(1)
        h = x * mask[:, :, None]
        for i, (layer, norm) in enumerate(zip(self.convs, self.norms)):
            h = torch.relu(_masked_batch_norm(norm, layer(h), mask))
            if i < len(self.convs) - 1 and self.pool is not None:
                # Post-ReLU values are >= 0 and padding is 0, so a window that mixes both keeps the real maximum.
                h = self.pool(h.transpose(1, 2)).transpose(1, 2)
                lens = torch.div(lens + self.config.pool - 1, self.config.pool, rounding_mode="floor")
                mask = torch.arange(h.shape[1], device=x.device)[None, :] < lens[:, None]
        return masked_mean(h, mask)


def _masked_batch_norm(norm: nn.BatchNorm1d, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BatchNorm of ``h: [B, T, C]`` using real frames only; padding frames come out as zeros."""
    if not norm.training and norm.track_running_stats:  # a per-frame affine map: no need to gather real frames
        if h.is_contiguous():  # frames are rows
            return norm(h.view(-1, h.shape[-1])).view(h.shape) * mask[:, :, None]
        return norm(h.transpose(1, 2)).transpose(1, 2) * mask[:, :, None]  # a conv's [B, C, T], seen as [B, T, C]
    out = h.new_zeros(h.shape)
    out[mask] = norm(h[mask])
    return out


@dataclass
class MLPEncoderConfig:
    """Two-layer MLP on z-normalised fixed-length features (eGeMAPS-88, speaker embeddings)."""

    in_dim: int = 88
    hidden: int = 256
    out_dim: int = 128


@register_encoder("mlp")
class MLPEncoder(nn.Module):
    """z-normalisation (buffers ``mean``/``std``) then Linear-ReLU-Linear."""

    def __init__(self, *args, config: MLPEncoderConfig | None = None, **kwargs):
        super().__init__()
        self.config = c = _config(MLPEncoderConfig, args, config, kwargs)
        self.out_dim = c.out_dim
        self.register_buffer("mean", torch.zeros(c.in_dim))
        self.register_buffer("std", torch.ones(c.in_dim))
        self.register_buffer("normalized", torch.tensor(False))
        self.net = nn.Sequential(nn.Linear(c.in_dim, c.hidden), nn.ReLU(), nn.Linear(c.hidden, c.out_dim))

    @classmethod
    def from_shape(cls, feature_shape, **cfg) -> "MLPEncoder":
        """Encoder for vectors of ``(F,)``."""
        return cls(config=_shape_config(MLPEncoderConfig, "mlp", tuple(feature_shape), ("in_dim",), cfg))

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




def learnt_layer_weights(model: nn.Module) -> np.ndarray | None:
    """The softmax layer weights ``[L]`` (float64, summing to 1) of the first layer-weighted module in ``model``
    (the model itself, an ``EncoderClassifier``, any container): one with ``layer_logits`` and ``layer_weights()``,
    such as ``Wav2Vec2Encoder``; ``None`` when it has none."""
    for module in model.modules():
        if getattr(module, "layer_logits", None) is not None and callable(getattr(module, "layer_weights", None)):
            with torch.no_grad():
                return module.layer_weights().detach().double().cpu().numpy()
    return None


def encoder_config(encoder: nn.Module) -> dict:
    """The config of one of our encoders as a plain dict (for ``params.json``), or ``{}`` for others."""
    config = getattr(encoder, "config", None)
    return asdict(config) if config is not None else {}


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """``(trainable, frozen)`` numbers of parameters of ``module`` (by ``requires_grad``)."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    return trainable, frozen
