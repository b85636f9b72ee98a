"""Paper A's Table 5: frozen and trainable parameters per view and stage."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sercore.features.featureset import FeatureSet
from sercore.models.encoders import EncoderClassifier, ProjectionHead, count_parameters
from sercore.pairwise.pretrain import PretrainConfig
from sercore.training import default_encoder


def extractor_parameters(features: FeatureSet) -> int:
    """Parameters of the frozen model that produced the features (``meta['provenance']['parameters']``), or 0."""
    provenance = features.meta.get("provenance") or {}
    return int(provenance.get("parameters") or 0)


def parameter_counts(features: dict[str, FeatureSet], *, n_classes: int = 4, encoder_cfg: dict | None = None,
                     pretrain_config: PretrainConfig | None = None) -> pd.DataFrame:
    """Table 5: frozen and trainable parameters per view (frozen/tuned fine-tuning) and for pre-training.

    Columns ``stage, view, frozen, frozen_params, trainable_params``; the frozen feature extractor (wav2vec 2.0)
    counts as frozen where the FeatureSet's provenance gives ``parameters``.
    """
    config = pretrain_config or PretrainConfig()
    rows, pre_trainable, pre_frozen = [], 0, 0
    for view, fs in features.items():
        encoder = default_encoder(fs, seed=0, **(encoder_cfg or {}).get(view, {}))
        extractor = extractor_parameters(fs)
        model = EncoderClassifier(encoder, encoder.out_dim, n_classes)
        tuned, _ = count_parameters(model)
        classifier, _ = count_parameters(model.classifier)
        rows.append(dict(stage="fine-tuning", view=view, frozen=False, frozen_params=extractor,
                         trainable_params=tuned))
        rows.append(dict(stage="fine-tuning", view=view, frozen=True, frozen_params=extractor + tuned - classifier,
                         trainable_params=classifier))
        head, _ = count_parameters(ProjectionHead(encoder.out_dim, config.proj_hidden, config.proj_dim))
        pre_trainable += tuned - classifier + head
        pre_frozen += extractor
    rows.append(dict(stage="pre-training", view="+".join(features), frozen=np.nan, frozen_params=pre_frozen,
                     trainable_params=pre_trainable))
    return pd.DataFrame(rows)
