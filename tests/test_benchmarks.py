"""The benchmarks run end to end at smoke sizes and print ratios above the floors each benchmark states (``FLOORS``).

Each script runs in its own process, as a user would run it, with the session's isolated cache. The figures
themselves are measured by hand on an idle machine (README); the floors only catch a path that broke.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_engine  # noqa: E402
import bench_finetune  # noqa: E402
import bench_pretrain  # noqa: E402
import bench_views  # noqa: E402
import bench_wav2vec2  # noqa: E402

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
RATIO = r"(\d+\.\d+)x"


def _run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, SERCORE_OFFLINE="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _ratio(text: str, label: str) -> float:
    match = re.search(re.escape(label) + r"[^\n]*?" + RATIO, text)
    assert match, (label, text)
    return float(match.group(1))


@pytest.mark.slow
def test_bench_pretrain_prints_every_ratio():
    out = _run("bench_pretrain.py", "--quick")
    assert len(bench_pretrain.FLOORS) == 3
    _check_bounds(out, bench_pretrain)
    assert "would reach" in out and "sequential loop, torch 1 thread" in out, out


@pytest.mark.slow
def test_bench_finetune_prints_its_ratio_and_identical_tables():
    out = _run("bench_finetune.py", "--quick")
    _check_bounds(out, bench_finetune)
    assert "identical result tables: True" in out and "one padded batch (256)" in out, out


@pytest.mark.slow
def test_bench_views_prints_a_row_per_view():
    out = _run("bench_views.py", "--size", "tiny", "--limit", "16", "--views", "egemaps", "mel", "--workers", "2")
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["egemaps"], ["mel"])]
    assert [r[0] for r in rows] == ["egemaps", "mel"], out
    for row in rows:
        ratios = [float(cell[:-1]) for cell in row if re.fullmatch(RATIO, cell)]
        assert len(ratios) == len(bench_views.FLOORS) == 3, row
        for (column, floor), ratio in zip(bench_views.FLOORS.items(), ratios):
            assert ratio >= floor, (row[0], column, ratio, floor, out)


def _check_bounds(out: str, module) -> None:
    for label, floor in module.FLOORS.items():
        assert _ratio(out, label) >= floor, (label, floor, out)
    for label, ceiling in getattr(module, "CEILINGS", {}).items():
        assert _ratio(out, label) <= ceiling, (label, ceiling, out)


@pytest.mark.slow
def test_bench_engine_prints_ray_and_local_ratios():
    pytest.importorskip("ray")
    out = _run("bench_engine.py", "--quick")
    _check_bounds(out, bench_engine)
    assert "1-thread loop" in out and "ray engine, 2 CPUs" in out, out


@pytest.mark.slow
def test_bench_wav2vec2_prints_extraction_disk_and_pretraining():
    out = _run("bench_wav2vec2.py", "--smoke")
    _check_bounds(out, bench_wav2vec2)
    assert "three-view pre-training fp32:" in out and "GB per hour of audio" in out, out
