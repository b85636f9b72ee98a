"""Benchmark: the sparse-label grid's fine-tuning runs with validation and test passes in length-sorted batches of
64 (sercore's ``FinetuneConfig.eval_batch_size``) against the plain way, the whole validation set in one batch padded
to its longest utterance (``eval_batch_size=256``).

Every fine-tuning run scores its validation set after each epoch, and with few labels that pass costs more than the
training steps: 12 labelled utterances train in one step, 200 validation utterances are encoded every epoch. Both
arms run the same 4 fractions × ``--reps`` repetitions × 2 views (mel, eGeMAPS-like) × pre-trained/from scratch in a
one-thread loop, alternating ``--repeats`` times; the medians are compared, and the two result tables must be
identical (the batching changes no number: the encoders mask padding, BatchNorm uses running statistics).
Features: random mel-like frames with IEMOCAP-like durations (``bench_pretrain.make_corpus``), or with
``--corpus SIZE`` the real mel features of the synthetic default corpus.
Usage: ``python benchmarks/bench_finetune.py [--n 640] [--corpus default] [--repeats 3] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pretrain import grid_inputs, in_child, load_corpus, make_corpus  # noqa: E402

from sercore.pairwise import PairwiseGrid, pretrain_fold, sparse_label_grid  # noqa: E402
from sercore.pairwise.pretrain import PretrainConfig
from sercore.training import (
    FinetuneConfig,
    finetune_cache,  # noqa: E402
    fold_data,  # noqa: E402
)
from sercore.training.grid import ExperimentData  # noqa: E402

PLAIN, SERCORE = 256, FinetuneConfig().eval_batch_size
# Smoke-test bound (tests/test_benchmarks.py): at smoke size the validation set fits one batch either way, so the
# ratio is about 1; the floor only catches a path that broke. The target is in the printed line.
FLOORS = {"validation batching speed-up:": 0.5}


def grid_times(manifest, task, splits, features, args) -> tuple[list[float], list[float], bool]:
    """Pre-train fold 0 (not timed), then time the grid's fine-tuning runs, plain and sercore in turn."""
    torch.set_num_threads(1)
    encoders = pretrain_fold(features, fold_data(manifest, task, splits, 0), PretrainConfig(max_epochs=1))
    config = FinetuneConfig(max_epochs=args.ft_epochs)
    times, tables = {PLAIN: [], SERCORE: []}, {}
    for _ in range(args.repeats):
        for size in (PLAIN, SERCORE):
            start = time.perf_counter()
            grid = PairwiseGrid(fractions=(0.02, 0.05, 0.10, 0.25), repetitions=args.reps, views=["mel", "egemaps"],
                                workers=1, finetune=replace(config, eval_batch_size=size))
            tables[size] = sparse_label_grid(ExperimentData(manifest, task, splits, features, folds=[0]), grid,
                                             pretrained={0: encoders})
            times[size].append(time.perf_counter() - start)
    same = tables[PLAIN].drop(columns="node").equals(tables[SERCORE].drop(columns="node"))
    return times[PLAIN], times[SERCORE], same


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=640, help="utterances (random features)")
    parser.add_argument("--corpus", choices=["tiny", "small", "default"], default=None,
                        help="use the real mel features of the synthetic default corpus of this size")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per fraction")
    parser.add_argument("--ft-epochs", type=int, default=20, help="fine-tuning epoch cap (the default budget's)")
    parser.add_argument("--repeats", type=int, default=3, help="turns of the two arms (medians are compared)")
    parser.add_argument("--quick", "--smoke", action="store_true", help="tiny sizes (a smoke run)")
    args = parser.parse_args(argv)
    os.environ[finetune_cache.ENV] = "0"  # time the training: never a result from the cache
    if args.quick:
        args.n, args.reps, args.ft_epochs, args.repeats = 160, 1, 2, 1
    corpus = load_corpus(args.corpus, args.n) if args.corpus else make_corpus(args.n)
    manifest = corpus[0]
    features, task, splits = grid_inputs(*corpus)
    data = fold_data(manifest, task, splits, 0)
    print(f"torch {torch.__version__}, {len(manifest)} utterances ({args.corpus or 'random mel-like'} features); "
          f"sparse-label grid: {4 * args.reps * 2 * 2} fine-tuning runs, {len(data.val_ids)} validation and "
          f"{len(data.test_ids)} test utterances, {args.ft_epochs} epochs max, one thread, {args.repeats} turns")
    (plain, ours, same), _ = in_child(grid_times, manifest, task, splits, features, args)
    listed = lambda ts: ", ".join(f"{t:.1f}" for t in ts)  # noqa: E731
    print(f"  plain, one padded batch ({PLAIN}):      {statistics.median(plain):7.1f} s ({listed(plain)})")
    print(f"  sercore, sorted batches of {SERCORE}:       {statistics.median(ours):7.1f} s ({listed(ours)})")
    print(f"  identical result tables: {same}")
    print(f"validation batching speed-up: {statistics.median(plain) / statistics.median(ours):.2f}x "
          f"(the same runs, the same numbers)")
    if not same:
        sys.exit("the two result tables differ")


if __name__ == "__main__":
    sys.exit(main())
