"""precision="auto": bf16 where the device has fast bf16 kernels, fp32 elsewhere, and what was chosen is recorded;
the precision benchmark prints what each arm actually ran in."""

import json

import numpy as np
import pytest

import sercore.core.precision as precision
from sercore.features.featureset import FeatureSet
from sercore.notebook.settings import Params, run_settings
from sercore.pairwise.pretrain import PretrainConfig, pretrain_pairwise
from sercore.training import FinetuneConfig


def _native(monkeypatch, fast: bool):
    reason = "CPU with oneDNN bf16 kernels (AVX512)" if fast else "this CPU (AVX2) has no fast bf16 kernels"
    monkeypatch.setattr(precision, "bf16_support", lambda device_type: (fast, reason))
    monkeypatch.delenv(precision.EMULATE_ENV, raising=False)
    monkeypatch.delenv(precision.AUTO_ENV, raising=False)  # conftest pins auto to fp32 for the golden values
    return reason


def test_auto_is_the_default():
    assert PretrainConfig().precision == FinetuneConfig().precision == Params().precision == "auto"


@pytest.mark.parametrize("fast", [True, False])
def test_auto_follows_the_detection_and_says_why(monkeypatch, fast):
    reason = _native(monkeypatch, fast)
    used = "bf16" if fast else "fp32"
    assert precision.resolve_precision("auto", "cpu") == (used, f"auto: {used}, {reason}")
    assert precision.resolve_precision("fp32", "cpu") == ("fp32", "")  # explicit choices stay what they were
    assert precision.resolve_precision("bf16", "cpu")[0] == used
    record = run_settings(Params(budget="quick")).record()
    assert (record["precision"], record["precision_used"]) == ("auto", used)
    assert reason in record["precision_note"]
    json.dumps(record)  # goes to params.json as it is


@pytest.mark.parametrize("fast", [True, False])
def test_a_run_records_the_precision_auto_chose(monkeypatch, fast):
    _native(monkeypatch, fast)
    rng = np.random.default_rng(0)
    ids = [f"u{i}" for i in range(24)]
    features = {v: FeatureSet(ids, rng.normal(size=(24, 6)).astype(np.float32), meta={"encoder": "mlp"})
                for v in ("a", "b")}
    result = pretrain_pairwise(features, ids[:16], ids[16:], config=PretrainConfig(max_epochs=1, batch_size=8))
    assert result.metrics["precision"] == ("bf16" if fast else "fp32")
    assert result.metrics["precision_note"].startswith("auto: ")


def test_auto_can_be_pinned_to_fp32(monkeypatch):
    monkeypatch.setattr(precision, "bf16_support", lambda device_type: (True, "native"))
    monkeypatch.setenv(precision.AUTO_ENV, "fp32")
    assert precision.resolve_precision("auto", "cpu") == ("fp32", f"auto: fp32, pinned by {precision.AUTO_ENV}=fp32")
    assert precision.resolve_precision("bf16", "cpu") == ("bf16", "native")  # an explicit choice is not pinned
    monkeypatch.setenv(precision.AUTO_ENV, "bf16")
    with pytest.raises(ValueError, match="may only be 'fp32'"):
        precision.resolve_precision("auto", "cpu")


def test_autocast_refuses_an_unresolved_precision():
    with pytest.raises(ValueError, match="resolve_precision first"):
        precision.autocast("auto", "cpu")


@pytest.mark.parametrize("fast", [True, False])
def test_wav2vec2_view_keys_the_precision_that_runs(monkeypatch, fast):
    from sercore.views import get_view

    _native(monkeypatch, fast)
    view = get_view("wav2vec2", source="random:wav2vec2_base")
    assert view.params["precision"] == ("bf16" if fast else "fp32")
    assert get_view("wav2vec2", source="random:wav2vec2_base", precision="fp32").params["precision"] == "fp32"


@pytest.mark.bench
@pytest.mark.parametrize("fast", [True, False])
def test_the_precision_benchmark_prints_what_each_arm_ran(monkeypatch, capsys, fast):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_pretrain

    _native(monkeypatch, fast)
    bench_pretrain.main(["--part", "precision", "--quick", "--n", "100"])
    lines = capsys.readouterr().out.splitlines()
    used = "bf16" if fast else "fp32"
    summary = {line.split(" [")[0]: line for line in lines if " vs the fp32 conv1d baseline " in line}
    assert set(summary) == {"sercore fp32", "sercore bf16"}
    ran = "ran pre-training {0}, fine-tuning {0}; 1 thread; cpu"
    assert summary["sercore bf16"].startswith(f"sercore bf16 [{ran.format(used)}] vs the fp32 conv1d baseline "
                                              f"[{ran.format('fp32')}]")
    assert summary["sercore fp32"].startswith(f"sercore fp32 [{ran.format('fp32')}]")
    arm = next(line for line in lines if line.strip().startswith("sercore bf16 ") and "utt/s" in line)
    assert f"[{ran.format(used)}]" in arm
