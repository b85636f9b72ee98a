"""``wav2vec2``: every hidden layer of a frozen wav2vec 2.0 model → ``[T, L, D]`` (``L = 13``, ``D = 768`` for base).

Layer 0 is the transformer's input (CNN features after the feature projection and the positional convolution,
what Hugging Face returns as ``hidden_states[0]``); layers 1..L-1 are the transformer layers' outputs.
``T ≈ n / 320`` (20 ms frames).

Sources: a ``torchaudio.pipelines`` bundle name (``WAV2VEC2_BASE``, paper A), a Hugging Face model id, or a
local folder holding a Hugging Face checkpoint (``save_pretrained`` layout). Offline (``sercore.core.config.
is_offline()``, or no network: ``sercore.core.config.hub_reachable()`` is false) nothing is downloaded. The default
bundle missing from the local caches raises ``ViewUnavailable`` (the view is skipped); any other source the user
names that cannot be loaded raises ``sercore.core.config.ModelLoadError`` naming it and why (the run stops).
``random:wav2vec2_base`` (opt-in only, for benchmarks and tests) is torchaudio's base architecture with random
weights (seeded, so the features repeat): the true shapes and cost of the real model, none of its knowledge;
its provenance says "random weights".

``layers`` keeps only some hidden layers (e.g. ``(0, 6, 12)``; default ``"all"``); ``precision`` (default
``"auto"``: bf16 where the device has fast bf16 kernels, else fp32; ``"bf16"`` asks for it, falling back to fp32
with a note in the provenance) runs the model in bfloat16 autocast. Both are part of ``params`` (the cache key),
the precision as it resolves on this machine. ``estimate_bytes(total_seconds)`` is the float16 cache size of that much
audio (about 1 MB per second, 3.6 GB per hour, for all 13 layers of the base model).

Batching: the CNN front end runs on each utterance alone, because wav2vec2-base normalises its first
convolution over the whole utterance (GroupNorm), so zero padding would change every frame. The transformer
then runs on length-sorted, padded batches with an attention mask, which leaves the valid frames unchanged:
``extract_batch`` equals per-utterance ``extract`` up to float rounding.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from typing import Sequence

import numpy as np

from sercore.core.config import ModelLoadError

from sercore.views.base import (SAMPLE_RATE, View, ViewUnavailable, check_max_seconds, fit_length, register,
                                resolve_device)

DEFAULT_SOURCE = "WAV2VEC2_BASE"  # only this one is skipped, not an error, when it cannot be loaded
TORCHAUDIO_HOST = "https://download.pytorch.org"  # where torchaudio bundles download from
FRAMES_PER_SECOND = SAMPLE_RATE / 320  # the CNN front end's stride: 20 ms
RANDOM_PREFIX = "random:"
_RANDOM_ARCHS = ("wav2vec2_base", "wav2vec2_large")  # torchaudio.models factories usable with random weights
_KNOWN_SHAPES = {"WAV2VEC2_BASE": (13, 768), "random:wav2vec2_base": (13, 768), "random:wav2vec2_large": (25, 1024)}

_HOW = ("pass source=<local folder> holding a Hugging Face wav2vec2 checkpoint (save_pretrained layout), "
        "or run once online so the model lands in the library's cache")


@register
class Wav2Vec2View(View):
    """Frozen wav2vec 2.0 hidden states of all layers, ``[T, L, D]`` float32."""

    name = "wav2vec2"
    version = "2"  # 2: the positional convolution runs in fp32 under bf16 (fp32 features unchanged)
    variable = True
    encoder = "wav2vec2"
    packages = ("torch", "torchaudio", "transformers")
    _lazy = ("_backend",)

    def __init__(self, *, source: str = DEFAULT_SOURCE, max_seconds: float | None = None,
                 layers: str | Sequence[int] = "all", precision: str = "auto", device: str = "cpu",
                 batch_size: int = 8):
        from sercore.core.precision import check_precision, resolve_precision

        if not isinstance(source, (str, Path)) or not str(source):
            raise ValueError(f"view 'wav2vec2': source must be a bundle name, model id or folder, got {source!r}")
        source = str(source)
        if Path(source).expanduser().is_dir():
            source = str(Path(source).expanduser().resolve())
        if source.startswith(RANDOM_PREFIX) and source[len(RANDOM_PREFIX):] not in _RANDOM_ARCHS:
            raise ValueError(f"view 'wav2vec2': unknown random architecture {source!r}; known: "
                             f"{', '.join(RANDOM_PREFIX + a for a in _RANDOM_ARCHS)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"view 'wav2vec2': batch_size must be a positive integer, got {batch_size!r}")
        self.requested_precision = check_precision(precision, "view 'wav2vec2': precision")
        if self.requested_precision == "auto":  # the key holds what runs: auto resolves differently per machine
            precision = resolve_precision("auto", resolve_device("wav2vec2", device))[0]
        self.params = {"source": source, "max_seconds": check_max_seconds("wav2vec2", max_seconds),
                       "layers": _check_layers(layers), "precision": precision}
        self.device = device
        self.batch_size = batch_size
        self._backend = None
        resolve_device("wav2vec2", device)
        known = _KNOWN_SHAPES.get(source)
        if known and self.params["layers"] != "all" and self.params["layers"][-1] >= known[0]:
            raise ValueError(f"view 'wav2vec2': layer {self.params['layers'][-1]} requested but {source} has "
                             f"{known[0]} layers (0..{known[0] - 1})")

    def _model(self) -> "_Backend":
        if self._backend is None:
            backend = load_backend(self.params["source"], resolve_device(self.name, self.device))
            backend.select(self.params["layers"], self.requested_precision)
            self._backend = backend
        return self._backend

    def layer_shape(self) -> tuple[int, int]:
        """``(L, D)``: layers kept and their width (from the model, or known without loading it)."""
        layers, known = self.params["layers"], _KNOWN_SHAPES.get(self.params["source"])
        if known is None:
            info = self._model().info
            known = (info["num_layers"], info["hidden_size"])
        return (known[0] if layers == "all" else len(layers)), known[1]

    def estimate_bytes(self, total_seconds: float) -> int:
        """Float16 cache bytes of ``total_seconds`` of audio: seconds × 50 frames/s × L layers × D × 2 bytes."""
        n_layers, dim = self.layer_shape()
        return int(round(total_seconds * FRAMES_PER_SECOND)) * n_layers * dim * 2

    def disk_note(self, total_seconds: float | None = None) -> str:
        """One line: the cache size per hour of audio, and of ``total_seconds`` of audio when given."""
        n_layers, dim = self.layer_shape()
        total = "" if total_seconds is None else (f"{total_seconds / 3600:.2f} h of audio -> about "
                                                  f"{self.estimate_bytes(total_seconds) / 1e9:.2f} GB on disk, ")
        return (f"view wav2vec2 ({self.params['source']}, {n_layers} layers x {dim}, float16 cache): {total}"
                f"{self.estimate_bytes(3600) / 1e9:.2f} GB per hour of audio")

    def extract(self, wave: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
        """Hidden states ``[T, L, D]`` of one utterance."""
        return self.extract_batch([self.check_wave(wave, sr)])[0]

    def extract_batch(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Hidden states of several utterances, batched by similar length; same values as ``extract``."""
        waves = [fit_length(self.check_wave(w), self.params["max_seconds"]) for w in waves]
        if not waves:
            return []
        order = np.argsort([len(w) for w in waves], kind="stable")
        out: list[np.ndarray | None] = [None] * len(waves)
        backend = self._model()
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            for i, feats in zip(idx, backend.hidden_states([waves[i] for i in idx])):
                out[i] = feats
        return out

    def provenance(self) -> dict:
        """Source, backend, resolved path, weights (pretrained or random), layers kept, width, parameter count and
        precision (requested and used) of the model used; ``model`` is the name captions show."""
        return {**super().provenance(), **self._model().info}


def _check_layers(layers) -> str | list[int]:
    """``"all"`` or a strictly increasing list of non-negative layer indices."""
    if layers == "all":
        return "all"
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise ValueError(f"view 'wav2vec2': layers must be 'all' or a list of layer indices, got {layers!r}")
    out = list(layers)
    if not out or any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0 for i in out):
        raise ValueError(f"view 'wav2vec2': layers must be non-negative integers, got {layers!r}")
    out = [int(i) for i in out]
    if out != sorted(set(out)):
        raise ValueError(f"view 'wav2vec2': layers must be strictly increasing, got {layers!r}")
    return out


class _Backend:
    """A loaded wav2vec2 model split into its CNN front end and its transformer (torchaudio or HF)."""

    def __init__(self, model, device, *, layers, normalize: bool, info: dict):
        self.model = model.to(device).float().eval()  # float32 whatever the checkpoint's dtype
        _positional_conv_in_fp32(self.model)
        self.device = device
        self.layers = layers  # the transformer's layer modules, for the hooks
        self.normalize = normalize
        self.keep = list(range(len(layers) + 1))
        self.precision = "fp32"
        self.info = {"weights": "pretrained", "model": info.get("source"), **info, "num_layers": len(layers) + 1,
                     "normalize_waveform": normalize, "parameters": int(sum(p.numel() for p in model.parameters())),
                     "layers_kept": "all", "precision_used": "fp32", "precision_note": ""}

    def select(self, layers, precision: str) -> "_Backend":
        """Keep ``layers`` (``"all"`` or indices) and run in ``precision`` where the device supports it."""
        from sercore.core.precision import resolve_precision

        total = len(self.layers) + 1
        if layers != "all" and layers[-1] >= total:
            raise ViewUnavailable(f"view 'wav2vec2': layer {layers[-1]} requested but {self.info['source']} has "
                                  f"{total} layers (0..{total - 1})")
        self.keep = list(range(total)) if layers == "all" else list(layers)
        self.precision, note = resolve_precision(precision, self.device)
        self.info.update(layers_kept=layers, precision_used=self.precision, precision_note=note)
        return self

    def cnn(self, wave):
        """``[1, n]`` wave → ``[T, C]`` CNN features."""
        raise NotImplementedError

    def transformer(self, feats, lengths):
        """``[B, T, C]`` padded CNN features, frame ``lengths [B]`` → last hidden state ``[B, T, D]``."""
        raise NotImplementedError

    def hidden_states(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """``[T_i, L, D]`` float32 for each wave (one padded transformer batch), kept layers only."""
        import torch

        from sercore.core.precision import autocast

        captured: dict = {}
        last_index = len(self.layers)
        hooks = []
        if 0 in self.keep:
            hooks.append(self.layers[0].register_forward_pre_hook(
                lambda mod, args, kwargs: _put(captured, 0, args[0] if args else kwargs["hidden_states"]),
                with_kwargs=True))
        for k in self.keep:
            if 0 < k < last_index:  # layer k is the output of transformer layer k - 1
                hooks.append(self.layers[k - 1].register_forward_hook(
                    lambda mod, args, out, k=k: _put(captured, k, _first(out))))
        try:
            with torch.inference_mode(), autocast(self.precision, self.device):
                feats = [self.cnn(self._prepare(w)) for w in waves]
                lengths = torch.tensor([len(f) for f in feats], device=self.device)
                padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
                captured[last_index] = self.transformer(padded, lengths)
                states = torch.stack([captured[k] for k in self.keep], dim=2).float().cpu().numpy()
        finally:
            for hook in hooks:
                hook.remove()
        return [states[i, :n] for i, n in enumerate(lengths.tolist())]

    def _prepare(self, wave: np.ndarray):
        import torch

        x = torch.from_numpy(np.ascontiguousarray(wave)).to(self.device)
        if self.normalize:  # zero mean, unit variance per utterance, as Wav2Vec2FeatureExtractor does
            x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
        return x[None]


def _positional_conv_in_fp32(model) -> None:
    """Run the positional convolution (kernel 128, 16 groups) in fp32 under bf16 autocast.

    In native bf16 on a CPU with AVX-512 bf16/AMX (measured on an Intel Xeon, tiny random model) that one grouped
    convolution alone brought the transformer's input down to 0.964 correlation with fp32; in fp32 it is 0.9999.
    fp32 runs are unchanged (the cast and the disabled autocast do nothing there)."""
    import torch

    for name, module in model.named_modules():
        if name.endswith("pos_conv_embed"):
            forward = module.forward

            def in_fp32(x, *args, _forward=forward, **kwargs):
                with torch.autocast(x.device.type, enabled=False):
                    return _forward(x.float(), *args, **kwargs)

            module.forward = in_fp32


def _put(captured: dict, k: int, value) -> None:
    """Hook body: remember layer ``k``'s hidden state (returns None, so the model's computation is unchanged)."""
    captured[k] = value


def _first(out):
    return out[0] if isinstance(out, tuple) else out


class _TorchaudioBackend(_Backend):
    """A ``torchaudio.models.Wav2Vec2Model`` (from a ``torchaudio.pipelines`` bundle)."""

    def __init__(self, model, device, *, normalize: bool = False, info: dict | None = None):
        super().__init__(model, device, layers=model.encoder.transformer.layers, normalize=normalize,
                         info={"backend": "torchaudio", **(info or {}),
                               "hidden_size": int(model.encoder.feature_projection.projection.out_features)})

    def cnn(self, wave):
        return self.model.feature_extractor(wave, None)[0][0]

    def transformer(self, feats, lengths):
        return self.model.encoder(feats, lengths)


class _HFBackend(_Backend):
    """A ``transformers.Wav2Vec2Model``."""

    def __init__(self, model, device, *, normalize: bool = False, info: dict | None = None):
        super().__init__(model, device, layers=model.encoder.layers, normalize=normalize,
                         info={"backend": "huggingface", **(info or {}), "hidden_size": int(model.config.hidden_size)})

    def cnn(self, wave):
        return self.model.feature_extractor(wave)[0].T

    def transformer(self, feats, lengths):
        import torch

        mask = torch.arange(feats.shape[1], device=feats.device)[None] < lengths[:, None]
        hidden, _ = self.model.feature_projection(feats)
        return self.model.encoder(hidden, attention_mask=mask).last_hidden_state


def load_backend(source: str, device) -> _Backend:
    """Load ``source`` (bundle name, HF id or local folder) on ``device``. If impossible: ``ViewUnavailable`` for
    the default bundle, ``ModelLoadError`` for a source the user named."""
    import torchaudio

    if source.startswith(RANDOM_PREFIX):
        return _load_random(source[len(RANDOM_PREFIX):], device)
    bundle = getattr(torchaudio.pipelines, source, None)
    if isinstance(bundle, torchaudio.pipelines.Wav2Vec2Bundle):
        return _load_torchaudio(source, bundle, device)
    return _load_hf(source, device)


def _load_random(arch: str, device, seed: int = 0) -> _Backend:
    """torchaudio's ``arch`` architecture with random weights (seeded; global RNG state left as it was)."""
    import torch
    import torchaudio

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(torchaudio.models, arch)()
    return _TorchaudioBackend(model, device, normalize=False, info={
        "source": RANDOM_PREFIX + arch, "model": f"{arch} (random weights)", "resolved_path": "none (nothing loaded)",
        "weights": f"random weights (seed {seed}): architecture only, not pretrained"})


def _load_torchaudio(source: str, bundle, device) -> _Backend:
    import torch

    from sercore.core.config import hub_reachable, is_offline

    fail = ViewUnavailable if source == DEFAULT_SOURCE else ModelLoadError
    filename = Path(bundle._path).name  # the checkpoint's file name in torch hub's cache
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    where = (f"checkpoint {filename} is not in torch hub's cache ({cached.parent}); copy it there (or set "
             f"TORCH_HOME), or {_HOW}")
    if not cached.is_file() and is_offline():
        raise fail(f"view 'wav2vec2': torchaudio bundle {source} is unavailable offline: {where}")
    if not cached.is_file() and not hub_reachable(TORCHAUDIO_HOST):
        raise fail(f"view 'wav2vec2': torchaudio bundle {source} is unavailable (no network: {TORCHAUDIO_HOST} "
                   f"is unreachable): {where}")
    try:
        with _socket_timeout(60):
            model = bundle.get_model()
    except Exception as err:  # download or load failure: report what to do instead of a traceback
        raise fail(f"view 'wav2vec2': torchaudio bundle {source} could not be loaded "
                   f"({type(err).__name__}: {err}); {where}") from err
    normalize = bool(getattr(model, "normalize_waveform", False))
    model = getattr(model, "model", model)  # large bundles wrap the model to layer-normalise the waveform
    return _TorchaudioBackend(model, device, normalize=normalize,
                              info={"source": source, "resolved_path": str(cached)})


def _load_hf(source: str, device) -> _Backend:
    """A Hugging Face id or folder: always named by the user, so every failure is a ``ModelLoadError``."""
    from sercore.core.config import hub_reachable, is_offline

    try:
        from transformers import AutoConfig, Wav2Vec2Model
    except ImportError as err:
        raise ModelLoadError(f"view 'wav2vec2': source {source!r} is not a torchaudio bundle and needs the "
                             "`transformers` package (pip install transformers)") from err
    local = Path(source).is_dir()
    if not local and source.startswith(("/", ".", "~")):
        raise ModelLoadError(f"view 'wav2vec2': source folder {source} does not exist; {_HOW}")
    no_network = not local and not is_offline() and not hub_reachable()
    offline = local or is_offline() or no_network
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=offline)
        if config.model_type != "wav2vec2":
            raise ValueError(f"checkpoint is a {config.model_type!r} model, not wav2vec2")
        model = Wav2Vec2Model.from_pretrained(source, local_files_only=offline)
    except Exception as err:  # missing files, offline cache miss, failed download, wrong checkpoint
        state = type(err).__name__
        if not local and offline:
            state = f"{'no network' if no_network else 'offline'}, not in the Hugging Face cache"
        raise ModelLoadError(f"view 'wav2vec2': model {source} could not be loaded ({state}: {err}); "
                             f"{_HOW}") from err
    normalize, note = _hf_normalize(source, offline)
    return _HFBackend(model, device, normalize=normalize,
                      info={"source": source, "resolved_path": _hf_path(source, local), "preprocessing": note})


def _hf_normalize(source: str, offline: bool) -> tuple[bool, str]:
    """The checkpoint's ``do_normalize`` (from ``preprocessor_config.json``); ``False`` when it has none."""
    from transformers import Wav2Vec2FeatureExtractor

    try:
        extractor = Wav2Vec2FeatureExtractor.from_pretrained(source, local_files_only=offline)
    except (OSError, ValueError):
        return False, "no preprocessor_config.json: waveform not normalised"
    return bool(extractor.do_normalize), "from preprocessor_config.json"


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
