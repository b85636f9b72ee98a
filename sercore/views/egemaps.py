"""``egemaps``: the 88 eGeMAPSv02 functionals of an utterance, computed by opensmile."""

from __future__ import annotations

import warnings

import numpy as np

from sercore.views.base import SAMPLE_RATE, View, register


@register
class EgemapsView(View):
    """opensmile ``eGeMAPSv02`` at the ``Functionals`` level → ``[88]``. CPU-bound: run in a process pool."""

    name = "egemaps"
    version = "1"
    parallel = True
    encoder = "mlp"
    packages = ("opensmile",)
    _lazy = ("_smile",)

    def __init__(self):
        self.params = {}  # nothing to choose: always eGeMAPSv02 functionals
        self._smile = None

    def _extractor(self):
        if self._smile is None:
            import opensmile

            self._smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                          feature_level=opensmile.FeatureLevel.Functionals)
        return self._smile

    def extract(self, wave: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
        """88 functionals, float32; ``ValueError`` naming the features when opensmile returns NaN."""
        wave = self.check_wave(wave, sr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Segment too short": reported below instead
            frame = self._extractor().process_signal(wave, SAMPLE_RATE)
        values = frame.to_numpy(dtype=np.float64).reshape(-1)
        if values.shape != (88,):
            raise ValueError(f"view 'egemaps': opensmile returned {values.shape} values, expected 88")
        bad = [name for name, v in zip(frame.columns, values) if not np.isfinite(v)]
        if bad:
            raise ValueError(f"view 'egemaps': opensmile returned NaN/inf for {len(bad)} of 88 features "
                             f"(e.g. {bad[0]}) on a wave of {len(wave) / SAMPLE_RATE:.3f} s; the input is "
                             "probably too short or degenerate")
        return values.astype(np.float32)

    def feature_names(self) -> list[str]:
        """The 88 feature names, in output order."""
        return list(self._extractor().feature_names)

    def provenance(self) -> dict:
        """Feature set and opensmile's version."""
        import opensmile

        return {**super().provenance(), "feature_set": "eGeMAPSv02", "feature_level": "Functionals",
                "library": f"opensmile {opensmile.__version__}"}
