"""Model loading: a model the user names and that fails is an error; only defaults fall back or are skipped;
an unreachable hub is treated as offline (no retries), and the reason says "no network".

Nothing is downloaded: the hub's reachability is monkeypatched, the download functions are replaced by spies
that fail, and checkpoint folders are built in the test (tests/tiny_models.py).
"""

import pickle
import socket

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from tiny_models import make_tiny_ecapa

from sercore.core import config
from sercore.core.config import ModelLoadError, hub_reachable
from sercore.features.cache import extract_features
from sercore.views import SAMPLE_RATE, ViewUnavailable, get_view

BROKEN_YAML = "embedding_model: !new:sercore_no_such_module.Model\n  channels: 8\n"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, tmp_path):
    """Online mode (no offline flag), empty caches, and a hub that is unreachable unless a test says otherwise."""
    for name in ("HF_HUB_OFFLINE", "SERCORE_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SERCORE_CACHE", str(tmp_path / "sercore-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(config, "hub_reachable", lambda url=None, timeout=2.0: False)


@pytest.fixture
def hub_spy(monkeypatch):
    """Record every ``huggingface_hub.hf_hub_download`` call (speechbrain fetches through it); none succeeds."""
    import huggingface_hub

    calls = []

    def fake_download(*args, **kwargs):
        calls.append(kwargs)
        raise FileNotFoundError(f"test: {kwargs.get('filename')} is not cached")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    return calls


@pytest.fixture
def broken_ecapa(tmp_path):
    folder = tmp_path / "ecapa-broken"
    folder.mkdir()
    (folder / "hyperparams.yaml").write_text(BROKEN_YAML)
    return folder


def noise(n=SAMPLE_RATE, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _manifest(tmp_path, n=2):
    rows = []
    for i in range(n):
        path = tmp_path / f"utt{i}.wav"
        sf.write(path, noise(seed=i), SAMPLE_RATE)
        rows.append({"utt_id": f"utt{i}", "path": str(path)})
    return pd.DataFrame(rows)


# --- hub_reachable --------------------------------------------------------------------------------------

def test_hub_reachable_checks_the_endpoint_or_proxy_once(monkeypatch):
    monkeypatch.undo()  # the real hub_reachable, with a fake connection
    for name in ("HF_ENDPOINT", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config, "_REACHABLE", {})
    tried = []
    monkeypatch.setattr(config, "_connects", lambda host, port, timeout: tried.append((host, port)) or False)
    assert hub_reachable() is False and hub_reachable() is False
    assert tried == [("huggingface.co", 443)]  # memoised
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example:8080")
    hub_reachable()
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    hub_reachable()
    assert hub_reachable("https://download.pytorch.org") is False  # through the proxy as well
    assert tried[1:] == [("mirror.example", 8080), ("proxy.example", 3128)]


def test_connects_to_an_open_port_but_not_a_closed_one():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert config._connects("127.0.0.1", server.getsockname()[1], timeout=2.0) is True
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert config._connects("127.0.0.1", port, timeout=2.0) is False


# --- speaker: explicit sources fail loudly --------------------------------------------------------------

@pytest.mark.parametrize("model", ["auto", "ecapa"])
def test_named_broken_ecapa_folder_is_an_error_not_a_fallback(broken_ecapa, model):
    view = get_view("speaker", model=model, source=str(broken_ecapa))
    with pytest.raises(ModelLoadError, match=rf"ECAPA-TDNN folder {broken_ecapa} \(named with source=\) could "
                                             r"not be loaded: .*sercore_no_such_module"):
        view.extract(noise())
    assert not issubclass(ModelLoadError, ViewUnavailable)  # experiment.prepare skips only ViewUnavailable
    assert not issubclass(ModelLoadError, ValueError)  # extraction would take it for one bad file


def test_named_ecapa_folder_without_checkpoint_or_missing_is_an_error(tmp_path):
    folder = make_tiny_ecapa(tmp_path / "ecapa")
    (folder / "embedding_model.ckpt").unlink()
    with pytest.raises(ModelLoadError, match="embedding_model"):
        get_view("speaker", source=folder).extract(noise())
    with pytest.raises(ModelLoadError, match=r"folder .*nowhere \(named with source=\) does not exist"):
        get_view("speaker", source=str(tmp_path / "nowhere")).extract(noise())


def test_named_hub_id_without_network_is_an_error(hub_spy):
    with pytest.raises(ModelLoadError, match=r"ECAPA-TDNN model someone/ecapa .*could not be loaded \(no network"):
        get_view("speaker", source="someone/ecapa").extract(noise())
    assert hub_spy and all(call["local_files_only"] for call in hub_spy)  # its local copy was looked for


@pytest.mark.parametrize("model", ["auto", "ecapa"])
def test_named_broken_folder_stops_extraction(broken_ecapa, tmp_path, model):
    """Through the cache, with on_error="skip": not every file skipped as bad audio, not a fallback."""
    view = get_view("speaker", model=model, source=broken_ecapa)
    with pytest.raises(ModelLoadError, match="ecapa-broken"):
        extract_features(_manifest(tmp_path), view, cache_root=tmp_path / "cache", workers=1, on_error="skip",
                         progress=False)


# --- speaker: the default falls back at once without network --------------------------------------------

def test_default_ecapa_falls_back_without_trying_the_hub_when_unreachable(hub_spy):
    view = get_view("speaker")  # model="auto", the default hub source, no --offline
    emb = view.extract(noise())
    assert emb.shape == (256,) and view.model_used == "resemblyzer"
    assert all(call["local_files_only"] for call in hub_spy)  # the hub is never asked over the network
    prov = view.provenance()
    assert prov["fallback"] is True and "no network" in prov["reason"]
    with pytest.raises(ViewUnavailable, match="no network"):  # model="ecapa" with the default: skipped
        get_view("speaker", model="ecapa").extract(noise())


def test_reachable_hub_is_tried_over_the_network(hub_spy, monkeypatch):
    monkeypatch.setattr(config, "hub_reachable", lambda url=None, timeout=2.0: True)
    view = get_view("speaker")
    assert view.model_used == "resemblyzer"  # the spy fails every download
    assert any(not call["local_files_only"] for call in hub_spy)
    assert "no network" not in view.provenance()["reason"]


def test_a_copied_view_loads_the_model_decided_before(hub_spy, monkeypatch):
    """A worker gets a pickled view: it must load the model the parent chose (part of the cache key)."""
    view = get_view("speaker")
    assert view.model_used == "resemblyzer"
    from sercore.views import speaker

    monkeypatch.setattr(speaker, "_load_ecapa", lambda *a, **k: pytest.fail("the copy tried ECAPA again"))
    copy = pickle.loads(pickle.dumps(view))
    assert copy._encoder is None and copy.extract(noise()).shape == (256,)
    assert copy.provenance()["reason"] == view.provenance()["reason"]


# --- wav2vec2 -------------------------------------------------------------------------------------------

def test_wav2vec2_default_bundle_without_network_is_skipped_without_downloading(monkeypatch):
    import torchaudio

    monkeypatch.setattr(torchaudio.pipelines.Wav2Vec2Bundle, "get_model",
                        lambda self, **kw: pytest.fail("the bundle download was attempted"))
    with pytest.raises(ViewUnavailable, match=r"WAV2VEC2_BASE is unavailable \(no network"):
        get_view("wav2vec2").extract(noise())
    with pytest.raises(ModelLoadError, match=r"WAV2VEC2_LARGE is unavailable \(no network"):
        get_view("wav2vec2", source="WAV2VEC2_LARGE").extract(noise())


def test_wav2vec2_named_sources_that_fail_are_errors(tmp_path, monkeypatch):
    import transformers

    asked = []
    real = transformers.AutoConfig.from_pretrained

    def spy(source, **kwargs):
        asked.append(kwargs.get("local_files_only"))
        return real(source, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", spy)
    with pytest.raises(ModelLoadError, match=r"someone/w2v could not be loaded \(no network, not in the Hugging"):
        get_view("wav2vec2", source="someone/w2v").extract(noise())
    assert asked == [True]  # only the local cache was looked at
    with pytest.raises(ModelLoadError, match="folder .*missing does not exist"):
        get_view("wav2vec2", source=str(tmp_path / "missing")).extract(noise())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"empty could not be loaded \(ValueError: Unrecognized model"):
        get_view("wav2vec2", source=tmp_path / "empty").extract(noise())
