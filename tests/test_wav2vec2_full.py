"""wav2vec 2.0 at full size with random weights (offline), layer selection, precision and the disk estimate."""

import numpy as np
import pytest
from tiny_models import make_tiny_wav2vec2

from sercore.views import get_view

BASE = "random:wav2vec2_base"


def noise(n, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def full():
    """All 13 layers of the random base model for 1 s of audio, and the view."""
    view = get_view("wav2vec2", source=BASE)
    return view, view.extract(noise(16000))


def test_full_size_random_model_builds_offline_and_gives_13_layers(full):
    view, feats = full
    assert feats.shape == ((16000 - 400) // 320 + 1, 13, 768) == (49, 13, 768)
    assert feats.dtype == np.float32 and np.isfinite(feats).all()
    assert not np.allclose(feats[:, 0], feats[:, 12], atol=1e-2)
    prov = view.provenance()
    assert prov["weights"].startswith("random weights") and "not pretrained" in prov["weights"]
    assert prov["model"] == "wav2vec2_base (random weights)" and prov["params"]["source"] == BASE
    assert prov["num_layers"] == 13 and prov["hidden_size"] == 768 and prov["parameters"] > 90_000_000
    assert view.params == {"source": BASE, "max_seconds": None, "layers": "all", "precision": "fp32"}


def test_layer_selection_keeps_those_layers_of_a_seeded_model(full):
    _, feats = full
    view = get_view("wav2vec2", source=BASE, layers=(0, 6, 12))  # a fresh random model: seeded, same weights
    picked = view.extract(noise(16000))
    assert picked.shape == (49, 3, 768)
    np.testing.assert_allclose(picked, feats[:, [0, 6, 12]], atol=1e-5)
    assert view.params["layers"] == [0, 6, 12] and view.provenance()["layers_kept"] == [0, 6, 12]
    assert get_view("wav2vec2", **view.params).params == view.params  # the cache rebuilds it from params


def test_estimate_bytes_is_seconds_frames_layers_width_float16():
    view = get_view("wav2vec2", source=BASE)  # known shape: no model is loaded for the estimate
    assert view.estimate_bytes(1.0) == 50 * 13 * 768 * 2 == 998_400
    assert view.estimate_bytes(3600) == 3600 * 50 * 13 * 768 * 2  # about 3.6 GB per hour
    assert get_view("wav2vec2", source=BASE, layers=[0, 6, 12]).estimate_bytes(3600) == 3600 * 50 * 3 * 768 * 2
    assert view._backend is None
    assert view.disk_note(1800) == ("view wav2vec2 (random:wav2vec2_base, [T, 13, 768] at 50 frames/s, float16 "
                                    "cache): 0.50 h of audio -> about 1.80 GB on disk, 3.59 GB per hour of audio")


def test_bad_parameters_are_rejected():
    for layers, match in (((6, 0), "strictly increasing"), ((13,), "layer 13 requested but .* has 13 layers"),
                          ("some", "'all' or a list"), ((-1,), "non-negative"), ((), "non-negative")):
        with pytest.raises(ValueError, match=match):
            get_view("wav2vec2", source=BASE, layers=layers)
    with pytest.raises(ValueError, match="unknown random architecture 'random:hubert'"):
        get_view("wav2vec2", source="random:hubert")
    with pytest.raises(ValueError, match="layer 25 requested but random:hubert_large has 25 layers"):
        get_view("hubert_large", source="random:hubert_large", layers=(0, 25))
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        get_view("wav2vec2", source=BASE, precision="fp16")


def test_bf16_extraction_is_close_to_fp32_and_recorded(tmp_path, monkeypatch):
    import sercore.core.precision as precision

    folder = make_tiny_wav2vec2(tmp_path / "w2v", normalize=True)
    wave = noise(8000, seed=3)
    ref = get_view("wav2vec2", source=folder).extract(wave)
    monkeypatch.setenv(precision.EMULATE_ENV, "1")  # bf16 autocast on any CPU
    view = get_view("wav2vec2", source=folder, precision="bf16", layers=[1, 2])
    got = view.extract(wave)
    assert view.provenance()["precision_used"] == "bf16" and got.shape == (ref.shape[0], 2, 32)
    assert not np.array_equal(got, ref[:, 1:])  # bf16 really ran
    np.testing.assert_allclose(got, ref[:, 1:], atol=0.1 * np.abs(ref).max())
    assert np.corrcoef(got.ravel(), ref[:, 1:].ravel())[0, 1] > 0.99
    monkeypatch.setattr(precision, "bf16_support", lambda device_type: (False, "no bf16 here"))
    monkeypatch.delenv(precision.EMULATE_ENV)
    fallback = get_view("wav2vec2", source=folder, precision="bf16")
    np.testing.assert_allclose(fallback.extract(wave), ref, atol=1e-5)
    assert fallback.provenance()["precision_note"] == "bf16 requested, ran in fp32: no bf16 here"
    with pytest.raises(Exception, match="layer 3 requested but .* has 3 layers"):
        get_view("wav2vec2", source=folder, layers=[3]).extract(wave)


def _gpu_script(*args):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_iemocap_epoch.py"
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, SERCORE_OFFLINE="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_gpu_epoch_script_says_when_there_is_no_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the script would measure instead")
    out = _gpu_script()
    assert "no CUDA GPU available here, nothing measured" in out and "pre-training epoch:" not in out


@pytest.mark.slow
def test_gpu_epoch_script_dry_run_on_cpu():
    out = _gpu_script("--dry-run", "--precision", "fp32")
    assert "device cpu (CPU (dry run)), precision fp32; 12 of 40 utterances" in out, out
    assert "min for 40 (paper: 13 min)" in out and "precision used fp32" in out, out
    assert "wav2vec2 base extraction:" in out and "x real time" in out, out


def test_extraction_prints_the_disk_estimate_before_it_starts(tmp_path, capsys):
    import soundfile as sf

    from sercore.data import make_manifest
    from sercore.features.cache import extract_features

    rows = []
    for i in range(2):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, noise(16000, seed=i), 16000)
        rows.append(dict(utt_id=f"u{i}", path=str(path), speaker="s", emotion="neu", dataset="toy", duration=1.0))
    view = get_view("wav2vec2", source=BASE, layers=(0, 12))
    fs = extract_features(make_manifest(rows), view, cache_root=tmp_path / "cache", progress=True)
    assert fs.data.shape == (2 * 49, 2, 768)
    assert "0.00 h of audio -> about 0.00 GB on disk, 0.55 GB per hour of audio" in capsys.readouterr().err
