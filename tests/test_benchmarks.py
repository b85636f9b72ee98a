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
import bench_store  # noqa: E402
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


def _check_bounds(out: str, module) -> None:
    for label, floor in module.FLOORS.items():
        assert _ratio(out, label) >= floor, (label, floor, out)
    for label, ceiling in getattr(module, "CEILINGS", {}).items():
        assert _ratio(out, label) <= ceiling, (label, ceiling, out)


# script → its smoke arguments, how many floors it states, and what its output must say
SMOKES = {
    "bench_pretrain": (("--quick",), 3, ("would reach", "sequential loop, torch 1 thread")),
    "bench_finetune": (("--quick",), None, ("identical result tables: True", "one padded batch (256)")),
    "bench_engine": (("--quick",), None, ("1-thread loop", "ray engine, 2 CPUs")),
    "bench_wav2vec2": (("--smoke",), None, ("three-view pre-training fp32:", "GB per hour of audio",
                                            "upstream hubert_base", "upstream wavlm_base")),
    "bench_store": (("--quick",), 2, ("mel      utterances extracted: manifest-keyed 720, store 240", "CPU ")),
}
MODULES = {"bench_pretrain": bench_pretrain, "bench_finetune": bench_finetune, "bench_engine": bench_engine,
           "bench_wav2vec2": bench_wav2vec2, "bench_store": bench_store}


@pytest.mark.bench
@pytest.mark.parametrize("script", [pytest.param(name, marks=pytest.mark.ray) if name == "bench_engine" else name
                                    for name in SMOKES])
def test_bench_prints_its_ratios_within_bounds(script):
    """Each ratio the benchmark prints is at least its floor (at most its ceiling), and its report is complete;
    bench_engine starts a Ray instance."""
    if script == "bench_engine":
        pytest.importorskip("ray")
    args, n_floors, says = SMOKES[script]
    out = _run(f"{script}.py", *args)
    module = MODULES[script]
    assert n_floors is None or len(module.FLOORS) == n_floors
    _check_bounds(out, module)
    assert all(text in out for text in says), out


@pytest.mark.bench
def test_bench_views_prints_a_row_per_view():
    # 48 utterances: with 16, mel's plain loop took 0.1 s, and the store's fixed cost (worker start, index, shard)
    # decided suite/plain alone, under its floor on a loaded machine
    out = _run("bench_views.py", "--size", "tiny", "--limit", "48", "--views", "egemaps", "mel", "--workers", "2")
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["egemaps"], ["mel"])]
    assert [r[0] for r in rows] == ["egemaps", "mel"], out
    for row in rows:
        ratios = [float(cell[:-1]) for cell in row if re.fullmatch(RATIO, cell)]
        assert len(ratios) == len(bench_views.FLOORS) == 3, row
        for (column, floor), ratio in zip(bench_views.FLOORS.items(), ratios):
            assert ratio >= floor, (row[0], column, ratio, floor, out)
