"""End to end on the tiny synthetic corpus: features → Pairwise-CL pre-training (egemaps + mel + speaker) →
frozen linear probes and fine-tuning, against randomly initialised encoders and the supervised baseline.

Fold 0 of the 5 sessions (test Session1, validation Session2, 144 unlabelled training utterances, 72 labelled).
Probe scores are the mean of validation and test UAR (48 utterances each), the random baseline the mean over two
random initialisations. Pre-training uses τ = 0.1 (of the paper's grid), at which every view's probe gains here.
"""

import numpy as np
import pytest
import torch
from torch import nn

from sercore.data import load_dataset, make_splits, target_subset
from sercore.features.cache import extract_features
from sercore.features.featureset import FeatureSet
from sercore.pairwise.pretrain import PretrainConfig, pretrain_pairwise
from sercore.training import (
    FinetuneConfig,
    default_encoder,
    embed,
    finetune,
    fold_data,
    normalize_if_needed,
    supervised_baseline,
)
from sercore.views import get_view

pytestmark = pytest.mark.slow  # the module fixture extracts and pre-trains three views: about a minute

VIEWS = ("egemaps", "mel", "speaker")
PROBE = FinetuneConfig(max_epochs=60, frozen=True, lr=1e-2, patience=None)


class Concat(nn.Module):
    """Identity on pre-computed (concatenated) representations, so ``finetune`` can probe them."""

    def __init__(self, dim):
        super().__init__()
        self.out_dim = dim
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x, lengths=None):
        return x


@pytest.fixture(scope="module")
def setup():
    manifest = load_dataset("default", size="tiny")
    task = target_subset(manifest)
    splits = make_splits(manifest)
    features = {v: extract_features(manifest, get_view(v), workers=2, progress=False) for v in VIEWS}
    data = fold_data(manifest, task, splits, 0)
    result = pretrain_pairwise(features, data.pool_train, data.pool_val,
                               config=PretrainConfig(max_epochs=30, batch_size=64, temperature=0.1, seed=0))
    return features, data, result


def _probe(encoder, features, data):
    m = finetune(encoder, features, data.train_ids, data.train_labels, data.val_ids, data.val_labels, config=PROBE,
                 test_ids=data.test_ids, test_labels=data.test_labels).metrics
    return (m["val_uar"] + m["test_uar"]) / 2


def _random_encoders(features, data, seed):
    encoders = {v: default_encoder(features[v], seed=seed) for v in VIEWS}
    for v in VIEWS:
        normalize_if_needed(encoders[v], features[v], data.pool_train)  # as the pre-trained ones
    return encoders


def _concat_probe(encoders, features, data):
    ids = data.train_ids + data.val_ids + data.test_ids
    reps = np.concatenate([embed(encoders[v], features[v], ids) for v in VIEWS], axis=1)
    return _probe(Concat(reps.shape[1]), FeatureSet(ids, reps), data)


def test_pretraining_uses_training_sessions_and_lowers_the_loss(setup):
    features, data, result = setup
    assert len(data.pool_train) == 144 and len(data.train_ids) == 72
    assert all(u.startswith("S1") for u in data.test_ids)  # Session1: speakers S1F, S1M
    assert not [u for u in data.pool_train + data.pool_val if u.startswith("S1")]
    assert features["speaker"].feature_shape in ((192,), (256,)) and features["mel"].variable
    hist = result.history
    assert hist["val_loss"].min() < hist["val_loss"].iloc[0] - 0.5, hist


def test_pretrained_probes_beat_random_encoders(setup):
    features, data, result = setup
    randoms = [_random_encoders(features, data, seed) for seed in (0, 1)]
    scores = {}
    for view in VIEWS:
        scores[view] = (_probe(result.encoders[view], features[view], data),
                        np.mean([_probe(r[view], features[view], data) for r in randoms]))
    scores["3-view"] = (_concat_probe(result.encoders, features, data),
                        np.mean([_concat_probe(r, features, data) for r in randoms]))
    print({k: tuple(round(float(x), 3) for x in v) for k, v in scores.items()})
    for name in ("mel", "speaker", "3-view"):
        pre, rand = scores[name]
        assert pre > rand + 0.05, (name, scores)
    # A random MLP over z-normalised eGeMAPS functionals is a near full-rank projection of already strong features,
    # so it is as good a linear probe as the pre-trained one: over pre-training seeds 0-3 the eGeMAPS probe scored
    # 0.604-0.708 against 0.635 random (mel 0.625-0.667 vs 0.479, speaker 0.542-0.604 vs 0.479, 3-view 0.708-0.729
    # vs 0.562). On the small corpus (5 folds x 3 seeds, logistic-regression probe) it is 0.611-0.644 vs 0.613, while
    # the speaker-id probe of the same encoder rises (0.831-0.858 random -> 0.860-0.894): aligned with mel, eGeMAPS
    # gains what the two views share most, the speaker. So for eGeMAPS only a clearly-above-chance probe is asserted.
    assert scores["egemaps"][0] > 0.45, scores


def test_finetuned_and_supervised_models_learn(setup):
    features, data, result = setup
    config = FinetuneConfig(max_epochs=20, patience=10)
    for view in VIEWS:
        tuned = finetune(result.encoders[view], features[view], data.train_ids, data.train_labels, data.val_ids,
                         data.val_labels, config=config, test_ids=data.test_ids, test_labels=data.test_labels)
        sup = supervised_baseline(features[view], data.train_ids, data.train_labels, data.val_ids, data.val_labels,
                                  config=config, test_ids=data.test_ids, test_labels=data.test_labels,
                                  norm_ids=data.pool_train)
        print(view, "tuned", tuned.metrics, "supervised", sup.metrics)
        assert tuned.metrics["val_uar"] > 0.4 and sup.metrics["val_uar"] > 0.4, (view, tuned.metrics, sup.metrics)
