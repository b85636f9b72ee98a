"""``wav2vec2``: every hidden layer of a frozen wav2vec 2.0 model → ``[T, L, D]`` (``L = 13``, ``D = 768`` for base).

The view is one of the SSL speech-model family (``sercore.views.ssl``, default source ``WAV2VEC2_BASE``, paper
A); its name, params, version and cache key are those it always had. This module keeps the names older code
imports (the view class, the backends and the loader).
"""

from __future__ import annotations

from sercore.views._ssl_backends import _Backend, _HFBackend, _TorchaudioBackend  # noqa: F401
from sercore.views._ssl_load import RANDOM_PREFIX, TORCHAUDIO_HOST, load_backend, load_random  # noqa: F401
from sercore.views.ssl import FRAMES_PER_SECOND, KNOWN_SHAPES, Wav2vec2View, check_layers  # noqa: F401

DEFAULT_SOURCE = "WAV2VEC2_BASE"  # only the default is skipped, not an error, when it cannot be loaded
Wav2Vec2View = Wav2vec2View
