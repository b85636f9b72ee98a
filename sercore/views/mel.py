"""``mel``: log mel spectrogram ``[T, 64]`` (paper A: 64 bands, 25 ms window, 10 ms hop, 60–7800 Hz)."""

from __future__ import annotations

import numpy as np

from sercore.views.base import SAMPLE_RATE, View, check_max_seconds, fit_length, register

LOG_FLOOR = 1e-6  # features are log(power + LOG_FLOOR)


@register
class MelView(View):
    """torchaudio ``MelSpectrogram`` (power, HTK mel scale, centred frames), then ``log(x + 1e-6)``.

    ``max_seconds=None`` keeps the utterance length (``T = n // hop + 1``); a number trims or zero-pads the
    wave to exactly that length first (paper A: 15 s), so every utterance has the same ``T``.
    """

    name = "mel"
    version = "1"
    variable = True
    parallel = True  # cheap per file: a process per core beats torch threads
    encoder = "mel"
    packages = ("torch", "torchaudio")
    _lazy = ("_transform",)

    def __init__(self, *, max_seconds: float | None = None, n_mels: int = 64, win_length: int = 400,
                 hop_length: int = 160, f_min: float = 60.0, f_max: float = 7800.0):
        if not 0 <= f_min < f_max <= SAMPLE_RATE / 2:
            raise ValueError(f"view 'mel': need 0 <= f_min < f_max <= {SAMPLE_RATE // 2} Hz, got {f_min}, {f_max}")
        for key, value in (("n_mels", n_mels), ("win_length", win_length), ("hop_length", hop_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"view 'mel': {key} must be a positive integer, got {value!r}")
        self.params = {"max_seconds": check_max_seconds("mel", max_seconds), "n_mels": n_mels,
                       "win_length": win_length, "hop_length": hop_length, "f_min": float(f_min),
                       "f_max": float(f_max)}
        self.min_samples = win_length
        self._transform = None

    def _mel(self):
        if self._transform is None:
            import torchaudio

            p = self.params
            self._transform = torchaudio.transforms.MelSpectrogram(
                sample_rate=SAMPLE_RATE, n_fft=p["win_length"], win_length=p["win_length"],
                hop_length=p["hop_length"], f_min=p["f_min"], f_max=p["f_max"], n_mels=p["n_mels"], power=2.0)
        return self._transform

    def extract(self, wave: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
        """Log mel spectrogram ``[T, n_mels]`` float32."""
        import torch

        wave = fit_length(self.check_wave(wave, sr), self.params["max_seconds"])
        with torch.no_grad():
            power = self._mel()(torch.from_numpy(np.ascontiguousarray(wave)))
        return torch.log(power + LOG_FLOOR).T.numpy().astype(np.float32, copy=False)

    def provenance(self) -> dict:
        """Parameters and torchaudio's version."""
        import torchaudio

        return {**super().provenance(), "library": f"torchaudio {torchaudio.__version__}",
                "transform": "MelSpectrogram(power=2, mel_scale=htk, center=True) -> log(x + 1e-6)"}
