"""View-level encoders behind one registry, plus the projection head and the classifier.

``available_encoders()`` lists the encoder kinds, ``build_encoder(kind, feature_shape, **cfg)`` builds one and
``register_encoder(kind)`` adds one (see ``sercore.models.registry``).
"""

from sercore.models import encoders  # noqa: E402,F401  (registers wav2vec2, mel, mlp)
from sercore.models.encoders import learnt_layer_weights  # noqa: E402
from sercore.models.registry import available_encoders, build_encoder, get_encoder, register_encoder

__all__ = ["available_encoders", "build_encoder", "get_encoder", "learnt_layer_weights", "register_encoder"]
