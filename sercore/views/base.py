"""The ``View`` base class, the view registry and the checks every extractor shares.

A view maps one utterance (float32 mono ``[n]`` at 16 kHz) to features: ``[D]`` (fixed) or ``[T, *frame]``
(variable). Its constructor takes explicit keyword arguments; ``params`` holds those that change the features
(the cache key, defaults included); runtime settings such as ``device`` or ``batch_size`` are accepted by the
constructor but are not part of ``params``. Models load lazily on first use and are never pickled, so a view
can be sent to a worker process.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Sequence

import numpy as np

from sercore.core.config import resolve_device as core_resolve_device

SAMPLE_RATE = 16000

_REGISTRY: dict[str, type["View"]] = {}


class ViewUnavailable(RuntimeError):
    """A view's model cannot be loaded (offline, missing files, failed download)."""


def register(cls: type["View"]) -> type["View"]:
    """Class decorator: make ``cls`` available to ``get_view(cls.name)``.

    ``cls`` needs a ``name`` and an ``encoder`` (a kind of ``sercore.models.available_encoders()``, checked when
    features are used for training, so a view and its encoder may live in different modules).
    """
    if not getattr(cls, "name", ""):
        raise ValueError(f"{cls.__name__}: a registered view needs a non-empty `name`")
    if not getattr(cls, "encoder", ""):
        raise ValueError(f"view {cls.name!r}: a registered view needs an `encoder` kind (e.g. encoder = \"mlp\")")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"view name {cls.name!r} is registered twice ({_REGISTRY[cls.name].__name__}, {cls.__name__})")
    _REGISTRY[cls.name] = cls
    return cls


def accepted_parameters(cls: type["View"]) -> list[str]:
    """Keyword arguments the view's constructor accepts (cache-key params and runtime settings)."""
    sig = inspect.signature(cls.__init__)
    return [p.name for p in list(sig.parameters.values())[1:] if p.kind is not p.VAR_KEYWORD]


class View:
    """Base of all views. Subclasses set the class attributes, ``params`` in ``__init__`` and ``extract``."""

    name: ClassVar[str] = ""
    version: str = "1"  # bump when the extractor's output changes for the same params
    variable: ClassVar[bool] = False  # True: frame sequences [T, ...]
    parallel: ClassVar[bool] = False  # True: CPU-bound, run in a process pool
    encoder: ClassVar[str] = ""  # the encoder kind training builds for these features (sercore.models)
    packages: ClassVar[tuple[str, ...]] = ()  # distributions whose versions decide the features (cache key)
    min_samples: ClassVar[int] = 400  # shortest input the extractor accepts (one 25 ms window)
    _lazy: ClassVar[tuple[str, ...]] = ()  # attributes holding loaded models: dropped when pickled

    params: dict[str, Any]

    def extract(self, wave: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
        """Features of one utterance: ``[D]`` or ``[T, *frame_shape]`` float32."""
        raise NotImplementedError(f"{type(self).__name__} must implement extract()")

    def extract_batch(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Features of several utterances (16 kHz), in order; batched models override this."""
        return [self.extract(w) for w in waves]

    def provenance(self) -> dict:
        """What was actually used to compute the features (model source, fallback, library versions)."""
        return {"view": self.name, "params": dict(self.params), "version": self.version}

    def check_wave(self, wave: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
        """``wave`` as float32 ``[n]``; a clear ``ValueError`` for anything the extractor cannot use."""
        if sr != SAMPLE_RATE:
            raise ValueError(f"view {self.name!r}: sample rate {sr} Hz, expected {SAMPLE_RATE} "
                             "(load audio with sercore.data.audio.load_audio, which resamples)")
        wave = np.asarray(wave)
        if wave.ndim != 1:
            raise ValueError(f"view {self.name!r}: expected a mono wave of shape [n], got shape {wave.shape}")
        if not np.issubdtype(wave.dtype, np.floating):
            raise ValueError(f"view {self.name!r}: expected float samples in [-1, 1], got dtype {wave.dtype}")
        if len(wave) < self.min_samples:
            raise ValueError(f"view {self.name!r}: wave of {len(wave)} samples is too short "
                             f"(at least {self.min_samples}, {self.min_samples / SAMPLE_RATE * 1000:.0f} ms)")
        if not np.isfinite(wave).all():
            raise ValueError(f"view {self.name!r}: wave contains NaN or inf samples")
        return wave.astype(np.float32, copy=False)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for attr in self._lazy:
            state[attr] = None
        return state

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"get_view({self.name!r}{', ' if args else ''}{args})"


def fit_length(wave: np.ndarray, max_seconds: float | None) -> np.ndarray:
    """Trim or zero-pad ``wave`` to exactly ``max_seconds`` (at 16 kHz); ``None`` keeps it as is."""
    if max_seconds is None:
        return wave
    n = int(round(max_seconds * SAMPLE_RATE))
    if len(wave) >= n:
        return wave[:n]
    return np.pad(wave, (0, n - len(wave)))


def check_max_seconds(view: str, max_seconds: float | None) -> float | None:
    """Validate a ``max_seconds`` parameter (``None`` or a positive number)."""
    if max_seconds is None:
        return None
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0:
        raise ValueError(f"view {view!r}: max_seconds must be None or a positive number of seconds, "
                         f"got {max_seconds!r}")
    return float(max_seconds)


def resolve_device(view: str, device: str):
    """``torch.device`` for ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"auto"``); clear error
    naming the view if unusable (:func:`sercore.core.config.resolve_device`)."""
    return core_resolve_device(device, where=f"view {view!r}")
