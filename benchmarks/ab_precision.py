"""A/B of training precision: the same sparse-label grid over several seeds in fp32 and in bf16.

Corpus: the synthetic default corpus (``--size``), views eGeMAPS + mel, fold(s) ``--folds``, label fractions
``--fractions``. Seed s pre-trains the fold with ``PretrainConfig(seed=s)`` and draws the labelled subsets and
fine-tunes with ``FinetuneConfig(seed=s)``; both precisions use the same seeds, so the comparison is paired.
Decision rule: ``precision="auto"`` may pick bf16 only if, in every cell (view × condition × fraction), its
mean UAR over the seeds stays within the fp32 seed spread (|mean bf16 - mean fp32| <= std of fp32 over seeds).

On a CPU without fast bf16 kernels the bf16 arm runs emulated (``SERCORE_BF16_EMULATED=1``): the same numbers,
several times slower, so its times say nothing about bf16 speed there. Times measured under load are unreliable;
the UARs are not (the runs are seeded).
Usage: ``python benchmarks/ab_precision.py [--size tiny] [--seeds 5] [--epochs 10] [--ft-epochs 20] [--smoke]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import pandas as pd
import torch

from sercore.core.config import usable_cores
from sercore.core.precision import EMULATE_ENV, bf16_support
from sercore.notebook.experiment import prepare
from sercore.notebook.settings import Params, run_settings
from sercore.pairwise import PairwiseGrid, sparse_label_grid
from sercore.training import finetune_cache

CELL = ["view", "condition", "fraction"]


def run_grid(exp, precision: str, seed: int, args) -> tuple[pd.DataFrame, float]:
    """One seed of the grid in ``precision`` → (rows, seconds)."""
    run = run_settings(Params(epochs=args.epochs, finetune_epochs=args.ft_epochs, seed=seed, precision=precision))
    pretrain, finetune = run.pretrain, run.finetune
    start = time.perf_counter()
    table = sparse_label_grid(exp, PairwiseGrid(fractions=args.fractions, repetitions=1, views=["egemaps", "mel"],
                                                pretrain=pretrain, finetune=finetune, workers=args.workers))
    return table.assign(precision=precision, seed=seed), time.perf_counter() - start


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per cell: mean and std of test UAR over seeds (fold means first) in each precision, and the verdict."""
    per_seed = rows.groupby(["precision", "seed", *CELL])["test_uar"].mean().reset_index()
    stats = per_seed.groupby(["precision", *CELL])["test_uar"].agg(["mean", "std"]).unstack("precision")
    table = pd.DataFrame({"fp32 mean": stats[("mean", "fp32")], "fp32 std": stats[("std", "fp32")],
                          "bf16 mean": stats[("mean", "bf16")], "bf16 std": stats[("std", "bf16")]})
    table["bf16 - fp32"] = table["bf16 mean"] - table["fp32 mean"]
    table["within spread"] = table["bf16 - fp32"].abs() <= table["fp32 std"]
    return table.reset_index()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "small", "default"], default="tiny")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--folds", type=int, nargs="+", default=[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.10, 0.25])
    parser.add_argument("--epochs", type=int, default=10, help="pre-training epochs (patience: a third)")
    parser.add_argument("--ft-epochs", type=int, default=20, help="fine-tuning epochs (patience: a fifth)")
    parser.add_argument("--workers", type=int, default=usable_cores())
    parser.add_argument("--smoke", action="store_true", help="2 seeds, 1 fraction, 1 + 2 epochs")
    args = parser.parse_args(argv)
    os.environ[finetune_cache.ENV] = "0"  # time the training: never a result from the cache
    if args.smoke:
        args.seeds, args.fractions, args.epochs, args.ft_epochs = 2, [0.25], 1, 2
    fast, reason = bf16_support("cpu")
    if not fast:
        os.environ[EMULATE_ENV] = "1"
    print(f"torch {torch.__version__}; bf16 on this CPU: {reason}" + ("" if fast else " (bf16 arm emulated: same "
                                                                        "numbers, its time is not bf16 speed)"))
    with tempfile.TemporaryDirectory(prefix="ab_precision_") as out:
        exp = prepare(Params(dataset="default", size=args.size, views=["egemaps", "mel"], folds=args.folds,
                             output_dir=out))
    print(f"corpus synthetic-{args.size}: {len(exp.task)} task utterances, folds {exp.folds}, fractions "
          f"{args.fractions}, {args.seeds} seeds, pre-training {args.epochs} / fine-tuning {args.ft_epochs} epochs")
    rows, seconds = [], {"fp32": 0.0, "bf16": 0.0}
    for seed in range(args.seeds):
        for precision in ("fp32", "bf16"):
            table, took = run_grid(exp, precision, seed, args)
            rows.append(table)
            seconds[precision] += took
            print(f"  seed {seed} {precision}: mean test UAR {table['test_uar'].mean():.3f} ({took:.0f} s)",
                  flush=True)
    table = summarize(pd.concat(rows, ignore_index=True))
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    verdict = bool(table["within spread"].all())
    print(f"bf16 within the fp32 seed spread in {int(table['within spread'].sum())} of {len(table)} cells -> "
          f"{'bf16 may be the default' if verdict else 'keep fp32 as the default'}")
    print(f"grid time bf16/fp32: {seconds['bf16'] / seconds['fp32']:.2f}x "
          f"({'native' if fast else 'emulated'} bf16; measured under whatever load the machine has)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
