"""Benchmark: Pairwise-CL pre-training data path and the sparse-label grid, each against the plain way.

1. Pre-training throughput (utterances/s, peak RSS growth) with mel-like ``[T, 64]`` + eGeMAPS-like ``[88]`` views:
   - sercore: one float16 memory-mapped FeatureSet, batches padded to their longest item, length-bucketed;
   - plain:   one float32 ``.npy`` per utterance padded to 15 s (1500 frames), loaded one by one per batch,
              every frame through the encoder (the paper's setup).
   Both run the same ``pretrain_pairwise`` (the plain data source is duck-typed as a FeatureSet).
2. Sparse-label grid: ``sparse_label_grid(workers=W)`` vs the same grid in a sequential loop (``workers=1``),
   with the same pre-trained encoders, so only the many small fine-tuning runs are timed. Also printed: the
   ceiling any schedule of the same work can reach on this machine (1-thread loop time / cores).
3. Batching check: the mel encoder's conv stack for the K runs of a grid cell on one validation batch, K models
   one after another vs batched with ``torch.func.vmap`` over their stacked weights (torch runs that as one grouped
   convolution). A ratio at or below 1 means batching the runs cannot beat the loop.
4. Precision (``--part precision``): pre-training throughput and the 48-run sparse-label grid (4 fractions × 3
   repetitions × 2 views × pre-trained/from scratch, one sequential loop) with today's encoders in fp32 and in bf16,
   against the baseline: ``ConvMelEncoder``, a frozen copy of an earlier mel encoder (a plain Conv1d stack), in fp32.
   Every arm prints the precision its pre-training and fine-tuning actually ran in, its torch threads and device,
   taken from the runs' own metrics (without fast bf16 kernels the bf16 arm falls back to fp32 and says so).

Features: random mel-like frames with IEMOCAP-like durations (log-normal, median 3.5 s, clipped to 1–15 s), or with
``--corpus SIZE`` the real mel features of the synthetic default corpus (generated/extracted into the cache when
missing; functionals stay random). Each part runs in a forked child so its peak memory is its own.
Usage: ``python benchmarks/bench_pretrain.py [--n 640] [--corpus small] [--workers 2] [--part precision] [--quick]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import vmap

from sercore.core.config import usable_cores
from sercore.features.featureset import FeatureSet
from sercore.models.encoders import frame_mask, masked_mean
from sercore.pairwise import PairwiseGrid, pretrain_fold, sparse_label_grid
from sercore.pairwise.pretrain import PretrainConfig, pretrain_pairwise
from sercore.training import FinetuneConfig, default_encoder, finetune, finetune_cache, fold_data, sparse_subset
from sercore.training.grid import ExperimentData

# Lowest acceptable value of each printed ratio (the smoke test checks them): far below the figures measured on
# an idle machine (README), so they hold on a loaded one, but a broken data path or pool falls under them. The
# grid's is lowest: under spawn each worker imports torch first, which outweighs the smoke grid itself (0.2x
# measured on a loaded machine).
FLOORS = {"pre-training speed-up:": 1.0, "sparse-grid speed-up:": 0.1, "batched/loop speed-up": 0.1}

FRAMES_15S, N_MELS, N_FUNCTIONALS = 1500, 64, 88


def make_corpus(n: int, seed: int = 0):
    """Manifest (5 sessions × 2 speakers, 4 target + 2 other emotions), mel-like frames and functionals."""
    rng = np.random.default_rng(seed)
    emotions = np.array(["neu", "hap", "sad", "ang", "fea", "dis"])
    speakers = np.array([f"Ses{s}{g}" for s in range(1, 6) for g in "FM"])
    spk = speakers[np.arange(n) % len(speakers)]
    emo = emotions[rng.integers(0, len(emotions), n)]
    manifest = pd.DataFrame({"utt_id": [f"utt{i:05d}" for i in range(n)], "speaker": spk, "emotion": emo,
                             "session": [s[:4] for s in spk], "path": "/synthetic.wav", "dataset": "synthetic"})
    seconds = np.clip(rng.lognormal(np.log(3.5), 0.6, n), 1.0, 15.0)
    lengths = (seconds * 100).astype(np.int64)
    code = pd.Series(emo).map({e: i for i, e in enumerate(emotions)}).to_numpy()
    centers = rng.normal(size=(len(emotions), N_MELS))
    frames = np.concatenate([centers[c] + rng.normal(size=(t, N_MELS)) for c, t in zip(code, lengths)])
    functionals = rng.normal(size=(len(emotions), N_FUNCTIONALS))[code] + rng.normal(size=(n, N_FUNCTIONALS))
    return manifest, lengths, frames.astype(np.float16), functionals.astype(np.float32)


def load_corpus(size: str, n: int, seed: int = 0):
    """The first ``n`` utterances of the default corpus of ``size``: manifest, real mel frames, random functionals."""
    from sercore.data import load_dataset
    from sercore.features.cache import extract_features
    from sercore.views import get_view

    manifest = load_dataset("default", size=size).sample(frac=1.0, random_state=seed).head(n)
    manifest = manifest.reset_index(drop=True)
    mel = extract_features(manifest, get_view("mel"), progress=False)
    positions = mel.positions(manifest["utt_id"].tolist())
    frames = np.concatenate([np.asarray(mel.frames(p)) for p in positions])
    code = pd.factorize(manifest["emotion"])[0]
    rng = np.random.default_rng(seed)
    functionals = rng.normal(size=(code.max() + 1, N_FUNCTIONALS))[code] + rng.normal(size=(len(code), N_FUNCTIONALS))
    return manifest, mel.lengths[positions], frames.astype(np.float16), functionals.astype(np.float32)


def write_featureset(folder: Path, ids, frames: np.ndarray, lengths) -> FeatureSet:
    """Store frames back to back as float16 ``.npy`` and reopen it memory-mapped (as the feature cache does)."""
    np.save(folder / "data.npy", frames)
    return FeatureSet(ids, np.load(folder / "data.npy", mmap_mode="r"), lengths, meta={"view": "mel", "encoder": "mel"})


class PaddedFiles:
    """The plain way: one float32 file per utterance, padded/cut to 15 s, read one by one per batch."""

    variable = True

    def __init__(self, folder: Path, ids, frames: np.ndarray, lengths):
        self.ids = np.asarray(ids)
        self.paths = [folder / f"{u}.npy" for u in self.ids]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        for i, path in enumerate(self.paths):
            padded = np.zeros((FRAMES_15S, N_MELS), np.float32)
            item = frames[offsets[i]:offsets[i + 1]][:FRAMES_15S]
            padded[:len(item)] = item
            np.save(path, padded)
        self.lengths = np.full(len(self.ids), FRAMES_15S)
        self.feature_shape = (N_MELS,)
        self.meta = {"view": "mel-padded-files", "encoder": "mel"}
        self._pos = {u: i for i, u in enumerate(self.ids)}

    def positions(self, ids):
        return np.array([self._pos[u] for u in ids])

    def batch(self, positions, max_len=None):
        x = np.stack([np.load(self.paths[p]) for p in positions])
        return torch.from_numpy(x), torch.from_numpy(self.lengths[positions])


def in_child(fn, *args):
    """Run ``fn(*args)`` in a forked process; returns its result plus its peak RSS growth in MiB."""
    def target(queue):
        start = _rss_mib()
        try:
            result = fn(*args)
        except BaseException as err:  # the parent must not wait forever on a child that failed
            queue.put((None, f"{type(err).__name__}: {err}"))
            raise
        queue.put((result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - start))

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(queue,))
    proc.start()
    result, memory = queue.get()
    proc.join()
    if isinstance(memory, str):
        raise RuntimeError(f"{getattr(fn, '__name__', fn)} failed in the child process: {memory}")
    return result, memory


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def pretrain_throughput(mel, functionals, train_ids, val_ids, epochs: int, bucket: int, threads: int) -> float:
    """Training utterances per second over the timed epochs (the first epoch is a warm-up and not counted)."""
    torch.set_num_threads(threads)
    config = PretrainConfig(max_epochs=epochs + 1, patience=epochs + 1, batch_size=128, bucket_batches=bucket)
    history = pretrain_pairwise({"mel": mel, "egemaps": functionals}, train_ids, val_ids, config=config).history
    return len(train_ids) * epochs / history["seconds"].iloc[1:].sum()


def part_pretrain(args, folder: Path, manifest, lengths, frames, functionals) -> None:
    ids = manifest["utt_id"].tolist()
    fixed = FeatureSet(ids, functionals, meta={"encoder": "mlp"})
    train_ids, val_ids = ids[: int(0.9 * len(ids))], ids[int(0.9 * len(ids)):]
    t0 = time.perf_counter()
    ours = write_featureset(folder, ids, frames, lengths)
    plain = PaddedFiles(folder, ids, frames, lengths)
    print(f"data written in {time.perf_counter() - t0:.1f} s: FeatureSet {ours.data.nbytes / 2**20:.0f} MiB, "
          f"padded files {sum(p.stat().st_size for p in plain.paths) / 2**20:.0f} MiB; "
          f"mean duration {lengths.mean() / 100:.2f} s")
    rows = {}
    for name, source, bucket in (("plain (15 s files)", plain, 0), ("sercore FeatureSet", ours, 8)):
        rate, mem = in_child(pretrain_throughput, source, fixed, train_ids, val_ids, args.epochs, bucket,
                             args.threads)
        rows[name] = (rate, mem)
        print(f"  {name:<22} {rate:8.1f} utt/s   peak RSS +{mem:7.0f} MiB")
    (r_plain, m_plain), (r_ours, m_ours) = rows.values()
    print(f"pre-training speed-up: {r_ours / r_plain:.2f}x (target >= 5x; compute alone is bounded by 15 s / mean "
          f"duration = {FRAMES_15S / lengths.mean():.2f}x); peak memory ratio plain/ours "
          f"{m_plain / max(m_ours, 1):.2f}")


def grid_time(manifest, task, splits, features, workers: int, threads: int, args) -> float:
    """Pre-train fold 0 (seeded, not timed), then time the grid's fine-tuning runs."""
    torch.set_num_threads(threads)
    encoders = pretrain_fold(features, fold_data(manifest, task, splits, 0), PretrainConfig(max_epochs=1))
    start = time.perf_counter()
    sparse_label_grid(ExperimentData(manifest, task, splits, features, folds=[0]),
                      PairwiseGrid(fractions=(0.02, 0.05, 0.10, 0.25), repetitions=args.reps, views=["mel", "egemaps"],
                                   finetune=FinetuneConfig(max_epochs=args.ft_epochs), workers=workers),
                      pretrained={0: encoders})
    return time.perf_counter() - start


def grid_inputs(manifest, lengths, frames, functionals) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """A benchmark corpus as the grids take it: mel and eGeMAPS-like FeatureSets, the 4-class task, the splits."""
    from sercore.data import make_splits

    ids = manifest["utt_id"].tolist()
    features = {"mel": FeatureSet(ids, frames, lengths, meta={"encoder": "mel"}),
                "egemaps": FeatureSet(ids, functionals, meta={"encoder": "mlp"})}
    return features, manifest[manifest["emotion"].isin(["neu", "hap", "sad", "ang"])], make_splits(manifest)


def part_grid(args, manifest, lengths, frames, functionals) -> None:
    features, task, splits = grid_inputs(manifest, lengths, frames, functionals)
    data = fold_data(manifest, task, splits, 0)
    n_runs = 4 * args.reps * 2 * 2
    print(f"sparse-label grid: {n_runs} fine-tuning runs ({len(data.train_ids)} labelled training utterances, "
          f"{len(data.val_ids)} validation), {args.ft_epochs} epochs max")
    default_threads = torch.get_num_threads()
    # Torch runs only in forked children: a child forked after its parent used several OpenMP threads can hang.
    seq_default, _ = in_child(grid_time, manifest, task, splits, features, 1, default_threads, args)
    seq_one, _ = in_child(grid_time, manifest, task, splits, features, 1, 1, args)
    par, _ = in_child(grid_time, manifest, task, splits, features, args.workers, 1, args)
    print(f"  sequential loop, torch {default_threads} threads: {seq_default:7.1f} s")
    print(f"  sequential loop, torch 1 thread:  {seq_one:7.1f} s")
    print(f"  process pool, {args.workers} workers x 1 thread: {par:7.1f} s")
    ceiling = seq_default / (seq_one / usable_cores())
    print(f"sparse-grid speed-up: {seq_default / par:.2f}x vs the default loop, {seq_one / par:.2f}x vs the "
          f"1-thread loop (target >= 2x; the same work spread perfectly over the {usable_cores()} cores of this "
          f"machine would reach {ceiling:.2f}x vs the default loop)")


def conv_stack(x: torch.Tensor, weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """The mel encoder's conv blocks for one model: conv → ReLU → max-pool (no pool after the last)."""
    for i, w in enumerate(weights):
        x = torch.relu(torch.conv1d(x, w, padding=w.shape[-1] // 2))
        x = nn.functional.max_pool1d(x, 2, ceil_mode=True) if i < len(weights) - 1 else x
    return x


def seconds_per_call(fn, repeat: int) -> float:
    fn()  # warm-up (oneDNN primitive creation)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def part_batching(args, manifest, lengths) -> None:
    from sercore.models.encoders import MelEncoder

    torch.set_num_threads(1)
    k, n_val = 2 * args.reps, max(len(manifest) // 8, 8)
    x = torch.randn(n_val, N_MELS, int(np.median(lengths)))
    models = [[c.weight.detach() for c in MelEncoder(N_MELS).convs] for _ in range(k)]
    stacked = [torch.stack(layer) for layer in zip(*models)]
    separate = seconds_per_call(lambda: [conv_stack(x, w) for w in models], args.batch_repeat)
    batched = seconds_per_call(lambda: vmap(conv_stack, in_dims=(None, 0))(x, stacked), args.batch_repeat)
    print(f"batching check: conv stack of {k} mel encoders on [{n_val}, {N_MELS}, {x.shape[-1]}], 1 thread: "
          f"one after another {separate * 1e3:.1f} ms, batched with torch.func.vmap {batched * 1e3:.1f} ms "
          f"-> batched/loop speed-up {separate / batched:.2f}x")


class ConvMelEncoder(nn.Module):
    """BASELINE, not sercore's encoder: a copy of an earlier mel encoder (``[B, T, n_mels]`` → Conv1d
    blocks over time with masked BatchNorm, ReLU and max-pool → masked mean), kept to time today's fp32 conv1d path.
    """

    def __init__(self, n_mels: int = N_MELS, channels=(64, 80), kernel: int = 3, pool: int = 2, out_dim: int = 128):
        super().__init__()
        self.out_dim, self.pool_size = out_dim, pool
        sizes = [n_mels, *channels, out_dim]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, kernel, padding=kernel // 2) for a, b in zip(sizes, sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in sizes[1:])
        self.pool = nn.MaxPool1d(pool, ceil_mode=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        mask = frame_mask(lengths, x.shape[0], x.shape[1], x.device)
        lens = mask.sum(1)
        h = x.transpose(1, 2) * mask[:, None, :]
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            frames = conv(h).transpose(1, 2)
            out = frames.new_zeros(frames.shape)
            out[mask] = norm(frames[mask])
            h = torch.relu(out.transpose(1, 2))
            if i < len(self.convs) - 1:
                h = self.pool(h)
                lens = torch.div(lens + self.pool_size - 1, self.pool_size, rounding_mode="floor")
                mask = torch.arange(h.shape[-1], device=x.device)[None, :] < lens[:, None]
        return masked_mean(h.transpose(1, 2), mask)


def precision_arm(features, data, baseline: bool, precision: str, args, threads: int) -> dict:
    """Pre-train (timed epochs) then run the 48 fine-tuning runs of the grid → utt/s, grid seconds and what ran:
    the precision each stage actually used (from the runs' metrics), torch threads and device."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    mel = ConvMelEncoder() if baseline else default_encoder(features["mel"], seed=0)
    pre = PretrainConfig(max_epochs=args.epochs + 1, patience=args.epochs + 1, precision=precision)
    result = pretrain_pairwise(features, data.pool_train, data.pool_val, config=pre, encoders={"mel": mel})
    rate = len(data.pool_train) * args.epochs / result.history["seconds"].iloc[1:].sum()
    config = FinetuneConfig(max_epochs=args.ft_epochs, precision=precision)
    start, used = time.perf_counter(), set()
    for fraction in (0.02, 0.05, 0.10, 0.25):
        for rep in range(3):
            idx = sparse_subset(data.train_ids, data.train_labels, fraction, rep)
            train = [data.train_ids[i] for i in idx]
            labels = [data.train_labels[i] for i in idx]
            for view in ("mel", "egemaps"):
                torch.manual_seed(rep)
                fresh = (ConvMelEncoder() if baseline and view == "mel" else default_encoder(features[view]))
                for encoder in (result.encoders[view], fresh):  # pre-trained, from scratch (48 runs in all)
                    run = finetune(encoder, features[view], train, labels, data.val_ids, data.val_labels,
                                   config=replace(config, seed=rep), test_ids=data.test_ids,
                                   test_labels=data.test_labels)
                    used.add(run.metrics["precision"])
    return {"rate": rate, "grid": time.perf_counter() - start, "pretrain_precision": result.metrics["precision"],
            "finetune_precision": "+".join(sorted(used)), "note": result.metrics["precision_note"],
            "threads": torch.get_num_threads(), "device": "cpu"}


def ran(arm: dict) -> str:
    """What an arm actually ran, from the run itself: ``ran pre-training bf16, fine-tuning bf16; 1 thread; cpu``."""
    return (f"ran pre-training {arm['pretrain_precision']}, fine-tuning {arm['finetune_precision']}; "
            f"{arm['threads']} thread{'s' if arm['threads'] != 1 else ''}; {arm['device']}")


def part_precision(args, manifest, lengths, frames, functionals) -> dict:
    features, task, splits = grid_inputs(manifest, lengths, frames, functionals)
    data = fold_data(manifest, task, splits, 0)
    threads = args.threads
    print(f"precision: pre-training {len(data.pool_train)} utterances ({args.epochs} timed epochs) and the 48-run "
          f"sparse-label grid ({len(data.train_ids)} labelled training utterances, {args.ft_epochs} epochs max), "
          f"{threads} torch thread(s)")
    arms = {"baseline conv1d fp32": (True, "fp32"), "sercore fp32": (False, "fp32"), "sercore bf16": (False, "bf16")}
    results = {}
    for name, (baseline, precision) in arms.items():
        arm, _ = in_child(precision_arm, features, data, baseline, precision, args, threads)
        results[name] = arm
        note = f" ({arm['note']})" if arm["note"] else ""
        print(f"  {name:<22} pre-training {arm['rate']:8.1f} utt/s   grid {arm['grid']:7.1f} s   [{ran(arm)}]{note}")
    base = results["baseline conv1d fp32"]
    for name in ("sercore fp32", "sercore bf16"):
        arm = results[name]
        print(f"{name} [{ran(arm)}] vs the fp32 conv1d baseline [{ran(base)}]: pre-training speed-up "
              f"{arm['rate'] / base['rate']:.2f}x, grid speed-up {base['grid'] / arm['grid']:.2f}x (target >= 2x)")
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=640, help="utterances")
    parser.add_argument("--epochs", type=int, default=2, help="pre-training epochs timed (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the pre-training part")
    parser.add_argument("--workers", type=int, default=usable_cores())
    parser.add_argument("--reps", type=int, default=3, help="repetitions per fraction in the grid")
    parser.add_argument("--ft-epochs", type=int, default=10)
    parser.add_argument("--corpus", choices=["tiny", "small", "default"], default=None,
                        help="use the real mel features of the synthetic default corpus of this size")
    parser.add_argument("--batch-repeat", type=int, default=10, help="timed passes of the batching check")
    parser.add_argument("--part", choices=["all", "pretrain", "grid", "batching", "precision"], default="all")
    parser.add_argument("--quick", "--smoke", action="store_true", help="tiny sizes (a smoke run)")
    args = parser.parse_args(argv)
    os.environ[finetune_cache.ENV] = "0"  # time the training: never a result from the cache
    if args.quick:
        args.n, args.epochs, args.reps, args.ft_epochs, args.batch_repeat = 160, 1, 1, 2, 1
    data = load_corpus(args.corpus, args.n) if args.corpus else make_corpus(args.n)
    manifest, lengths, frames, functionals = data
    source = f"mel features of the default corpus ({args.corpus})" if args.corpus else "random mel-like features"
    print(f"torch {torch.__version__}, {usable_cores()} CPU cores, {len(manifest)} utterances ({source}), "
          f"pre-training with {args.threads} torch thread(s)")
    if args.part in ("all", "pretrain"):
        with tempfile.TemporaryDirectory(prefix="bench_pretrain_") as tmp:
            part_pretrain(args, Path(tmp), manifest, lengths, frames, functionals)
    if args.part in ("all", "grid"):
        part_grid(args, manifest, lengths, frames, functionals)
    if args.part in ("all", "batching"):
        part_batching(args, manifest, lengths)
    if args.part in ("all", "precision"):
        part_precision(args, manifest, lengths, frames, functionals)


if __name__ == "__main__":
    sys.exit(main())
