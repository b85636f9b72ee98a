"""Test-set representations of one fold from three kinds of view encoders (paper A, Figures 5/6 and Table 3).

``pre-trained``: Pairwise-CL encoders after pre-training, before any label is seen; ``supervised``: the same
encoders trained from scratch on all training labels; ``random``: freshly initialised encoders (MLP inputs
still z-normalised with the training fold's statistics). Every representation is the 128-d encoder output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .analysis import pairwise_similarity
from .featureset import FeatureSet
from .protocols import fold_data
from .train import (FinetuneConfig, PretrainConfig, default_encoder, embed, normalize_if_needed,
                    pretrain_pairwise, supervised_baseline)

MODELS = ("pre-trained", "supervised", "random")


@dataclass
class FoldRepresentations:
    """``vectors[(model, view)]``: ``[N, 128]`` on the fold's test utterances ``ids`` with ``labels``."""

    fold: int
    ids: list[str]
    labels: list[str]
    vectors: dict[tuple[str, str], np.ndarray]

    def by_model(self, model: str) -> dict[str, np.ndarray]:
        """``{view: [N, 128]}`` of one model kind."""
        return {view: z for (m, view), z in self.vectors.items() if m == model}


def fold_representations(manifest: pd.DataFrame, task: pd.DataFrame, splits: pd.DataFrame,
                         features: dict[str, FeatureSet], fold: int, *, views: Sequence[str] | None = None,
                         pretrain_config: PretrainConfig | None = None,
                         finetune_config: FinetuneConfig | None = None, models: Sequence[str] = MODELS,
                         device="cpu") -> FoldRepresentations:
    """Encode the test set of ``fold`` with pre-trained, supervised and random encoders of every view.

    Pre-training uses all ``features`` (the fold's training/validation pool, never its test group); the
    supervised encoders use all labels of the training groups, model selection on the validation group.
    """
    views = list(views or features)
    data = fold_data(manifest, task, splits, fold)
    seed = (finetune_config or FinetuneConfig()).seed
    vectors: dict[tuple[str, str], np.ndarray] = {}
    if "pre-trained" in models:
        encoders = pretrain_pairwise(features, data.pool_train, data.pool_val, config=pretrain_config,
                                     device=device).encoders
        for view in views:
            vectors[("pre-trained", view)] = embed(encoders[view], features[view], data.test_ids, device)
    for view in views:
        if "supervised" in models:
            result = supervised_baseline(features[view], data.train_ids, data.train_labels, data.val_ids,
                                         data.val_labels, config=finetune_config, device=device)
            vectors[("supervised", view)] = embed(result.model.encoder, features[view], data.test_ids, device)
        if "random" in models:
            encoder = default_encoder(features[view], seed=seed)
            normalize_if_needed(encoder, features[view], data.pool_train)
            vectors[("random", view)] = embed(encoder, features[view], data.test_ids, device)
    return FoldRepresentations(fold, list(data.test_ids), list(data.test_labels), vectors)


def alignment_table(reps: Sequence[FoldRepresentations], *, seed: int = 0, n_repeats: int = 10) -> pd.DataFrame:
    """PWCCA and linear CKA for every pair of views, per fold and model kind, plus the random-vectors baseline.

    Columns ``fold, condition, view_a, view_b, pwcca, cka``; ``condition`` is a model kind or
    ``random vectors`` (independent Gaussian tables of the same shapes, paper A's "Random" row).
    """
    frames = []
    for rep in reps:
        models = list(dict.fromkeys(m for m, _ in rep.vectors))
        kw = _reduction(len(rep.ids), max(z.shape[1] for z in rep.vectors.values()))
        for model in models:
            table = pairwise_similarity(rep.by_model(model), seed=seed, **kw)
            frames.append(table.assign(fold=rep.fold, condition=model, **kw))
        table = pairwise_similarity(rep.by_model(models[0]), random=True, seed=seed, n_repeats=n_repeats, **kw)
        frames.append(table.assign(fold=rep.fold, condition="random vectors", **kw))
    out = pd.concat(frames, ignore_index=True)
    out["pair"] = out["view_a"] + "-" + out["view_b"]
    return out[["fold", "condition", "pair", "view_a", "view_b", "pwcca", "cka"] + (["max_dims"] if "max_dims" in out else [])]


def _reduction(n_samples: int, width: int) -> dict:
    """CCA needs rank_x + rank_y < n_samples: with fewer test utterances than that, keep the top principal
    directions of each representation (SVCCA-style), recorded in the table's ``max_dims`` column."""
    if 2 * width <= n_samples - 1:
        return {}
    return {"max_dims": max(1, (n_samples - 1) // 2)}
