"""The SSL speech-model view family: tiny random HuBERT, WavLM, data2vec-audio, wav2vec2(-conformer) and Whisper
checkpoints saved to folders and loaded like a user's folder; full-size random torchaudio architectures; the
offline policy; extraction → Pairwise-CL with mel and eGeMAPS → fine-tuning for each model."""

import math

import numpy as np
import pytest
import torch
from tiny_models import make_tiny_ssl

from sercore.core.config import ModelLoadError
from sercore.data import load_dataset, make_splits, target_subset
from sercore.features.cache import extract_features
from sercore.models import build_encoder, learnt_layer_weights
from sercore.pairwise.pretrain import PretrainConfig, pretrain_pairwise
from sercore.training import FinetuneConfig, finetune, fold_data
from sercore.views import ViewUnavailable, available_views, get_view
from sercore.views.ssl import MODELS, ssl_views

# each Hugging Face model type, through the view name a user would pick for it
VIEW_OF = {"wav2vec2": "wav2vec2", "hubert": "hubert_base", "wavlm": "wavlm_base_plus",
           "data2vec-audio": "data2vec_base", "wav2vec2-conformer": "wav2vec2_large", "whisper": "whisper_base"}


def noise(n, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def frames(kind, n):
    """Frames of ``n`` samples: the CNN front end's, or Whisper's trimmed 50 Hz output."""
    return math.ceil(n / 320) if kind == "whisper" else (n - 400) // 320 + 1


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssl")
    return {kind: make_tiny_ssl(root / kind.replace("-", "_"), kind) for kind in VIEW_OF}


def test_the_family_is_registered_with_a_default_source_each():
    names = ssl_views()
    assert set(names) <= set(available_views()) and len(set(names)) == len(names) == len(MODELS)
    for name in ("wav2vec2", "hubert_base", "wavlm_base", "wavlm_base_plus", "data2vec_base", "whisper_base"):
        view = get_view(name)
        assert view.params["source"] == next(m.source for m in MODELS if m.name == name)
        assert view.encoder == "wav2vec2" and view.variable and view.frame_rate == 50
    assert get_view("hubert_base").disk_note().startswith("view hubert_base (HUBERT_BASE, [T, 13, 768] at 50 frames/s")
    assert get_view("whisper_base").output_shape(2.0) == (100, 7, 512)


@pytest.mark.parametrize("kind", sorted(VIEW_OF))
def test_each_model_type_loads_from_a_folder_and_gives_all_layers(kind, folders):
    view = get_view(VIEW_OF[kind], source=folders[kind], batch_size=2)
    waves = [noise(9600, seed=1), noise(20800, seed=2), noise(6000, seed=3)]
    feats = view.extract_batch(waves)
    assert [f.shape for f in feats] == [(frames(kind, len(w)), 3, 32) for w in waves]
    assert all(f.dtype == np.float32 and np.isfinite(f).all() for f in feats)
    np.testing.assert_allclose(view.extract(waves[1]), feats[1], atol=1e-5)  # batching changes nothing
    assert not np.allclose(feats[0][:, 0], feats[0][:, 2], atol=1e-3)
    prov = view.provenance()
    assert prov["model_type"] == kind and prov["weights"] == "pretrained" and prov["frame_rate"] == 50
    assert prov["resolved_path"] == str(folders[kind]) and prov["num_layers"] == 3 and prov["hidden_size"] == 32
    assert view.layer_shape() == (3, 32)
    picked = get_view(VIEW_OF[kind], source=folders[kind], layers=[0, 2]).extract(waves[0])
    np.testing.assert_allclose(picked, feats[0][:, [0, 2]], atol=1e-5)
    encoder = build_encoder(view.encoder, feats[0].shape[1:])  # the layer-weighted encoder for this L x D
    x = torch.zeros(2, feats[1].shape[0], 3, 32)
    x[0, :len(feats[0])], x[1] = torch.from_numpy(feats[0]), torch.from_numpy(feats[1])
    assert encoder(x, torch.tensor([len(feats[0]), len(feats[1])])).shape == (2, 128)
    np.testing.assert_allclose(learnt_layer_weights(encoder), [1 / 3] * 3)


def test_whisper_long_audio_is_windowed_and_trimmed(folders):
    view = get_view("whisper_base", source=folders["whisper"])
    wave = noise(16000 * 31, seed=4)  # 31 s: one full 30 s window and 1 s in a second, padded one
    feats = view.extract(wave)
    assert feats.shape == (1500 + 50, 3, 32)
    np.testing.assert_allclose(view.extract(wave[16000 * 30:])[:, 1:], feats[1500:, 1:], atol=1e-4)


def test_random_architectures_are_seeded_and_labelled():
    for name, arch in (("hubert_base", "hubert_base"), ("wavlm_base", "wavlm_base")):
        view = get_view(name, source=f"random:{arch}", layers=[0, 12])
        a = view.extract(noise(8000))
        assert a.shape == (24, 2, 768)
        np.testing.assert_array_equal(get_view(name, source=f"random:{arch}", layers=[0, 12]).extract(noise(8000)), a)
        prov = view.provenance()
        assert prov["model"] == f"{arch} (random weights)" and prov["weights"].startswith("random weights (seed 0)")
        assert prov["num_layers"] == 13 and prov["hidden_size"] == 768


def test_offline_defaults_are_skipped_and_named_sources_stop_the_run(tmp_path):
    for name in ("hubert_base", "wavlm_base_plus", "data2vec_base", "whisper_base"):
        with pytest.raises(ViewUnavailable, match=rf"view '{name}': .*(unavailable offline|offline, not in the)"):
            get_view(name).extract(noise(8000))
    with pytest.raises(ModelLoadError, match="view 'hubert_base': torchaudio bundle HUBERT_LARGE is unavailable"):
        get_view("hubert_base", source="HUBERT_LARGE").extract(noise(8000))
    with pytest.raises(ModelLoadError, match="view 'whisper_base': model someone/whisper could not be loaded"):
        get_view("whisper_base", source="someone/whisper").extract(noise(8000))
    with pytest.raises(ModelLoadError, match="source folder .*nothing does not exist"):
        get_view("wavlm_base", source=str(tmp_path / "nothing")).extract(noise(8000))


@pytest.fixture(scope="module")
def corpus():
    """50 utterances of the tiny corpus (10 per session), fold 0, and their mel and eGeMAPS features."""
    manifest = load_dataset("default", size="tiny")
    manifest = manifest.groupby("session", sort=False).head(10).reset_index(drop=True)
    data = fold_data(manifest, target_subset(manifest), make_splits(manifest), 0)
    others = {v: extract_features(manifest, get_view(v), workers=1, progress=False) for v in ("mel", "egemaps")}
    return manifest, data, others


@pytest.mark.slow  # the corpus fixture extracts eGeMAPS and mel (about 20 s), then 5 x ~3 s
@pytest.mark.parametrize("kind", sorted(VIEW_OF))
def test_each_model_extracts_pretrains_and_finetunes(kind, folders, corpus):
    manifest, data, others = corpus
    name = VIEW_OF[kind]
    fs = extract_features(manifest, get_view(name, source=folders[kind]), workers=1, progress=False)
    assert fs.variable and fs.feature_shape == (3, 32) and fs.meta["encoder"] == "wav2vec2"
    features = {name: fs, **others}
    result = pretrain_pairwise(features, data.pool_train, data.pool_val,
                               config=PretrainConfig(max_epochs=2, batch_size=16, patience=2, seed=0))
    assert set(result.encoders) == {name, "mel", "egemaps"} and np.isfinite(result.history["val_loss"]).all()
    weights = learnt_layer_weights(result.encoders[name])
    assert weights.shape == (3,) and abs(weights.sum() - 1) < 1e-6
    tuned = finetune(result.encoders[name], fs, data.train_ids, data.train_labels, data.val_ids, data.val_labels,
                     config=FinetuneConfig(max_epochs=2, patience=None, batch_size=16))
    assert 0 <= tuned.metrics["val_uar"] <= 1 and learnt_layer_weights(tuned.model).shape == (3,)
