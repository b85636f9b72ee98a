"""Backends of the SSL speech-model views (``sercore.views.ssl``): a loaded model → ``[T, L, D]`` hidden states.

- ``_TorchaudioBackend``: a ``torchaudio.models.Wav2Vec2Model`` (wav2vec 2.0, XLS-R, HuBERT, WavLM bundles and
  the random architectures): CNN per utterance, transformer on padded batches with hooks on its layers.
- ``_HFBackend``: a ``transformers.Wav2Vec2Model``, the same split (what the ``wav2vec2`` view always used).
- ``_HFHiddenStatesBackend``: any other Hugging Face audio model that returns ``hidden_states`` (HuBERT, WavLM,
  data2vec-audio, wav2vec2-conformer): one utterance at a time (no padding can change a frame).
- ``_WhisperBackend``: Whisper's encoder. Whisper takes log-mel windows of exactly 30 s: each utterance is cut
  into 30 s windows, each window padded as Whisper expects, and the encoder output of a window is trimmed to
  the audio it holds (50 frames/s: ``ceil(n / 320)`` frames for ``n`` samples), so no frame of padding is kept.
"""

from __future__ import annotations

import math

import numpy as np

from sercore.views.base import ViewUnavailable


def _positional_conv_in_fp32(model) -> None:
    """Run the positional convolution (wav2vec 2.0 family: kernel 128, 16 groups) in fp32 under bf16 autocast.

    In native bf16 on a CPU with AVX-512 bf16/AMX (measured on an Intel Xeon, tiny random wav2vec2) that one
    grouped convolution alone brought the transformer's input down to 0.964 correlation with fp32; in fp32 it is
    0.9999. fp32 runs are unchanged (the cast and the disabled autocast do nothing there)."""
    import torch

    for name, module in model.named_modules():
        if name.endswith("pos_conv_embed"):
            forward = module.forward

            def in_fp32(x, *args, _forward=forward, **kwargs):
                with torch.autocast(x.device.type, enabled=False):
                    return _forward(x.float(), *args, **kwargs)

            module.forward = in_fp32


class _Backend:
    """A loaded model and what it reports (``info``); ``hidden_states`` gives the kept layers of each wave."""

    def __init__(self, model, device, *, n_layers: int, normalize: bool, info: dict):
        self.model = model.to(device).float().eval()  # float32 whatever the checkpoint's dtype
        _positional_conv_in_fp32(self.model)
        self.device = device
        self.n_layers = n_layers
        self.normalize = normalize
        self.keep = list(range(n_layers))
        self.precision = "fp32"
        self.info = {"weights": "pretrained", "model": info.get("source"), **info, "num_layers": n_layers,
                     "normalize_waveform": normalize, "parameters": int(sum(p.numel() for p in model.parameters())),
                     "layers_kept": "all", "precision_used": "fp32", "precision_note": ""}

    def select(self, layers, precision: str, view: str = "wav2vec2") -> "_Backend":
        """Keep ``layers`` (``"all"`` or indices) and run in ``precision`` where the device supports it."""
        from sercore.core.precision import resolve_precision

        total = self.n_layers
        if layers != "all" and layers[-1] >= total:
            raise ViewUnavailable(f"view {view!r}: layer {layers[-1]} requested but {self.info['source']} has "
                                  f"{total} layers (0..{total - 1})")
        self.keep = list(range(total)) if layers == "all" else list(layers)
        self.precision, note = resolve_precision(precision, self.device)
        self.info.update(layers_kept=layers, precision_used=self.precision, precision_note=note)
        return self

    def hidden_states(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """``[T_i, L, D]`` float32 for each wave, kept layers only."""
        raise NotImplementedError

    def _prepare(self, wave: np.ndarray):
        import torch

        x = torch.from_numpy(np.ascontiguousarray(wave)).to(self.device)
        if self.normalize:  # zero mean, unit variance per utterance, as Wav2Vec2FeatureExtractor does
            x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
        return x[None]


class _SplitBackend(_Backend):
    """A wav2vec2-style model split into its CNN front end and its transformer, hooked on the layers."""

    def __init__(self, model, device, *, layers, normalize: bool, info: dict):
        super().__init__(model, device, n_layers=len(layers) + 1, normalize=normalize, info=info)
        self.layers = layers  # the transformer's layer modules, for the hooks
        self.per_utterance = False  # True: the transformer takes no attention mask (one utterance per call)

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

        if self.per_utterance and len(waves) > 1:
            return [states for w in waves for states in self.hidden_states([w])]
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


def _put(captured: dict, k: int, value) -> None:
    """Hook body: remember layer ``k``'s hidden state (returns None, so the model's computation is unchanged)."""
    captured[k] = value


def _first(out):
    return out[0] if isinstance(out, tuple) else out


class _TorchaudioBackend(_SplitBackend):
    """A ``torchaudio.models.Wav2Vec2Model`` (wav2vec 2.0, HuBERT and WavLM bundles share this class)."""

    def __init__(self, model, device, *, normalize: bool = False, info: dict | None = None):
        super().__init__(model, device, layers=model.encoder.transformer.layers, normalize=normalize,
                         info={"backend": "torchaudio", **(info or {}),
                               "hidden_size": int(model.encoder.feature_projection.projection.out_features)})
        # torchaudio's WavLM attention accepts no padding mask: its utterances run one at a time
        self.per_utterance = type(self.layers[0].attention).__name__ == "WavLMSelfAttention"

    def cnn(self, wave):
        return self.model.feature_extractor(wave, None)[0][0]

    def transformer(self, feats, lengths):
        return self.model.encoder(feats, None if self.per_utterance else lengths)


class _HFBackend(_SplitBackend):
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


class _HFHiddenStatesBackend(_Backend):
    """Any Hugging Face audio encoder called as ``model(wave, output_hidden_states=True)``, one wave at a time."""

    def __init__(self, model, device, *, normalize: bool = False, info: dict | None = None):
        config = model.config
        super().__init__(model, device, n_layers=int(config.num_hidden_layers) + 1, normalize=normalize,
                         info={"backend": "huggingface", **(info or {}), "hidden_size": int(config.hidden_size)})

    def hidden_states(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        from sercore.core.precision import autocast

        out = []
        with torch.inference_mode(), autocast(self.precision, self.device):
            for wave in waves:
                states = self.model(self._prepare(wave), output_hidden_states=True).hidden_states
                out.append(torch.stack([states[k][0] for k in self.keep], dim=1).float().cpu().numpy())
        return out


class _WhisperBackend(_Backend):
    """Whisper's encoder on 30 s log-mel windows, each window's output trimmed to its audio (``ceil(n/320)``)."""

    def __init__(self, model, device, *, extractor, info: dict | None = None):
        encoder = model.get_encoder() if hasattr(model, "get_encoder") else model
        config = model.config
        super().__init__(encoder, device, n_layers=int(config.encoder_layers) + 1, normalize=False,
                         info={"backend": "huggingface", **(info or {}), "hidden_size": int(config.d_model),
                               "preprocessing": "Whisper log-mel, 30 s windows; output trimmed to the audio"})
        self.extractor = extractor
        self.window = int(extractor.n_samples)  # 480000 samples: 30 s
        self.stride = 2 * int(extractor.hop_length)  # 320 samples per encoder frame (50 Hz)

    def hidden_states(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        from sercore.core.precision import autocast

        out = []
        with torch.inference_mode(), autocast(self.precision, self.device):
            for wave in waves:
                parts = []
                for start in range(0, len(wave), self.window):
                    chunk = wave[start:start + self.window]
                    mel = self.extractor(chunk, sampling_rate=16000, return_tensors="pt")["input_features"]
                    states = self.model(mel.to(self.device), output_hidden_states=True).hidden_states
                    frames = math.ceil(len(chunk) / self.stride)
                    parts.append(torch.stack([states[k][0, :frames] for k in self.keep], dim=1).float().cpu())
                out.append(torch.cat(parts).numpy())
        return out
