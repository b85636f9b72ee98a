"""``speaker``: utterance speaker embedding — ECAPA-TDNN ``[192]`` (speechbrain) or Resemblyzer's d-vector ``[256]``.

``model="auto"`` (default) tries ECAPA-TDNN from ``source`` (a Hugging Face id, default
``speechbrain/spkrec-ecapa-voxceleb``, or a local speechbrain folder with ``hyperparams.yaml`` and
``embedding_model.ckpt``). Only the default source falls back: when it cannot be loaded (offline, no network,
failed download) Resemblyzer, whose weights ship inside its wheel, is used with a logged warning giving the
reason, and ``model="ecapa"`` raises ``ViewUnavailable`` instead (the view is skipped). A ``source`` the user
names (any other folder or id) that fails to load raises ``sercore.core.config.ModelLoadError`` naming it and why:
it never falls back silently. ``model="resemblyzer"`` never tries ECAPA.

Without ``--offline`` the hub is tried only when ``sercore.core.config.hub_reachable()`` (a 2 s connection check,
once per process); otherwise it is treated as offline and the reason says "no network".

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

from sercore.core.config import ModelLoadError
from sercore.views.base import SAMPLE_RATE, View, ViewUnavailable, register, resolve_device

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
    packages = ("torch", "torchaudio", "speechbrain", "resemblyzer")
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
        if self._used is not None:  # decided before (e.g. in the parent of a worker): load that same model
            self._encoder = _load_ecapa(self.params["source"], device) if self._used == "ecapa" \
                else _load_resemblyzer(device)
            return self._encoder
        requested, reason = self.params["model"], None
        if requested in ("auto", "ecapa"):
            try:
                self._encoder = _load_ecapa(self.params["source"], device)
                self._used = "ecapa"
            except ViewUnavailable as err:  # the default source only; a named one raises ModelLoadError
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
    """speechbrain ``EncoderClassifier`` from a local folder or the hub (no network when offline or unreachable).

    Failures raise ``ViewUnavailable`` for the default source (the caller may fall back) and ``ModelLoadError``
    for a source the user named.
    """
    from sercore.core.config import cache_dir, hub_reachable, is_offline

    local, explicit = Path(source).is_dir(), source != ECAPA_SOURCE
    fail = ModelLoadError if explicit else ViewUnavailable
    kind = "folder" if local or source.startswith(("/", ".", "~")) else "model"
    what = f"ECAPA-TDNN {kind} {source}" + (" (named with source=)" if explicit else "")
    if explicit:
        how = (f"it needs the layout of {ECAPA_SOURCE}: a speechbrain hyperparams.yaml and embedding_model.ckpt "
               f"(a hub id needs network once, or its copy under {cache_dir() / 'models'}); leave source= out to "
               "use the default model with the Resemblyzer fallback")
    else:
        how = (f"pass source=<local folder> with a speechbrain hyperparams.yaml and embedding_model.ckpt (the "
               f"layout of {ECAPA_SOURCE}), or run once online so it is saved under {cache_dir() / 'models'}")
    if not local and source.startswith(("/", ".", "~")):
        raise fail(f"view 'speaker': {what} does not exist; {how}")
    try:
        from speechbrain.inference.speaker import EncoderClassifier
        from speechbrain.utils.fetching import FetchConfig
    except ImportError as err:
        raise fail(f"view 'speaker': {what} needs speechbrain, which is not installed ({err}); "
                   "pip install speechbrain") from err
    offline = ""  # why the hub is not tried
    if not local and is_offline():
        offline = " (offline)"
    elif not local and not hub_reachable():
        offline = " (no network: the Hugging Face hub is unreachable)"
    savedir = None if local else cache_dir() / "models" / "speechbrain" / source.replace("/", "--")
    try:
        return EncoderClassifier.from_hparams(source=source, savedir=savedir, run_opts={"device": str(device)},
                                              fetch_config=FetchConfig(allow_network=not local and not offline))
    except Exception as err:  # offline cache miss, failed download, broken folder: say what to do
        raise fail(f"view 'speaker': {what} could not be loaded{offline}: {type(err).__name__}: {err}; "
                   f"{how}") from err


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
