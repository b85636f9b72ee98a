"""The encoder registry: one name (an encoder *kind*) per view-level encoder.

A view names its kind (``View.encoder``), the feature cache writes it into ``meta.json`` and training builds
``build_encoder(features.meta["encoder"], features.feature_shape)``. Adding an encoder is one decorated class
(or function) in any module::

    @register_encoder("toy")
    class ToyEncoder(nn.Module):
        @classmethod
        def from_shape(cls, feature_shape, **cfg): ...

A registered class is built with its ``from_shape(feature_shape, **cfg)``; a registered function is called
as ``factory(feature_shape, **cfg)``. Either returns a module whose ``forward(x, lengths=None)`` gives
``[B, out_dim]``.
"""

from __future__ import annotations

from typing import Callable, Sequence

_ENCODERS: dict[str, Callable] = {}


def register_encoder(kind: str) -> Callable:
    """Decorator: make the class or factory available as ``build_encoder(kind, ...)``."""
    if not kind or not isinstance(kind, str):
        raise ValueError(f"an encoder kind must be a non-empty string, got {kind!r}")

    def decorate(obj):
        if kind in _ENCODERS and _ENCODERS[kind] is not obj:
            raise ValueError(f"encoder kind {kind!r} is registered twice ({_ENCODERS[kind].__name__}, "
                             f"{obj.__name__})")
        if isinstance(obj, type) and not hasattr(obj, "from_shape"):
            raise TypeError(f"{obj.__name__}: a registered encoder class needs a from_shape(feature_shape, **cfg)"
                            " classmethod")
        _ENCODERS[kind] = obj
        return obj

    return decorate


def available_encoders() -> list[str]:
    """The registered encoder kinds, sorted."""
    return sorted(_ENCODERS)


def get_encoder(kind: str) -> Callable:
    """The class or factory registered as ``kind``; an unknown kind raises ``KeyError`` listing the known ones."""
    if kind not in _ENCODERS:
        raise KeyError(f"unknown encoder kind {kind!r}; available encoders: {', '.join(available_encoders())}")
    return _ENCODERS[kind]


def build_encoder(kind: str, feature_shape: Sequence[int], **cfg):
    """A fresh encoder of ``kind`` for features whose one vector/frame has ``feature_shape``.

    ``feature_shape`` is ``FeatureSet.feature_shape``, e.g. ``(88,)``, ``(64,)`` or ``(13, 768)``; ``cfg`` goes
    to the encoder's config (``out_dim``, ``hidden``, ...).
    """
    obj = get_encoder(kind)
    shape = tuple(int(s) for s in feature_shape)
    return obj.from_shape(shape, **cfg) if isinstance(obj, type) else obj(shape, **cfg)
