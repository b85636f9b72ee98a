"""``wav2vec2``: every hidden layer of a frozen wav2vec 2.0 model → ``[T, L, D]`` (``L = 13``, ``D = 768`` for base).

Layer 0 is the transformer's input (CNN features after the feature projection and the positional convolution,
what Hugging Face returns as ``hidden_states[0]``); layers 1..L-1 are the transformer layers' outputs.
``T ≈ n / 320`` (20 ms frames).

Sources: a ``torchaudio.pipelines`` bundle name (``WAV2VEC2_BASE``, paper A), a Hugging Face model id, or a
local folder holding a Hugging Face checkpoint (``save_pretrained`` layout). Offline (``sercore.config.
is_offline()``) nothing is downloaded: a model missing from the local caches raises ``ViewUnavailable``.

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

from .base import SAMPLE_RATE, View, ViewUnavailable, check_max_seconds, fit_length, register, resolve_device

_HOW = ("pass source=<local folder> holding a Hugging Face wav2vec2 checkpoint (save_pretrained layout), "
        "or run once online so the model lands in the library's cache")


@register
class Wav2Vec2View(View):
    """Frozen wav2vec 2.0 hidden states of all layers, ``[T, L, D]`` float32."""

    name = "wav2vec2"
    version = "1"
    variable = True
    encoder = "wav2vec2"
    _lazy = ("_backend",)

    def __init__(self, *, source: str = "WAV2VEC2_BASE", max_seconds: float | None = None, device: str = "cpu",
                 batch_size: int = 8):
        if not isinstance(source, (str, Path)) or not str(source):
            raise ValueError(f"view 'wav2vec2': source must be a bundle name, model id or folder, got {source!r}")
        source = str(source)
        if Path(source).expanduser().is_dir():
            source = str(Path(source).expanduser().resolve())
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"view 'wav2vec2': batch_size must be a positive integer, got {batch_size!r}")
        self.params = {"source": source, "max_seconds": check_max_seconds("wav2vec2", max_seconds)}
        self.device = device
        self.batch_size = batch_size
        self._backend = None
        resolve_device("wav2vec2", device)

    def _model(self) -> "_Backend":
        if self._backend is None:
            self._backend = load_backend(self.params["source"], resolve_device(self.name, self.device))
        return self._backend

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
        """Source, backend, resolved path, number of layers, width and parameter count of the model used."""
        return {**super().provenance(), **self._model().info}


class _Backend:
    """A loaded wav2vec2 model split into its CNN front end and its transformer (torchaudio or HF)."""

    def __init__(self, model, device, *, layers, normalize: bool, info: dict):
        self.model = model.to(device).float().eval()  # float32 whatever the checkpoint's dtype
        self.device = device
        self.layers = layers  # the transformer's layer modules, for the hooks
        self.normalize = normalize
        self.info = {**info, "num_layers": len(layers) + 1, "normalize_waveform": normalize,
                     "parameters": int(sum(p.numel() for p in model.parameters()))}

    def cnn(self, wave):
        """``[1, n]`` wave → ``[T, C]`` CNN features."""
        raise NotImplementedError

    def transformer(self, feats, lengths):
        """``[B, T, C]`` padded CNN features, frame ``lengths [B]`` → last hidden state ``[B, T, D]``."""
        raise NotImplementedError

    def hidden_states(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """``[T_i, L, D]`` float32 for each wave (one padded transformer batch)."""
        import torch

        captured: list = []
        hooks = [self.layers[0].register_forward_pre_hook(
            lambda mod, args, kwargs: captured.append(args[0] if args else kwargs["hidden_states"]),
            with_kwargs=True)]
        hooks += [layer.register_forward_hook(lambda mod, args, out: captured.append(_first(out)))
                  for layer in self.layers[:-1]]
        try:
            with torch.inference_mode():
                feats = [self.cnn(self._prepare(w)) for w in waves]
                lengths = torch.tensor([len(f) for f in feats], device=self.device)
                padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
                last = self.transformer(padded, lengths)
                states = torch.stack([*captured, last], dim=2).float().cpu().numpy()
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
    """Load ``source`` (bundle name, HF id or local folder) on ``device``; ``ViewUnavailable`` if impossible."""
    import torchaudio

    bundle = getattr(torchaudio.pipelines, source, None)
    if isinstance(bundle, torchaudio.pipelines.Wav2Vec2Bundle):
        return _load_torchaudio(source, bundle, device)
    return _load_hf(source, device)


def _load_torchaudio(source: str, bundle, device) -> _Backend:
    import torch

    from sercore.config import is_offline

    filename = Path(bundle._path).name  # the checkpoint's file name in torch hub's cache
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    where = (f"checkpoint {filename} is not in torch hub's cache ({cached.parent}); copy it there (or set "
             f"TORCH_HOME), or {_HOW}")
    if not cached.is_file() and is_offline():
        raise ViewUnavailable(f"view 'wav2vec2': torchaudio bundle {source} is unavailable offline: {where}")
    try:
        with _socket_timeout(60):
            model = bundle.get_model()
    except Exception as err:  # download or load failure: report what to do instead of a traceback
        raise ViewUnavailable(f"view 'wav2vec2': torchaudio bundle {source} could not be loaded "
                              f"({type(err).__name__}: {err}); {where}") from err
    normalize = bool(getattr(model, "normalize_waveform", False))
    model = getattr(model, "model", model)  # large bundles wrap the model to layer-normalise the waveform
    return _TorchaudioBackend(model, device, normalize=normalize,
                              info={"source": source, "resolved_path": str(cached)})


def _load_hf(source: str, device) -> _Backend:
    from sercore.config import is_offline

    try:
        from transformers import AutoConfig, Wav2Vec2Model
    except ImportError as err:
        raise ViewUnavailable(f"view 'wav2vec2': source {source!r} is not a torchaudio bundle and needs the "
                              "`transformers` package (pip install transformers)") from err
    local = Path(source).is_dir()
    offline = local or is_offline()
    if not local and source.startswith(("/", ".", "~")):
        raise ViewUnavailable(f"view 'wav2vec2': source folder {source} does not exist; {_HOW}")
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=offline)
        if config.model_type != "wav2vec2":
            raise ValueError(f"checkpoint is a {config.model_type!r} model, not wav2vec2")
        model = Wav2Vec2Model.from_pretrained(source, local_files_only=offline)
    except Exception as err:  # missing files, offline cache miss, failed download, wrong checkpoint
        state = "offline, not in the Hugging Face cache" if offline and not local else f"{type(err).__name__}"
        raise ViewUnavailable(f"view 'wav2vec2': model {source} could not be loaded ({state}: {err}); "
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
