"""The benchmarks run end to end at smoke sizes and print their ratios (their figures are measured by hand, not here).

Each script runs in its own process, as a user would run it, with the session's isolated cache.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
    for label in ("pre-training speed-up:", "sparse-grid speed-up:", "batched/loop speed-up"):
        assert _ratio(out, label) > 0, out
    assert "would reach" in out and "sequential loop, torch 1 thread" in out, out


@pytest.mark.slow
def test_bench_views_prints_a_row_per_view():
    out = _run("bench_views.py", "--size", "tiny", "--limit", "16", "--views", "egemaps", "mel", "--workers", "2")
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["egemaps"], ["mel"])]
    assert [r[0] for r in rows] == ["egemaps", "mel"], out
    for row in rows:
        ratios = [float(cell[:-1]) for cell in row if re.fullmatch(RATIO, cell)]
        assert len(ratios) == 3 and all(r > 0 for r in ratios), row
