"""Benchmark: the 48-run sparse-label grid on two cores with the Ray engine and with the local engine.

The grid of ``bench_pretrain.py`` (4 fractions × 3 repetitions × 2 views × pre-trained/supervised = 48 fine-tuning
runs on fold 0, pre-trained once and not timed), on random mel-like and eGeMAPS-like features:
- the 1-thread loop (``LocalEngine(1)``, torch 1 thread): the plain way, and the ceiling it gives for ``cores``
  cores (1-thread loop time / cores: the same work spread perfectly);
- the local engine (``LocalEngine(cores)``, one process of one torch thread per core; the pool's start counts);
- the Ray engine (a local Ray started with ``num_cpus=cores``, or ``--ray-address`` to join one). Ray and its
  workers start before the timing, as the local engine's forked workers inherit the parent's state: each worker
  runs ``sercore.engine.warm_up_worker`` (imports) when it starts. Each new Ray runs the grid twice, as a notebook
  runs several grids on one Ray: the first grid on new worker processes, the second on the same ones.
Loop, local engine and Ray take turns ``--repeats`` times (this machine's speed drifts by 10-20 % between minutes;
Ray is shut down while the others run); the ratios use the medians. Printed: Ray time / local time (second grid,
and first grid), and the local engine's fraction of the ceiling (ceiling time / local time).
Usage: ``python benchmarks/bench_engine.py [--cores 2] [--repeats 2] [--quick]``.
"""

from __future__ import annotations

import argparse
import operator
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pretrain import grid_inputs, in_child, make_corpus  # noqa: E402  (the same corpus and child runner)

from sercore.engine import (  # noqa: E402
    CallJob,  # noqa: E402
    LocalEngine,
    get_engine,
)
from sercore.pairwise import PairwiseGrid, pretrain_fold, sparse_label_grid  # noqa: E402
from sercore.pairwise.pretrain import PretrainConfig
from sercore.training import (
    FinetuneConfig,
    finetune_cache,  # noqa: E402
    fold_data,  # noqa: E402
)
from sercore.training.grid import ExperimentData  # noqa: E402

FRACTIONS = (0.02, 0.05, 0.10, 0.25)
# Smoke-test bound (tests/test_benchmarks.py) that only catches a broken pool; the targets are in the printed
# lines. Ray gets none: at smoke size its fresh workers' first imports of torch outweigh the grid (34x measured in CI).
FLOORS = {"local engine vs the": 0.2}


def grid_seconds(data, plan: list[str], workers: int, args) -> list[float]:
    """Pre-train fold 0 (not timed), then time the grid's fine-tuning runs once per entry of ``plan``: ``"loop"``,
    ``"local"`` (Ray shut down first: its idle processes cost the local engine ~4 %), ``"ray-cold"`` (a new Ray,
    started and its workers warmed up before the timing) or ``"ray"`` (the same Ray again)."""
    import ray

    manifest, task, splits, features = data
    torch.set_num_threads(1)
    encoders = pretrain_fold(features, fold_data(manifest, task, splits, 0), PretrainConfig(max_epochs=1))
    seconds = []
    for step in plan:
        if step in ("loop", "local", "ray-cold"):
            ray.shutdown()
        if step == "ray-cold":
            engine = get_engine("ray", address=args.ray_address, num_cpus=workers)
            engine.run([CallJob(operator.is_, i) for i in range(4 * workers)])  # start Ray's worker processes
        elif step != "ray":
            engine = LocalEngine(1 if step == "loop" else workers)
        start = time.perf_counter()
        sparse_label_grid(ExperimentData(manifest, task, splits, features, folds=[0]),
                          PairwiseGrid(fractions=FRACTIONS, repetitions=args.reps, views=["mel", "egemaps"],
                                       finetune=FinetuneConfig(max_epochs=args.ft_epochs), engine=engine),
                          pretrained={0: encoders})
        seconds.append(time.perf_counter() - start)
    ray.shutdown()
    return seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=640, help="utterances")
    parser.add_argument("--cores", type=int, default=2, help="local workers and Ray CPUs")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per fraction (3: 48 runs)")
    parser.add_argument("--ft-epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2, help="turns of loop, local engine and Ray")
    parser.add_argument("--ray-address", default=None, help="join this Ray cluster instead of starting one")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    args = parser.parse_args(argv)
    os.environ[finetune_cache.ENV] = "0"  # time the training: never a result from the cache
    if args.quick:
        args.n, args.reps, args.ft_epochs, args.repeats = 160, 1, 2, 1
    corpus = make_corpus(args.n)
    features, task, splits = grid_inputs(*corpus)
    data = (corpus[0], task, splits, features)
    n_runs = len(FRACTIONS) * args.reps * 2 * 2
    print(f"sparse-label grid: {n_runs} fine-tuning runs, {args.ft_epochs} epochs max, {args.cores} cores, "
          f"{args.repeats} x (loop, local engine, then a new Ray: its first grid and a second one)")
    plan = ["loop", "local", "ray-cold", "ray"] * args.repeats
    times, _ = in_child(grid_seconds, data, plan, args.cores, args)
    runs = {step: [t for s, t in zip(plan, times) if s == step] for step in set(plan)}
    loop, local, cold, warm = (statistics.median(runs[k]) for k in ("loop", "local", "ray-cold", "ray"))
    ceiling = loop / args.cores

    def listed(key):
        return f"median of {', '.join(f'{t:.1f}' for t in runs[key])}"

    print(f"  1-thread loop:                      {loop:7.1f} s ({listed('loop')}; ceiling on {args.cores} cores "
          f"{ceiling:.1f} s)")
    print(f"  local engine, {args.cores} workers x 1 thread:  {local:7.1f} s ({listed('local')})")
    print(f"  ray engine, {args.cores} CPUs, first grid:   {cold:7.1f} s ({listed('ray-cold')}; new worker processes)")
    print(f"  ray engine, {args.cores} CPUs, second grid:  {warm:7.1f} s ({listed('ray')}; the same workers)")
    print(f"ray/local wall time: {warm / local:.2f}x (Ray's overhead: {100 * (warm / local - 1):+.0f} % of the "
          f"local engine's time; target <= +15 %)")
    print(f"ray first grid/local wall time: {cold / local:.2f}x (new workers: {100 * (cold / local - 1):+.0f} %)")
    print(f"local engine vs the {args.cores}-core ceiling: {ceiling / local:.2f}x (target >= 0.90x)")


if __name__ == "__main__":
    sys.exit(main())
