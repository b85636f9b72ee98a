"""Self-supervised speech models as views: every hidden layer of a frozen model → ``[T, L, D]`` float32.

One view family, one view name per model (``MODELS`` below: the only table to touch to add a model). Each name
is a row of every table and has a default ``source``; any view of the family accepts any ``source``:

- a ``torchaudio.pipelines`` bundle of the wav2vec 2.0 / HuBERT / WavLM family: ``WAV2VEC2_BASE``,
  ``WAV2VEC2_LARGE``, ``WAV2VEC2_LARGE_LV60K``, ``WAV2VEC2_XLSR53``, ``WAV2VEC2_XLSR_300M`` / ``_1B`` / ``_2B``,
  ``HUBERT_BASE`` / ``_LARGE`` / ``_XLARGE``, ``WAVLM_BASE`` / ``_BASE_PLUS`` / ``_LARGE``;
- a Hugging Face model id or a local folder (``save_pretrained`` layout) of a model that returns hidden states:
  wav2vec2, HuBERT, WavLM, data2vec-audio, wav2vec2-conformer, or Whisper (its encoder);
- ``random:<arch>`` (opt-in, for tests and benchmarks): torchaudio's architecture with random weights, seeded
  (``wav2vec2_base``, ``hubert_base``, ``wavlm_base``, their large variants...): true shapes and cost, no
  knowledge; the provenance says "random weights".

Layer 0 is the transformer's input (``hidden_states[0]``), layers 1..L-1 the layers' outputs. Frames are 20 ms
(50 per second): ``(n - 400) // 320 + 1`` for the CNN front ends, ``ceil(n / 320)`` for Whisper, whose encoder
sees 30 s log-mel windows: its output is trimmed to the frames of the audio (``_ssl_backends._WhisperBackend``);
longer utterances are cut into 30 s windows whose outputs are concatenated.

``layers`` keeps some hidden layers (default ``"all"``); ``precision`` (``"auto"``/``"fp32"``/``"bf16"``) runs
the model under bfloat16 autocast where the device has fast bf16 kernels. Both are part of ``params`` (the
cache key), the precision as it resolves on this machine. ``disk_note`` (printed before extraction) gives the
float16 cache size per hour of audio. Offline policy: see ``sercore.views._ssl_load``.

Batching: models with a CNN front end normalised over the whole utterance (wav2vec2-base's GroupNorm) run the
CNN per utterance and the transformer on padded batches with an attention mask (torchaudio bundles, HF
wav2vec2), which leaves valid frames unchanged; other HF models run one utterance at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from sercore.views._ssl_load import RANDOM_ARCHS, RANDOM_PREFIX, load_backend
from sercore.views.base import SAMPLE_RATE, View, check_max_seconds, fit_length, register, resolve_device

FRAMES_PER_SECOND = SAMPLE_RATE / 320  # 20 ms frames for every model of the family


@dataclass(frozen=True)
class SSLModel:
    """One view of the family: its name (a row of the tables), default source and that source's ``(L, D)``."""

    name: str
    source: str
    shape: tuple[int, int]
    about: str


# Adding a model: one line here (a torchaudio bundle name or a Hugging Face id as its default source).
MODELS: tuple[SSLModel, ...] = (
    SSLModel("wav2vec2", "WAV2VEC2_BASE", (13, 768), "wav2vec 2.0 base, LibriSpeech 960 h (paper A)"),
    SSLModel("wav2vec2_large", "WAV2VEC2_LARGE_LV60K", (25, 1024), "wav2vec 2.0 large, Libri-Light 60k h"),
    SSLModel("xlsr_300m", "WAV2VEC2_XLSR_300M", (25, 1024), "XLS-R 300M, 128 languages"),
    SSLModel("hubert_base", "HUBERT_BASE", (13, 768), "HuBERT base, LibriSpeech 960 h"),
    SSLModel("hubert_large", "HUBERT_LARGE", (25, 1024), "HuBERT large, Libri-Light 60k h"),
    SSLModel("wavlm_base", "WAVLM_BASE", (13, 768), "WavLM base, LibriSpeech 960 h"),
    SSLModel("wavlm_base_plus", "WAVLM_BASE_PLUS", (13, 768), "WavLM base+, 94k h"),
    SSLModel("wavlm_large", "WAVLM_LARGE", (25, 1024), "WavLM large, 94k h"),
    SSLModel("data2vec_base", "facebook/data2vec-audio-base", (13, 768), "data2vec-audio base (Hugging Face)"),
    SSLModel("whisper_base", "openai/whisper-base", (7, 512), "Whisper base encoder (Hugging Face)"),
)

# (L, D) known without loading a model: the defaults, the other torchaudio bundles, the random architectures
KNOWN_SHAPES: dict[str, tuple[int, int]] = {
    **{m.source: m.shape for m in MODELS}, "WAV2VEC2_LARGE": (25, 1024), "WAV2VEC2_XLSR53": (25, 1024),
    "WAV2VEC2_XLSR_1B": (49, 1280), "WAV2VEC2_XLSR_2B": (49, 1920), "HUBERT_XLARGE": (49, 1280),
    **{RANDOM_PREFIX + arch: shape for arch, shape in RANDOM_ARCHS.items()}}


class SSLView(View):
    """Frozen hidden states of all (or ``layers``) layers of an SSL speech model, ``[T, L, D]`` float32."""

    default_source: str = ""
    version = "2"  # 2: the positional convolution runs in fp32 under bf16 (fp32 features unchanged)
    variable = True
    encoder = "wav2vec2"  # the layer-weighted encoder (softmax layer weights + pointwise CNN), any L x D
    packages = ("torch", "torchaudio", "transformers")
    frame_rate = FRAMES_PER_SECOND
    _lazy = ("_backend",)

    def __init__(self, *, source: str | None = None, max_seconds: float | None = None,
                 layers: str | Sequence[int] = "all", precision: str = "auto", device: str = "cpu",
                 batch_size: int = 8):
        from sercore.core.precision import check_precision, resolve_precision

        name = self.name
        source = self.default_source if source is None else source
        if not isinstance(source, (str, Path)) or not str(source):
            raise ValueError(f"view {name!r}: source must be a bundle name, model id or folder, got {source!r}")
        source = str(source)
        if Path(source).expanduser().is_dir():
            source = str(Path(source).expanduser().resolve())
        if source.startswith(RANDOM_PREFIX) and source[len(RANDOM_PREFIX):] not in RANDOM_ARCHS:
            raise ValueError(f"view {name!r}: unknown random architecture {source!r}; known: "
                             f"{', '.join(RANDOM_PREFIX + a for a in RANDOM_ARCHS)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"view {name!r}: batch_size must be a positive integer, got {batch_size!r}")
        self.requested_precision = check_precision(precision, f"view {name!r}: precision")
        if self.requested_precision == "auto":  # the key holds what runs: auto resolves differently per machine
            precision = resolve_precision("auto", resolve_device(name, device))[0]
        self.params = {"source": source, "max_seconds": check_max_seconds(name, max_seconds),
                       "layers": check_layers(layers, name), "precision": precision}
        self.device = device
        self.batch_size = batch_size
        self._backend = None
        resolve_device(name, device)
        known = KNOWN_SHAPES.get(source)
        if known and self.params["layers"] != "all" and self.params["layers"][-1] >= known[0]:
            raise ValueError(f"view {name!r}: layer {self.params['layers'][-1]} requested but {source} has "
                             f"{known[0]} layers (0..{known[0] - 1})")

    def _model(self):
        if self._backend is None:
            source = self.params["source"]
            backend = load_backend(source, resolve_device(self.name, self.device), view=self.name,
                                   default=source == self.default_source)
            backend.select(self.params["layers"], self.requested_precision, view=self.name)
            self._backend = backend
        return self._backend

    def layer_shape(self) -> tuple[int, int]:
        """``(L, D)``: layers kept and their width (known without loading for the table's sources)."""
        layers, known = self.params["layers"], KNOWN_SHAPES.get(self.params["source"])
        if known is None:
            info = self._model().info
            known = (info["num_layers"], info["hidden_size"])
        return (known[0] if layers == "all" else len(layers)), known[1]

    def output_shape(self, seconds: float) -> tuple[int, int, int]:
        """``(T, L, D)`` of ``seconds`` of audio (``T`` at 50 frames per second, to a frame)."""
        return (int(round(seconds * self.frame_rate)), *self.layer_shape())

    def estimate_bytes(self, total_seconds: float) -> int:
        """Float16 cache bytes of ``total_seconds`` of audio: seconds × 50 frames/s × L layers × D × 2 bytes."""
        n_layers, dim = self.layer_shape()
        return int(round(total_seconds * FRAMES_PER_SECOND)) * n_layers * dim * 2

    def disk_note(self, total_seconds: float | None = None) -> str:
        """One line: shape, frame rate, cache size per hour of audio (and of ``total_seconds`` when given)."""
        n_layers, dim = self.layer_shape()
        total = "" if total_seconds is None else (f"{total_seconds / 3600:.2f} h of audio -> about "
                                                  f"{self.estimate_bytes(total_seconds) / 1e9:.2f} GB on disk, ")
        return (f"view {self.name} ({self.params['source']}, [T, {n_layers}, {dim}] at {self.frame_rate:g} "
                f"frames/s, float16 cache): {total}{self.estimate_bytes(3600) / 1e9:.2f} GB per hour of audio")

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
        """Source, backend, resolved path, weights (pretrained or random), layers kept, width, parameter count,
        frame rate and precision (requested and used); ``model`` is the name captions show."""
        return {**super().provenance(), "frame_rate": self.frame_rate, **self._model().info}


def check_layers(layers, view: str = "wav2vec2") -> str | list[int]:
    """``"all"`` or a strictly increasing list of non-negative layer indices."""
    if layers == "all":
        return "all"
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise ValueError(f"view {view!r}: layers must be 'all' or a list of layer indices, got {layers!r}")
    out = list(layers)
    if not out or any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0 for i in out):
        raise ValueError(f"view {view!r}: layers must be non-negative integers, got {layers!r}")
    out = [int(i) for i in out]
    if out != sorted(set(out)):
        raise ValueError(f"view {view!r}: layers must be strictly increasing, got {layers!r}")
    return out


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_")) + "View"


def ssl_views() -> list[str]:
    """Names of the views of the family, in table order."""
    return [m.name for m in MODELS]


for _m in MODELS:  # one registered class per model: importable by name, so views pickle to worker processes
    _cls = type(_class_name(_m.name), (SSLView,), {"name": _m.name, "default_source": _m.source,
                                                   "__module__": __name__, "__doc__": f"{_m.about}: {SSLView.__doc__}"})
    globals()[_cls.__name__] = register(_cls)
del _m, _cls
