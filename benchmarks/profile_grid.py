"""Profile: where the 48-run sparse-label grid spends its time, per precision (what a faster encoder cannot speed up).

The grid of ``bench_pretrain.py --part precision`` (4 fractions × 3 repetitions × 2 views × pre-trained/from
scratch, one sequential loop, one torch thread) runs under ``cProfile``; the time is split into the training
forward pass, backward pass, optimizer steps, batch loading (memmap rows to padded float32 tensors), the
validation/test passes, the per-run setup (copying and initialising encoders, normalisation, labels, best-epoch
state copies, seeding) and the rest (Python overhead of the loops, LR scheduling, scores). The precision arms
print what they actually ran in. The share outside the encoder's forward and backward bounds any speed-up that
bf16 kernels can bring (Amdahl): the last line prints that bound.
Usage: ``python benchmarks/profile_grid.py [--n 640] [--ft-epochs 10] [--precision fp32 bf16] [--quick]``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pretrain import grid_inputs, in_child, make_corpus, precision_arm, ran  # noqa: E402

from sercore.training import finetune_cache, fold_data  # noqa: E402

PARTS = {  # part -> (function name, file suffix, caller name or None)
    "forward (training)": ("_wrapped_call_impl", "torch/nn/modules/module.py", "_fit_classifier"),
    "backward": ("backward", "torch/_tensor.py", None),
    "optimizer steps": ("step", "torch/optim/adam.py", None),
    "batch loading (training)": ("load_batch", "sercore/training/loops.py", "_fit_classifier"),
    "validation/test passes": ("batched_outputs", "sercore/training/loops.py", None),
    "setup (copies, init, normalisation)": ("deepcopy", "copy.py", "finetune"),
}


def _cumulative(stats: pstats.Stats, name: str, suffix: str, caller: str | None) -> float:
    total = 0.0
    for (path, _, func), (_, _, _, ct, callers) in stats.stats.items():
        if func != name or not path.endswith(suffix):
            continue
        if caller is None:
            total += ct
        else:
            total += sum(c[3] for (_, _, f), c in callers.items() if f == caller)
    return total


def profile_arm(features, data, precision: str, args) -> dict:
    profiler = cProfile.Profile()
    profiler.enable()
    arm = precision_arm(features, data, False, precision, args, 1)
    profiler.disable()
    stats = pstats.Stats(profiler)
    arm["parts"] = {part: _cumulative(stats, *spec) for part, spec in PARTS.items()}
    arm["total"] = _cumulative(stats, "finetune", "sercore/training/finetune.py", None)
    return arm


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=640, help="utterances")
    parser.add_argument("--epochs", type=int, default=1, help="pre-training epochs (not profiled)")
    parser.add_argument("--ft-epochs", type=int, default=10)
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--quick", "--smoke", action="store_true", help="tiny sizes (a smoke run)")
    args = parser.parse_args(argv)
    os.environ[finetune_cache.ENV] = "0"
    if args.quick:
        args.n, args.ft_epochs = 160, 2
    manifest, lengths, frames, functionals = make_corpus(args.n)
    features, task, splits = grid_inputs(manifest, lengths, frames, functionals)
    data = fold_data(manifest, task, splits, 0)
    print(f"torch {torch.__version__}; the 48-run grid, {len(data.train_ids)} labelled training utterances, "
          f"{args.ft_epochs} epochs max, 1 thread; seconds inside the 48 fine-tuning runs (cProfile)")
    for precision in args.precision:
        arm, _ = in_child(profile_arm, features, data, precision, args)
        total, parts = arm["total"], arm["parts"]
        print(f"{precision} [{ran(arm)}]: {total:.1f} s")
        for part, seconds in parts.items():
            print(f"  {part:<38} {seconds:7.2f} s  {100 * seconds / total:5.1f} %")
        rest = total - sum(parts.values())
        print(f"  {'rest (loops, scheduler, scores)':<38} {rest:7.2f} s  {100 * rest / total:5.1f} %")
        model = parts["forward (training)"] + parts["backward"] + parts["validation/test passes"]
        print(f"  the model's forward and backward passes: {100 * model / total:.1f} % of the grid; bound on the "
              f"grid's speed-up from faster kernels for them alone: {total / (total - model):.2f}x")


if __name__ == "__main__":
    main()
