"""Loading an SSL speech model for ``sercore.views.ssl``: torchaudio bundle, random architecture, HF id or folder.

Offline policy (``SPEC.md``): nothing is downloaded offline (``sercore.core.config.is_offline()``) or without
network (``hub_reachable()`` false). A view's *default* source that cannot be loaded raises ``ViewUnavailable``
(the view is skipped with the reason); a source the user named raises ``ModelLoadError`` (the run stops).
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from sercore.core.config import ModelLoadError
from sercore.views._ssl_backends import (
    _Backend,
    _HFBackend,
    _HFHiddenStatesBackend,
    _TorchaudioBackend,
    _WhisperBackend,
)
from sercore.views.base import ViewUnavailable

TORCHAUDIO_HOST = "https://download.pytorch.org"  # where torchaudio bundles download from
RANDOM_PREFIX = "random:"
# torchaudio.models factories usable with random weights: name -> (layers incl. layer 0, width)
RANDOM_ARCHS = {"wav2vec2_base": (13, 768), "wav2vec2_large": (25, 1024), "wav2vec2_large_lv60k": (25, 1024),
                "hubert_base": (13, 768), "hubert_large": (25, 1024), "hubert_xlarge": (49, 1280),
                "wavlm_base": (13, 768), "wavlm_large": (25, 1024)}
# Hugging Face model types whose model returns hidden states from a 16 kHz wave (or Whisper's log-mel)
HF_MODEL_TYPES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "wav2vec2-conformer", "whisper")

HOW = ("pass source=<local folder> holding a Hugging Face checkpoint (save_pretrained layout), "
       "or run once online so the model lands in the library's cache")


def load_backend(source: str, device, *, view: str = "wav2vec2", default: bool = False) -> _Backend:
    """Load ``source`` (bundle name, ``random:<arch>``, HF id or local folder) on ``device``. If impossible:
    ``ViewUnavailable`` when ``default`` (the view's default source), else ``ModelLoadError``."""
    import torchaudio

    fail = ViewUnavailable if default else ModelLoadError
    if source.startswith(RANDOM_PREFIX):
        return load_random(source[len(RANDOM_PREFIX):], device)
    bundle = getattr(torchaudio.pipelines, source, None)
    if isinstance(bundle, torchaudio.pipelines.Wav2Vec2Bundle):
        return _load_torchaudio(source, bundle, device, view=view, fail=fail)
    return _load_hf(source, device, view=view, fail=fail)


def load_random(arch: str, device, seed: int = 0) -> _Backend:
    """torchaudio's ``arch`` architecture with random weights (seeded; global RNG state left as it was)."""
    import torch
    import torchaudio

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(torchaudio.models, arch)()
    return _TorchaudioBackend(model, device, normalize=False, info={
        "source": RANDOM_PREFIX + arch, "model": f"{arch} (random weights)", "resolved_path": "none (nothing loaded)",
        "weights": f"random weights (seed {seed}): architecture only, not pretrained"})


def _load_torchaudio(source: str, bundle, device, *, view: str, fail) -> _Backend:
    import torch

    from sercore.core.config import hub_reachable, is_offline

    filename = Path(bundle._path).name  # the checkpoint's file name in torch hub's cache
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    where = (f"checkpoint {filename} is not in torch hub's cache ({cached.parent}); copy it there (or set "
             f"TORCH_HOME), or {HOW}")
    if not cached.is_file() and is_offline():
        raise fail(f"view {view!r}: torchaudio bundle {source} is unavailable offline: {where}")
    if not cached.is_file() and not hub_reachable(TORCHAUDIO_HOST):
        raise fail(f"view {view!r}: torchaudio bundle {source} is unavailable (no network: {TORCHAUDIO_HOST} "
                   f"is unreachable): {where}")
    try:
        with _socket_timeout(60):
            model = bundle.get_model()
    except Exception as err:  # download or load failure: report what to do instead of a traceback
        raise fail(f"view {view!r}: torchaudio bundle {source} could not be loaded "
                   f"({type(err).__name__}: {err}); {where}") from err
    normalize = bool(getattr(model, "normalize_waveform", False))
    model = getattr(model, "model", model)  # large bundles wrap the model to layer-normalise the waveform
    return _TorchaudioBackend(model, device, normalize=normalize,
                              info={"source": source, "resolved_path": str(cached)})


def _load_hf(source: str, device, *, view: str, fail) -> _Backend:
    """A Hugging Face id or folder of one of ``HF_MODEL_TYPES``."""
    from sercore.core.config import hub_reachable, is_offline

    try:
        from transformers import AutoConfig, AutoModel, Wav2Vec2Model
    except ImportError as err:
        raise fail(f"view {view!r}: source {source!r} is not a torchaudio bundle and needs the "
                   "`transformers` package (pip install transformers)") from err
    local = Path(source).is_dir()
    if not local and source.startswith(("/", ".", "~")):
        raise fail(f"view {view!r}: source folder {source} does not exist; {HOW}")
    no_network = not local and not is_offline() and not hub_reachable()
    offline = local or is_offline() or no_network
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=offline)
        if config.model_type not in HF_MODEL_TYPES:
            raise ValueError(f"checkpoint is a {config.model_type!r} model, not one of the speech models with "
                             f"hidden states ({', '.join(HF_MODEL_TYPES)})")
        cls = Wav2Vec2Model if config.model_type == "wav2vec2" else AutoModel
        model = cls.from_pretrained(source, local_files_only=offline)
    except Exception as err:  # missing files, offline cache miss, failed download, wrong checkpoint
        state = type(err).__name__
        if not local and offline:
            state = f"{'no network' if no_network else 'offline'}, not in the Hugging Face cache"
        raise fail(f"view {view!r}: model {source} could not be loaded ({state}: {err}); {HOW}") from err
    info = {"source": source, "resolved_path": _hf_path(source, local), "model_type": config.model_type}
    if config.model_type == "whisper":
        extractor, note = _whisper_extractor(source, offline, config)
        return _WhisperBackend(model, device, extractor=extractor, info={**info, "extractor": note})
    normalize, note = _hf_normalize(source, offline)
    backend = _HFBackend if config.model_type == "wav2vec2" else _HFHiddenStatesBackend
    return backend(model, device, normalize=normalize, info={**info, "preprocessing": note})


def _hf_normalize(source: str, offline: bool) -> tuple[bool, str]:
    """The checkpoint's ``do_normalize`` (from ``preprocessor_config.json``); ``False`` when it has none."""
    from transformers import Wav2Vec2FeatureExtractor

    try:
        extractor = Wav2Vec2FeatureExtractor.from_pretrained(source, local_files_only=offline)
    except (OSError, ValueError):
        return False, "no preprocessor_config.json: waveform not normalised"
    return bool(extractor.do_normalize), "from preprocessor_config.json"


def _whisper_extractor(source: str, offline: bool, config):
    """The checkpoint's ``WhisperFeatureExtractor``, or Whisper's defaults with the model's mel bins."""
    from transformers import WhisperFeatureExtractor

    try:
        return WhisperFeatureExtractor.from_pretrained(source, local_files_only=offline), \
            "from preprocessor_config.json"
    except (OSError, ValueError):
        return (WhisperFeatureExtractor(feature_size=int(config.num_mel_bins)),
                "no preprocessor_config.json: Whisper's default log-mel")


def _hf_path(source: str, local: bool) -> str:
    if local:
        return source
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(source, "config.json")
    return str(Path(found).parent) if isinstance(found, str) else "unknown (Hugging Face cache)"


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """torch.hub downloads without a timeout; bound it so a dead network fails instead of hanging."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)
