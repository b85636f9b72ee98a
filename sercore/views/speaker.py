"""``speaker``: utterance speaker embedding — ECAPA-TDNN ``[192]`` (speechbrain) or Resemblyzer's d-vector ``[256]``.

``model="auto"`` (default) tries ECAPA-TDNN from ``source`` (a Hugging Face id, default
``speechbrain/spkrec-ecapa-voxceleb``, or a local speechbrain folder with ``hyperparams.yaml`` and
``embedding_model.ckpt``) and falls back to Resemblyzer, whose weights ship inside its wheel, with a logged
warning giving the reason. ``model="ecapa"`` raises ``ViewUnavailable`` instead; ``model="resemblyzer"`` never
tries ECAPA.

Cache key: ``params`` hold the request; the model actually used is part of ``version`` (``"1-ecapa"`` or
``"1-resemblyzer"``), so features from the fallback never mix with ECAPA features. Reading ``version`` with
``model="auto"`` therefore loads the model.

``extract_batch`` embeds one utterance at a time: speechbrain's padded batches change the embeddings (the
convolutions see the zero padding near each utterance's end), and ECAPA is cheap next to wav2vec2.
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

import numpy as np

from .base import SAMPLE_RATE, View, ViewUnavailable, register, resolve_device

logger = logging.getLogger(__name__)

MODELS = ("auto", "ecapa", "resemblyzer")
ECAPA_SOURCE = "speechbrain/spkrec-ecapa-voxceleb"
_VERSION = "1"


@register
class SpeakerView(View):
    """Speaker embedding of an utterance: ``[192]`` (ECAPA-TDNN) or ``[256]`` (Resemblyzer fallback)."""

    name = "speaker"
    variable = False
    encoder = "mlp"
    _lazy = ("_encoder",)

    def __init__(self, *, model: str = "auto", source: str = ECAPA_SOURCE, device: str = "cpu"):
        if model not in MODELS:
            raise ValueError(f"view 'speaker': model must be one of {MODELS}, got {model!r}")
        source = str(source)
        if Path(source).expanduser().is_dir():
            source = str(Path(source).expanduser().resolve())
        self.params = {"model": model, "source": source}
        self.device = device
        resolve_device("speaker", device)
        self._encoder = None
        self._used: str | None = None
        self._info: dict = {}

    @property
    def parallel(self) -> bool:  # small models: on CPU, one process per core beats threads
        return str(self.device) == "cpu"

    @property
    def model_used(self) -> str:
        """``"ecapa"`` or ``"resemblyzer"`` (loads the model when ``model="auto"``)."""
        if self.params["model"] != "auto":
            return self.params["model"]
        self._load()
        return self._used

    @property
    def version(self) -> str:  # the model actually used is part of the cache key
        return f"{_VERSION}-{self.model_used}"

    def _load(self):
        if self._encoder is not None:
            return self._encoder
        device = resolve_device(self.name, self.device)
        requested, reason = self.params["model"], None
        if requested in ("auto", "ecapa"):
            try:
                self._encoder = _load_ecapa(self.params["source"], device)
                self._used = "ecapa"
            except ViewUnavailable as err:
                if requested == "ecapa":
                    raise
                reason = str(err)
                logger.warning("speaker view: ECAPA-TDNN unavailable, falling back to Resemblyzer's d-vector. "
                               "Reason: %s", reason)
        if self._encoder is None:
            self._encoder, self._used = _load_resemblyzer(device), "resemblyzer"
        self._info = {"model": self._used, "requested": requested, "fallback": reason is not None,
                      "reason": reason, **_describe(self._used, self._encoder, self.params["source"])}
        return self._encoder

    def extract(self, wave: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
        """Embedding ``[192]`` (ECAPA) or ``[256]`` (Resemblyzer), float32."""
        wave = self.check_wave(wave, sr)
        encoder = self._load()
        if self._used == "ecapa":
            import torch

            with torch.inference_mode():
                emb = encoder.encode_batch(torch.from_numpy(np.ascontiguousarray(wave))[None])
            return emb.reshape(-1).float().cpu().numpy()
        from resemblyzer.audio import normalize_volume
        from resemblyzer.hparams import audio_norm_target_dBFS

        # Resemblyzer's preprocess_wav would also cut pauses with a VAD; utterances are already segmented,
        # and ECAPA gets the whole wave too, so only its volume normalisation is applied.
        wave = normalize_volume(wave, audio_norm_target_dBFS, increase_only=True)
        return np.asarray(encoder.embed_utterance(wave), dtype=np.float32)

    def provenance(self) -> dict:
        """Model actually used, whether it is the fallback and why, its files and size."""
        self._load()
        return {**super().provenance(), **self._info}


def _load_ecapa(source: str, device):
    """speechbrain ``EncoderClassifier`` from a local folder or the hub (no network when offline)."""
    from sercore.config import cache_dir, is_offline

    how = (f"pass source=<local folder> with a speechbrain hyperparams.yaml and embedding_model.ckpt (the "
           f"layout of {ECAPA_SOURCE}), or run once online so it is saved under {cache_dir() / 'models'}")
    local = Path(source).is_dir()
    if not local and source.startswith(("/", ".", "~")):
        raise ViewUnavailable(f"view 'speaker': ECAPA-TDNN folder {source} does not exist; {how}")
    try:
        from speechbrain.inference.speaker import EncoderClassifier
        from speechbrain.utils.fetching import FetchConfig
    except ImportError as err:
        raise ViewUnavailable(f"view 'speaker': speechbrain is not installed ({err}); pip install speechbrain")
    savedir = None if local else cache_dir() / "models" / "speechbrain" / source.replace("/", "--")
    try:
        return EncoderClassifier.from_hparams(source=source, savedir=savedir, run_opts={"device": str(device)},
                                              fetch_config=FetchConfig(allow_network=not is_offline()))
    except Exception as err:  # offline cache miss, failed download, broken folder: say what to do
        offline = " (offline)" if is_offline() and not local else ""
        raise ViewUnavailable(f"view 'speaker': ECAPA-TDNN {source} could not be loaded{offline}: "
                              f"{type(err).__name__}: {err}; {how}") from err


def _load_resemblyzer(device):
    try:
        from resemblyzer import VoiceEncoder
    except ImportError as err:
        raise ViewUnavailable(f"view 'speaker': no ECAPA-TDNN and resemblyzer is not installed ({err}); "
                              "pip install resemblyzer, or provide an ECAPA folder with source=") from err
    return VoiceEncoder(device=device, verbose=False)


def _describe(used: str, encoder, source: str) -> dict:
    """Source, files, output size and parameter count of the loaded encoder."""
    if used == "ecapa":
        module = encoder.mods.embedding_model
        last = getattr(getattr(module, "fc", None), "conv", None)  # ECAPA_TDNN ends in Conv1d(., lin_neurons)
        path = source if Path(source).is_dir() else str(encoder.hparams.savedir or source)
        info = {"source": source, "resolved_path": path, "library": f"speechbrain {metadata.version('speechbrain')}",
                "dim": int(last.out_channels) if last is not None else None}
    else:
        import resemblyzer

        module = encoder
        info = {"source": "resemblyzer.VoiceEncoder (weights in the wheel)",
                "resolved_path": str(Path(resemblyzer.__file__).parent / "pretrained.pt"),
                "library": f"resemblyzer {metadata.version('resemblyzer')}", "dim": 256}
    return {**info, "parameters": int(sum(p.numel() for p in module.parameters()))}
