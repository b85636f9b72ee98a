"""Cluster-contrastive pre-training: loss, pseudo-labels, batch sampler, GRL head, training loop, evaluation table."""

import math
import warnings

import numpy as np
import pytest
import torch
from fixtures_grids import cluster_evaluation_corpus, cluster_features, evaluation_grid, speaker_data
from golden import golden
from sklearn.metrics import adjusted_rand_score

from sercore.clusters.evaluate import COLUMNS, ClusterGrid, evaluate_cluster_pretraining
from sercore.clusters.loss import cluster_contrastive_loss, contrast_masks
from sercore.clusters.pretrain import (
    ClusterPretrainConfig,
    SpeakerHead,
    grad_reverse,
    lambda_at,
    pretrain_cluster_contrastive,
)
from sercore.clusters.sampler import SpeakerClusterBatchSampler, pseudo_labels, pseudo_speakers
from sercore.data.splits import LeakageError
from sercore.features.featureset import FeatureSet
from sercore.training import FinetuneConfig, fold_data
from sercore.training.grid import ExperimentData


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models: one intra-op thread is ~15x faster than two on a busy shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _loop_loss(z, speaker, cluster, temperature, negatives):
    """Reference: explicit loops over anchors, positives and the denominator set, in float64."""
    z = [np.asarray(v, dtype=np.float64) / np.linalg.norm(v) for v in z.tolist()]
    losses = []
    for i in range(len(z)):
        pos = [j for j in range(len(z)) if j != i and speaker[j] == speaker[i] and cluster[j] == cluster[i]]
        den = [j for j in range(len(z)) if j != i and (negatives == "all" or speaker[j] == speaker[i])]
        if not pos or len(den) == len(pos):
            continue
        total = sum(math.exp(float(z[i] @ z[a]) / temperature) for a in den)
        losses.append(-sum(float(z[i] @ z[p]) / temperature - math.log(total) for p in pos) / len(pos))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("negatives", ["speaker", "all"])
def test_loss_matches_explicit_loops(negatives):
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(14, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    # speaker 2 has one cluster only (no same-speaker negative); utterance 13 has no positive
    speaker = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 1, 3])
    cluster = torch.tensor([0, 0, 1, 1, 1, 0, 0, 5, 5, 0, 0, 0, 7, 0])
    for temperature in (0.1, 0.5):
        got = cluster_contrastive_loss(z, speaker, cluster, temperature=temperature, negatives=negatives)
        assert got.item() == pytest.approx(_loop_loss(z.detach(), speaker.tolist(), cluster.tolist(), temperature,
                                                      negatives), rel=1e-9)
    got.backward()
    assert torch.isfinite(z.grad).all()
    assert z.grad[13].abs().sum() > 0 if negatives == "all" else z.grad[13].abs().sum() == 0


def test_loss_prefers_embeddings_that_separate_clusters():
    speaker = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    cluster = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    good = torch.tensor([[1.0, 0], [1, 0.1], [0, 1], [0.1, 1], [-1, 0], [-1, 0.1], [0, -1], [0.1, -1]])
    bad = good[torch.tensor([0, 2, 1, 3, 4, 6, 5, 7])]  # clusters mixed
    assert cluster_contrastive_loss(good, speaker, cluster) < cluster_contrastive_loss(bad, speaker, cluster) - 1


def test_loss_rejects_bad_shapes_and_batches():
    z, lab = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"z must be \[B, D\]"):
        cluster_contrastive_loss(z[0], lab, lab)
    with pytest.raises(ValueError, match=r"cluster must be \[B\]"):
        cluster_contrastive_loss(z, lab, lab[:3])
    with pytest.raises(ValueError, match="temperature"):
        cluster_contrastive_loss(z, lab, lab, temperature=0)
    with pytest.raises(ValueError, match="negatives"):
        cluster_contrastive_loss(z, lab, lab, negatives="other")
    with pytest.raises(ValueError, match="no anchor"):  # every speaker has one cluster: no same-speaker negative
        cluster_contrastive_loss(z, lab, torch.zeros(4, dtype=torch.long))


def _labels():
    speakers = np.repeat(["a", "b", "c", "d", "e"], 12)
    clusters = np.tile(np.repeat([0, 1, 2], 4), 5)
    clusters[speakers == "d"] = 0  # one cluster only
    clusters[(speakers == "e")] = [0] * 11 + [1]  # second cluster has a single utterance
    return speakers, clusters


def test_sampler_guarantees_and_determinism():
    speakers, clusters = _labels()
    with pytest.warns(UserWarning, match="2 speaker"):
        sampler = SpeakerClusterBatchSampler(speakers, clusters, n_speakers=2, n_clusters=2, n_utterances=3, seed=7)
    assert set(sampler.excluded_) == {"d", "e"}
    batches = list(sampler)
    assert len(batches) == len(sampler) == math.ceil(36 / 12)
    seen = set()
    for epoch in range(4):
        sampler.set_epoch(epoch)
        assert len({i for batch in sampler for i in batch}) >= 0.8 * 36  # an epoch visits most utterances once
        for batch in sampler:
            spk, clu = speakers[batch], clusters[batch]
            assert len(set(spk)) == 2 and len(batch) == 12 and len(set(batch)) == 12
            assert not set(spk) & {"d", "e"}
            codes = torch.as_tensor(np.unique(spk, return_inverse=True)[1])
            pos, den = contrast_masks(codes, torch.as_tensor(clu), "speaker")
            assert pos.any(1).all() and (den & ~pos).any(1).all()  # a positive and a same-speaker negative each
            seen.update(batch)
    assert seen == set(np.flatnonzero(np.isin(speakers, ["a", "b", "c"])))  # per-cluster queues cover every utterance
    with pytest.warns(UserWarning):
        again = SpeakerClusterBatchSampler(speakers, clusters, n_speakers=2, n_clusters=2, n_utterances=3, seed=7)
    assert list(again) == batches
    again.set_epoch(1)
    assert list(again) != batches


def test_sampler_rejects_unusable_input():
    speakers, clusters = _labels()
    with pytest.raises(ValueError, match="n_utterances must be >= 2"):
        SpeakerClusterBatchSampler(speakers, clusters, n_speakers=2, n_clusters=2, n_utterances=1)
    keep = np.isin(speakers, ["a", "d"])
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=">= 2 usable speakers"):
        SpeakerClusterBatchSampler(speakers[keep], clusters[keep], n_speakers=2, n_clusters=2, n_utterances=2)


def test_pseudo_speakers_recover_separated_speakers():
    X, spk, clu = speaker_data()
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    assert adjusted_rand_score(spk, pseudo_speakers(Xn, threshold=0.5)) == 1.0
    assert adjusted_rand_score(spk, pseudo_speakers(Xn, n_speakers=5)) == 1.0
    assert adjusted_rand_score(spk, pseudo_speakers(Xn, n_speakers=5, method="kmeans")) == 1.0
    with pytest.raises(ValueError, match="needs n_speakers"):
        pseudo_speakers(Xn, method="kmeans")
    speakers, clusters = pseudo_labels(X, k=3, speaker_threshold=0.5)
    assert adjusted_rand_score(spk, speakers) == 1.0 and speakers[0].startswith("pspk")
    for s in range(5):
        assert adjusted_rand_score(clu[spk == s], clusters[spk == s]) == 1.0
    given, by_silhouette = pseudo_labels(X, spk.astype(str), k="silhouette", k_grid=(2, 3, 4, 5))
    assert list(given) == list(spk.astype(str)) and adjusted_rand_score(spk * 10 + clu, spk * 10 + by_silhouette) == 1.0
    with pytest.raises(ValueError, match="one entry per row"):
        pseudo_labels(X, spk[:-1])


def test_gradient_reversal_flips_and_scales_encoder_gradients():
    torch.manual_seed(0)
    h = torch.randn(6, 4, requires_grad=True)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    plain, adv = SpeakerHead(4, 3), SpeakerHead(4, 3, adversarial=True)
    adv.load_state_dict(plain.state_dict())
    torch.nn.functional.cross_entropy(plain(h), target).backward()
    g_plain, w_plain = h.grad.clone(), plain.linear.weight.grad.clone()
    h.grad = None
    logits = adv(h, lambd=0.3)
    assert torch.equal(logits, plain(h))  # identity forward
    torch.nn.functional.cross_entropy(logits, target).backward()
    assert torch.allclose(h.grad, -0.3 * g_plain) and g_plain.abs().sum() > 0
    assert torch.allclose(adv.linear.weight.grad, w_plain)  # the head itself still learns speakers
    x = torch.ones(3, requires_grad=True)
    grad_reverse(x * 2, 1.5).sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), -3.0))


def test_lambda_schedules():
    assert lambda_at(0.7, 0.5, "constant") == 0.5
    assert lambda_at(0.0, 2.0, "dann") == 0.0
    assert lambda_at(0.5, 1.0, "dann") == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert lambda_at(1.0, 1.0, "dann") == pytest.approx(0.99991, abs=1e-5)
    with pytest.raises(ValueError, match="schedule"):
        lambda_at(0.1, 1.0, "linear")


@torch.no_grad()
def _val_loss(res, fs, ids, spk, clu, cfg):
    """Validation loss of the returned modules on the validation batches the training loop used."""
    sampler = SpeakerClusterBatchSampler(spk, clu, n_speakers=cfg.n_speakers, n_clusters=cfg.n_clusters,
                                         n_utterances=cfg.n_utterances, seed=cfg.seed + 1)
    pos, speaker = fs.positions(ids), torch.as_tensor(np.unique(spk, return_inverse=True)[1])
    losses = [cluster_contrastive_loss(res.projection(res.encoder(fs.batch(pos[b])[0])), speaker[b],
                                       torch.as_tensor(clu[b]), temperature=cfg.temperature).item() for b in sampler]
    return float(np.mean(losses))


def test_pretraining_reduces_loss_and_runs_every_variant():
    fs, ids, spk, clu = cluster_features()
    train, val = np.isin(spk, ["0", "1", "2", "3"]), np.isin(spk, ["4", "5"])
    cfg = ClusterPretrainConfig(n_speakers=4, n_clusters=3, n_utterances=4, max_epochs=12, patience=30, lr=3e-3,
                                proj_hidden=64, proj_dim=32, encoder_params={"hidden": 64}, out_dim=32)
    res = pretrain_cluster_contrastive(fs, ids[train], spk[train], clu[train], config=cfg,
                                       val_ids=ids[val], val_speakers=spk[val], val_clusters=clu[val])
    hist = res.history
    assert len(hist) == 12 and res.best_epoch == int(hist["val_loss"].idxmin())
    assert hist["train_contrastive"].iloc[-3:].mean() < 0.7 * hist["train_contrastive"].iloc[0]
    assert hist["val_loss"].min() < hist["val_loss"].iloc[0]
    assert bool(res.encoder.normalized) and not res.encoder.training
    assert _val_loss(res, fs, ids[val], spk[val], clu[val], cfg) == pytest.approx(hist["val_loss"].min(), rel=1e-5)
    for variant in ("multitask", "adversarial"):
        cfg_v = ClusterPretrainConfig(**{**cfg.__dict__, "max_epochs": 3, "schedule": "dann", "speaker_lambda": 0.5})
        out = pretrain_cluster_contrastive(fs, ids[train], spk[train], clu[train], config=cfg_v, variant=variant)
        h = out.history
        assert out.speaker_head.linear.out_features == 4 and out.speaker_head.adversarial == (variant == "adversarial")
        assert h["lambda"].tolist() == pytest.approx([lambda_at(p, 0.5, "dann") for p in (0, 0.5, 1)])
        assert np.isfinite(h[["train_loss", "train_speaker_ce", "train_speaker_acc"]].to_numpy()).all()
        assert h["val_loss"].isna().all() and out.best_epoch == 2
    with pytest.raises(ValueError, match="variant"):
        pretrain_cluster_contrastive(fs, ids[train], spk[train], clu[train], config=cfg, variant="other")
    with pytest.raises(ValueError, match="differ in length"):
        pretrain_cluster_contrastive(fs, ids[train], spk[train][:-1], clu[train], config=cfg)


def test_pretraining_on_variable_length_features():
    rng = np.random.default_rng(0)
    spk = np.repeat(["a", "b", "c"], 8)
    clu = np.tile(np.repeat([0, 1], 4), 3)
    lengths = rng.integers(5, 12, size=len(spk))
    fs = FeatureSet([f"m{i}" for i in range(len(spk))], rng.normal(size=(lengths.sum(), 8)).astype(np.float32),
                    lengths, meta={"encoder": "mel"})
    cfg = ClusterPretrainConfig(n_speakers=2, n_clusters=2, n_utterances=2, max_epochs=2, proj_hidden=16, proj_dim=8,
                                out_dim=16, encoder_params={"channels": (8, 8)})
    res = pretrain_cluster_contrastive(fs, fs.ids, spk, clu, config=cfg)
    assert type(res.encoder).__name__ == "MelEncoder" and np.isfinite(res.history["train_loss"]).all()


def test_evaluation_table_and_leakage_guard():
    manifest, splits, features = cluster_evaluation_corpus()
    config = evaluation_grid(epochs=2, encoder_view="egemaps", fractions=(1.0, 0.25), repetitions=2,
                             variants=("contrastive", "adversarial"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = evaluate_cluster_pretraining(ExperimentData(manifest, manifest, splits, features, folds=[0]), config)
    assert list(table.columns[:len(COLUMNS)]) == COLUMNS and {"n_labels", "best_epoch", "node"} <= set(table.columns)
    assert set(table["condition"]) == {"cluster_contrastive", "cluster_adversarial", "supervised", "speaker_probe",
                                       "pairwise-cl"}
    assert len(table) == 5 * 2 * 2 and (table["fold"] == 0).all()
    means = table[["val_uar", "val_wa", "test_uar", "test_wa"]].mean().to_dict()  # the seeded values (tiny, 1 thread)
    assert means == golden({"val_uar": 0.3534722222222222, "val_wa": 0.3534722222222222,
                                   "test_uar": 0.37569444444444444, "test_wa": 0.37569444444444444})
    n_labels = table.groupby("fraction")["n_labels"].max()
    assert n_labels[1.0] == (splits.query("fold == 0 and split == 'train'")).shape[0] and n_labels[0.25] < n_labels[1.0]
    assert table.loc[table["condition"] == "speaker_probe", "view"].eq("speaker").all()
    k = manifest["emotion"].nunique()  # every condition, the probe included, states its chance level
    assert table["n_classes"].eq(k).all() and table["chance_uar"].eq(1 / k).all()
    data = fold_data(manifest, manifest, splits, 0)  # the pre-training pool paper B uses, as paper A
    test_speakers = set(splits.query("fold == 0 and split == 'test'")["speaker"])
    assert not set(manifest.set_index("utt_id").loc[data.pool_train + data.pool_val, "speaker"]) & test_speakers
    leaky = splits.copy()
    first_test = leaky.index[(leaky["fold"] == 0) & (leaky["split"] == "test")][0]
    leaky.loc[first_test, "speaker"] = leaky.loc[(leaky["fold"] == 0) & (leaky["split"] == "train"), "speaker"].iloc[0]
    with pytest.raises(LeakageError):
        evaluate_cluster_pretraining(ExperimentData(manifest, manifest, leaky, features, folds=[0]),
                                     ClusterGrid(encoder_view="egemaps"))
    with pytest.raises(LeakageError):  # a test speaker's utterance moved into the training split
        moved = splits.copy()
        moved.loc[first_test, "split"] = "train"
        evaluate_cluster_pretraining(ExperimentData(manifest, manifest, moved, features, folds=[0]),
                                     ClusterGrid(encoder_view="egemaps"))


def test_evaluation_with_pseudo_speakers_and_wav2vec2_baseline():
    manifest, splits, features = cluster_evaluation_corpus()
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 6, size=len(manifest))
    features["wav2vec2"] = FeatureSet(manifest["utt_id"], rng.normal(size=(lengths.sum(), 3, 8)).astype(np.float32),
                                      lengths, meta={"encoder": "wav2vec2"})
    configs = {"pretrain": ClusterPretrainConfig(n_speakers=2, n_clusters=2, n_utterances=3, max_epochs=1, out_dim=16,
                                                 proj_hidden=16, proj_dim=16, encoder_params={"hidden": 16}),
               "finetune": FinetuneConfig(max_epochs=1, batch_size=64), "pseudo": {"k": 2, "n_speakers": 2}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = evaluate_cluster_pretraining(
            ExperimentData(manifest, manifest, splits, features, folds=[1]),
            ClusterGrid(**configs, encoder_view="egemaps", fractions=(1.0,), variants=("multitask",),
                        baselines=("wav2vec2_frozen",), use_speaker_ids=False))
    assert table[["condition", "view"]].values.tolist() == [["cluster_multitask", "egemaps"],
                                                            ["wav2vec2_frozen", "wav2vec2"]]
    assert table[["val_uar", "test_uar"]].notna().all().all() and (table["fold"] == 1).all()
