"""Views: registry, mel/eGeMAPS values, wav2vec2 layers and batching, speaker ECAPA + fallback, offline policy.

Models are tiny random checkpoints written to tmp folders (tests/tiny_models.py) and loaded through the same
code path as real ones; nothing is downloaded (HF_HUB_OFFLINE=1, empty torch hub dir).
"""

import logging
import pickle
import urllib.error

import numpy as np
import pytest
import torch
from tiny_models import make_tiny_ecapa, make_tiny_wav2vec2

from sercore.core.config import ModelLoadError
from sercore.models import available_encoders, build_encoder
from sercore.views import SAMPLE_RATE, ViewUnavailable, available_views, get_view

SR = SAMPLE_RATE


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SERCORE_CACHE", str(tmp_path / "sercore-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty torch hub cache


@pytest.fixture(scope="module")
def w2v_dir(tmp_path_factory):
    return make_tiny_wav2vec2(tmp_path_factory.mktemp("w2v"), normalize=True)


@pytest.fixture(scope="module")
def ecapa_dir(tmp_path_factory):
    return make_tiny_ecapa(tmp_path_factory.mktemp("ecapa"))


def tone(freq, seconds=1.0, amp=0.5):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(n, seed=0, scale=0.1):
    return (scale * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


# --- registry ---------------------------------------------------------------------------------------------

def test_registry_names_and_errors():
    from sercore.views.ssl import ssl_views

    assert available_views() == sorted(["egemaps", "mel", "speaker", *ssl_views()])
    assert {"wav2vec2", "hubert_base", "wavlm_base_plus", "data2vec_base", "whisper_base"} <= set(ssl_views())
    with pytest.raises(KeyError, match="unknown view 'mfcc'.*egemaps, hubert_base"):
        get_view("mfcc")
    with pytest.raises(TypeError, match=r"view 'mel' has no parameter 'n_bins'.*accepted: max_seconds, n_mels"):
        get_view("mel", n_bins=40)
    with pytest.raises(TypeError, match="'n_layers'.*accepted: source, max_seconds, layers, precision, device, "
                                        "batch_size"):
        get_view("wav2vec2", n_layers=3)
    with pytest.raises(ValueError, match="max_seconds must be None or a positive"):
        get_view("mel", max_seconds=0)
    with pytest.raises(ValueError, match="model must be one of"):
        get_view("speaker", model="xvector")
    with pytest.raises(ValueError, match="invalid device 'gpu'"):
        get_view("wav2vec2", device="gpu")


def test_view_attributes_and_full_params():
    from sercore.views.ssl import ssl_views

    views = {name: get_view(name) for name in available_views()}
    kinds = {name: (v.variable, v.parallel, v.encoder) for name, v in views.items()}
    assert kinds == {"mel": (True, True, "mel"), "egemaps": (False, True, "mlp"), "speaker": (False, True, "mlp"),
                     **{name: (True, False, "wav2vec2") for name in ssl_views()}}
    assert views["mel"].params == {"max_seconds": None, "n_mels": 64, "win_length": 400, "hop_length": 160,
                                   "f_min": 60.0, "f_max": 7800.0}
    assert views["wav2vec2"].params == {"source": "WAV2VEC2_BASE", "max_seconds": None, "layers": "all",
                                        "precision": "fp32"}
    assert views["speaker"].params == {"model": "auto", "source": "speechbrain/spkrec-ecapa-voxceleb"}
    assert get_view("mel", max_seconds=15).params["max_seconds"] == 15.0
    # the cache's workers rebuild a view from (name, params): same params back
    for name, v in views.items():
        assert get_view(name, **v.params).params == v.params


def test_bad_waves_are_rejected_with_the_reason():
    mel = get_view("mel")
    with pytest.raises(ValueError, match="sample rate 8000 Hz, expected 16000"):
        mel.extract(tone(440), sr=8000)
    with pytest.raises(ValueError, match=r"mono wave of shape \[n\], got shape \(2, 16000\)"):
        mel.extract(np.stack([tone(440), tone(440)]))
    with pytest.raises(ValueError, match="NaN or inf"):
        mel.extract(np.full(1000, np.nan, np.float32))
    with pytest.raises(ValueError, match="dtype int16"):
        mel.extract(np.zeros(1000, np.int16))
    with pytest.raises(ValueError, match="100 samples is too short"):
        mel.extract(np.zeros(100, np.float32))


# --- mel --------------------------------------------------------------------------------------------------

def _htk_mel(f):
    return 2595 * np.log10(1 + f / 700)


def _mel_centers(n_mels=64, f_min=60.0, f_max=7800.0):
    m = np.linspace(_htk_mel(f_min), _htk_mel(f_max), n_mels + 2)
    return 700 * (10 ** (m / 2595) - 1)  # edges and centres, Hz


def _reference_log_mel_frame(wave, frame):
    """One frame by hand: periodic Hann, |rfft|^2, HTK triangles, log(x + 1e-6) — independent of torchaudio."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    seg = wave[frame * 160 - 200: frame * 160 + 200].astype(np.float64)
    power = np.abs(np.fft.rfft(seg * window)) ** 2
    freqs = np.fft.rfftfreq(400, 1 / SR)
    pts = _mel_centers()
    left, centre, right = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    fb = np.maximum(0, np.minimum((freqs - left) / (centre - left), (right - freqs) / (right - centre)))
    return np.log(fb @ power + 1e-6)


def test_mel_shape_tone_bins_and_values():
    view = get_view("mel")
    centres = _mel_centers()[1:-1]
    for band in (10, 30, 55):
        freq = round(centres[band] / 40) * 40  # on the 40 Hz FFT grid, nearest to the band's centre
        feats = view.extract(tone(freq))
        assert feats.shape == (101, 64) and feats.dtype == np.float32  # 16000 // 160 + 1 frames
        assert feats[5:-5].mean(0).argmax() == band
        np.testing.assert_allclose(feats[50], _reference_log_mel_frame(tone(freq), 50), rtol=1e-3, atol=1e-3)
    wave = noise(12345, seed=1)
    np.testing.assert_allclose(view.extract(wave)[40], _reference_log_mel_frame(wave, 40), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(view.extract(np.zeros(8000, np.float32)), np.log(1e-6), rtol=1e-6)


def test_mel_max_seconds_pads_and_trims():
    wave = noise(3 * SR, seed=2)
    two = get_view("mel", max_seconds=2.0)
    trimmed = two.extract(wave)
    assert trimmed.shape == (201, 64)
    np.testing.assert_array_equal(trimmed, get_view("mel").extract(wave[: 2 * SR]))
    padded = two.extract(wave[:SR])
    assert padded.shape == (201, 64)
    np.testing.assert_allclose(padded[:98], get_view("mel").extract(wave[:SR])[:98], atol=1e-5)
    np.testing.assert_allclose(padded[102:], np.log(1e-6), rtol=1e-6)  # frames over the zero padding: the floor


# --- eGeMAPS ----------------------------------------------------------------------------------------------

def test_egemaps_88_finite_values_and_pitch():
    view = get_view("egemaps")
    t = np.arange(SR) / SR
    voiced = lambda f0: (sum(0.2 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 6))  # noqa: E731
                         + noise(SR, seed=3, scale=0.005)).astype(np.float32)
    low, high = view.extract(voiced(150)), view.extract(voiced(300))
    assert low.shape == (88,) and low.dtype == np.float32 and np.isfinite(low).all()
    f0 = view.feature_names().index("F0semitoneFrom27.5Hz_sma3nz_amean")
    assert low[f0] == pytest.approx(12 * np.log2(150 / 27.5), abs=0.5)
    assert high[f0] == pytest.approx(12 * np.log2(300 / 27.5), abs=0.5)
    with pytest.raises(ValueError, match="opensmile returned NaN/inf for 88 of 88 features"):
        view.extract(voiced(150)[:480])


# --- wav2vec2 ---------------------------------------------------------------------------------------------

def _frames(n):
    return (n - 400) // 320 + 1  # the wav2vec2 CNN: 25 ms receptive field, 20 ms stride


def test_wav2vec2_local_checkpoint_all_layers(w2v_dir):
    view = get_view("wav2vec2", source=str(w2v_dir))
    wave = noise(6789, seed=4)
    feats = view.extract(wave)
    assert feats.shape == (_frames(6789), 3, 32) == (20, 3, 32) and feats.dtype == np.float32
    # the same numbers as the library's own forward with output_hidden_states (CNN/projection + 2 layers)
    model = view._model().model
    x = torch.from_numpy(wave)[None]
    x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)  # do_normalize=True in this checkpoint
    with torch.no_grad():
        ref = torch.stack(model(x, output_hidden_states=True).hidden_states, dim=2)[0].numpy()
    np.testing.assert_allclose(feats, ref, atol=1e-5)
    assert not np.allclose(feats[:, 0], feats[:, 2], atol=1e-2)  # layers differ
    np.testing.assert_allclose(view.extract(3 * wave), feats, atol=1e-4)  # normalised input: scale-free
    prov = view.provenance()
    assert prov["backend"] == "huggingface" and prov["resolved_path"] == str(w2v_dir)
    assert prov["num_layers"] == 3 and prov["hidden_size"] == 32 and prov["normalize_waveform"] is True
    assert prov["parameters"] == sum(p.numel() for p in model.parameters())


def test_wav2vec2_batch_equals_single(w2v_dir):
    view = get_view("wav2vec2", source=w2v_dir, batch_size=3)
    waves = [noise(n, seed=i) for i, n in enumerate((8000, 2000, 6173, 4000, 8000, 1500))]
    batched = view.extract_batch(waves)
    assert [b.shape[0] for b in batched] == [_frames(len(w)) for w in waves]
    for wave, got in zip(waves, batched):
        np.testing.assert_allclose(got, view.extract(wave), atol=1e-5)


def test_wav2vec2_max_seconds_and_pickling(w2v_dir):
    view = get_view("wav2vec2", source=w2v_dir, max_seconds=0.5)
    short, long = view.extract(noise(4000)), view.extract(noise(12000))
    assert short.shape == long.shape == (_frames(8000), 3, 32)
    clone = pickle.loads(pickle.dumps(view))
    assert clone._backend is None and clone.params == view.params  # the model is not pickled
    np.testing.assert_allclose(clone.extract(noise(12000)), long, atol=1e-6)


def test_wav2vec2_without_preprocessor_config_is_not_normalised(tmp_path):
    folder = make_tiny_wav2vec2(tmp_path / "raw", seed=1)  # no preprocessor_config.json
    view = get_view("wav2vec2", source=folder)
    wave = noise(8000, seed=5)
    assert view.provenance()["normalize_waveform"] is False
    assert not np.allclose(view.extract(3 * wave), view.extract(wave), atol=1e-3)


def test_wav2vec2_torchaudio_backend_matches(w2v_dir):
    """The torchaudio model (what WAV2VEC2_BASE loads) gives the same layers as the HF path."""
    from torchaudio.models.wav2vec2.utils import import_huggingface_model

    from sercore.views._ssl_backends import _TorchaudioBackend

    view = get_view("wav2vec2", source=w2v_dir)
    backend = _TorchaudioBackend(import_huggingface_model(view._model().model), torch.device("cpu"), normalize=True)
    waves = [noise(5000, seed=6), noise(8000, seed=7)]
    for got, want in zip(backend.hidden_states(waves), view.extract_batch(waves)):
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert backend.info["num_layers"] == 3 and backend.info["hidden_size"] == 32


def test_wav2vec2_offline_bundle_is_unavailable():
    view = get_view("wav2vec2")  # WAV2VEC2_BASE, nothing in the (empty) torch hub cache, offline
    with pytest.raises(ViewUnavailable, match=r"WAV2VEC2_BASE is unavailable offline.*"
                                              r"wav2vec2_fairseq_base_ls960\.pth.*source=<local folder>"):
        view.extract(noise(8000))


def test_wav2vec2_failed_download_is_unavailable(monkeypatch):
    import torchaudio

    def no_network(self, *args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("SERCORE_OFFLINE", raising=False)
    monkeypatch.setattr(torchaudio.pipelines.Wav2Vec2Bundle, "get_model", no_network)
    monkeypatch.setattr("sercore.core.config.hub_reachable", lambda *args, **kwargs: True)  # reachable, then fails
    with pytest.raises(ViewUnavailable, match="could not be loaded.*URLError.*name resolution"):
        get_view("wav2vec2").provenance()


def test_wav2vec2_missing_hf_model_or_folder_is_an_error(tmp_path):  # named by the user: not skipped
    with pytest.raises(ModelLoadError, match="sercore-test/no-such-model could not be loaded.*offline"):
        get_view("wav2vec2", source="sercore-test/no-such-model").extract(noise(8000))
    with pytest.raises(ModelLoadError, match="folder .*missing does not exist"):
        get_view("wav2vec2", source=str(tmp_path / "missing")).extract(noise(8000))
    from transformers import HubertConfig, HubertModel

    HubertModel(HubertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                             conv_dim=(32,) * 7)).save_pretrained(tmp_path / "hubert")
    # any view of the SSL family takes any speech model: the name is the row, the source the model
    assert get_view("wav2vec2", source=tmp_path / "hubert").extract(noise(8000)).shape == (_frames(8000), 2, 32)
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         vocab_size=10)).save_pretrained(tmp_path / "bert")
    with pytest.raises(ModelLoadError, match="checkpoint is a 'bert' model, not one of the speech models"):
        get_view("hubert_base", source=tmp_path / "bert").extract(noise(8000))


# --- speaker ----------------------------------------------------------------------------------------------

def test_speaker_ecapa_from_local_folder(ecapa_dir, tmp_path):
    view = get_view("speaker", model="ecapa", source=str(ecapa_dir))
    a, b = view.extract(noise(16000, seed=8)), view.extract(tone(220))
    assert a.shape == (192,) and a.dtype == np.float32 and np.isfinite(a).all()
    assert not np.allclose(a, b, atol=1e-3)
    assert view.version == "1-ecapa"
    prov = view.provenance()
    assert prov["model"] == "ecapa" and prov["fallback"] is False and prov["dim"] == 192
    assert prov["resolved_path"] == str(ecapa_dir)
    # the weights come from the checkpoint, not from the random init at load time
    torch.manual_seed(123)
    np.testing.assert_allclose(get_view("speaker", source=ecapa_dir).extract(noise(16000, seed=8)), a, atol=1e-5)
    other = make_tiny_ecapa(tmp_path / "other", seed=1)
    assert not np.allclose(get_view("speaker", source=other).extract(noise(16000, seed=8)), a, atol=1e-3)


def test_speaker_falls_back_to_resemblyzer_offline(caplog):
    view = get_view("speaker")  # model="auto", the default hub source: not cached, offline
    with caplog.at_level(logging.WARNING, logger="sercore.views.speaker"):
        emb = view.extract(tone(180) + noise(SR, seed=9, scale=0.01))
    assert emb.shape == (256,) and np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-4)
    assert "falling back to Resemblyzer" in caplog.text and "spkrec-ecapa-voxceleb" in caplog.text
    assert view.version == "1-resemblyzer"  # the cache key differs from ECAPA features
    prov = view.provenance()
    assert prov["model"] == "resemblyzer" and prov["requested"] == "auto" and prov["fallback"] is True
    assert "spkrec-ecapa-voxceleb" in prov["reason"] and "offline" in prov["reason"] and prov["dim"] == 256
    with pytest.raises(ViewUnavailable, match="view 'speaker': ECAPA-TDNN model speechbrain/spkrec-ecapa-voxceleb"):
        get_view("speaker", model="ecapa").extract(tone(180))
    with pytest.raises(ModelLoadError, match="view 'speaker': ECAPA-TDNN model sercore-test/no-such-ecapa"):
        get_view("speaker", source="sercore-test/no-such-ecapa").extract(tone(180))  # named: no fallback
    explicit = get_view("speaker", model="resemblyzer")
    assert explicit.version == "1-resemblyzer" and explicit._encoder is None  # no model loaded for the key


# --- encoders ---------------------------------------------------------------------------------------------

# every registered view through an offline path that must always work (no skip: a model that fails to load
# fails the test): mel and eGeMAPS need no model, wav2vec2 and ECAPA load the tiny random checkpoints of
# tests/tiny_models.py from their tmp folders, the d-vector's weights ship inside the Resemblyzer wheel
OFFLINE = {"egemaps": ("egemaps", lambda dirs: {}), "mel": ("mel", lambda dirs: {}),
           "wav2vec2": ("wav2vec2", lambda dirs: {"source": str(dirs["w2v"])}),
           "speaker-ecapa": ("speaker", lambda dirs: {"model": "ecapa", "source": str(dirs["ecapa"])}),
           "speaker-resemblyzer": ("speaker", lambda dirs: {"model": "resemblyzer"})}


def test_every_registered_view_has_an_offline_case():
    from sercore.views.ssl import ssl_views

    # the SSL family shares one code path: wav2vec2 stands for it here, tests/test_ssl_views.py loads each kind
    assert sorted({name for name, _ in OFFLINE.values()} | set(ssl_views())) == available_views()


@pytest.mark.parametrize("case", sorted(OFFLINE))
def test_every_view_feeds_its_own_encoder(case, w2v_dir, ecapa_dir):
    """extract → the encoder kind the view declares → forward, for every registered view."""
    name, params = OFFLINE[case]
    view = get_view(name, **params({"w2v": w2v_dir, "ecapa": ecapa_dir}))
    assert view.encoder in available_encoders(), (name, view.encoder)
    items = [view.extract(tone(180, seconds)) for seconds in (0.6, 1.0)]  # ViewUnavailable here is a failure
    if name == "speaker":  # the model asked for, not a fallback
        assert view.provenance()["model"] == case.split("-")[1] and not view.provenance().get("fallback")
    encoder = build_encoder(view.encoder, items[0].shape[1:] if view.variable else items[0].shape).eval()
    if view.variable:
        lengths = torch.tensor([len(item) for item in items])
        x = torch.zeros(2, int(lengths.max()), *items[0].shape[1:])
        for i, item in enumerate(items):
            x[i, :len(item)] = torch.from_numpy(item)
    else:
        x, lengths = torch.from_numpy(np.stack(items)), None
    out = encoder(x, lengths)
    assert out.shape == (2, encoder.out_dim) and torch.isfinite(out).all()
