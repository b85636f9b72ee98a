"""Benchmark: view extraction through the feature cache vs the plain way, and cache reads vs extraction.

For each view, on one corpus, in one run:
- suite: ``extract_features`` into a fresh cache folder (``--workers`` processes for CPU-bound views);
- plain: one file at a time, ``soundfile.read`` + the library call (opensmile ``process_signal`` for egemaps,
  torchaudio ``MelSpectrogram`` for mel, the view's own ``extract`` for model views);
- read: every feature back through ``FeatureSet.batch`` from the finished cache entry.
Speeds are audio seconds per wall second (model loading excluded); the table gives suite/plain and read/suite
ratios and peak memory. Each phase runs in its own forked process so its peak memory is its own.

    python benchmarks/bench_views.py --size tiny --views egemaps mel
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import soundfile as sf

from sercore.core.config import usable_cores
from sercore.data import load_dataset
from sercore.features.cache import extract_features
from sercore.views import get_view


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def in_child(fn, *args) -> dict:
    """Run ``fn(*args) -> dict`` in a forked process, so each phase's memory is measured on its own.

    Adds ``cpu``: CPU seconds used (its workers included), ``mem``: the process's peak resident memory growth (MiB)
    during ``fn``, and ``mem_workers``: the
    largest peak RSS (MiB) of its own worker processes (0 when it started none).
    """
    ctx = mp.get_context("fork")
    queue = ctx.Queue()

    def target():
        base, cpu = _rss(), os.times()
        try:
            out = fn(*args)
        except Exception as err:  # reported by the parent (e.g. a view whose model is unavailable)
            queue.put({"error": f"{type(err).__name__}: {err}"})
            return
        now = os.times()
        out["cpu"] = sum(now[:4]) - sum(cpu[:4])  # user + system, this process and its waited-for workers
        out["mem"] = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base, 0) / 2**20
        out["mem_workers"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        queue.put(out)

    proc = ctx.Process(target=target)
    proc.start()
    out = queue.get()
    proc.join()
    if "error" in out:
        raise RuntimeError(out["error"])
    return out


def plain_extractor(name: str, view):
    """The plain way for ``name``: a function ``(wave, sr) -> features`` calling the library directly."""
    if name == "egemaps":
        import opensmile

        smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                feature_level=opensmile.FeatureLevel.Functionals)
        return lambda wave, sr: smile.process_signal(wave, sr).to_numpy()[0]
    if name == "mel":
        import torch
        import torchaudio

        mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=64, f_min=60, f_max=7800)
        return lambda wave, sr: torch.log(mel(torch.from_numpy(wave)) + 1e-6).T.numpy()
    return lambda wave, sr: view.extract(wave, sr)


# Lowest acceptable value of each printed ratio column (the smoke test checks them): far below the figures measured
# on an idle machine (README), so they hold on a loaded one, but an extraction or cache path gone wrong falls under.
FLOORS = {"suite/plain": 0.2, "read/suite": 1.0, "cpu p/s": 0.2}
WARM_WAVE = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def cpu_headroom(workers: int, n: int = 5_000_000) -> float:
    """Speed-up of ``workers`` processes over one on a pure-CPU loop: the ceiling for suite/plain here."""
    start = time.perf_counter()
    for _ in range(workers):
        _spin(n)
    sequential = time.perf_counter() - start
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        start = time.perf_counter()
        list(pool.map(_spin, [n] * workers))
        parallel = time.perf_counter() - start
    return sequential / parallel


def warm_view(name: str):
    """The view after one extraction (models and transforms loaded): loading is not timed."""
    view = get_view(name)
    view.extract(WARM_WAVE)
    return view, view.provenance()


def run_suite(name: str, manifest, root: str, workers: int) -> dict:
    view, source = warm_view(name)
    start = time.perf_counter()
    fs = extract_features(manifest, view, cache_root=root, workers=workers, progress=False)
    return {"time": time.perf_counter() - start, "n": len(fs), "shape": fs.feature_shape, "source": source}


def run_read(name: str, manifest, root: str, batch_size: int) -> dict:
    view = get_view(name)
    start = time.perf_counter()
    fs = extract_features(manifest, view, cache_root=root, progress=False)
    for i in range(0, len(fs), batch_size):
        fs.batch(np.arange(i, min(i + batch_size, len(fs))))
    return {"time": time.perf_counter() - start}


def run_plain(name: str, manifest) -> dict:
    extract = plain_extractor(name, warm_view(name)[0])
    extract(WARM_WAVE, 16000)
    start = time.perf_counter()
    for path in manifest["path"]:
        wave, sr = sf.read(path, dtype="float32")
        extract(wave if wave.ndim == 1 else wave.mean(axis=1), sr)
    return {"time": time.perf_counter() - start}


def fastest(runs: list[dict]) -> dict:
    return min(runs, key=lambda r: r["time"])


def bench_view(name: str, manifest, audio_s: float, args) -> dict:
    suites, reads, plains = [], [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as root:
            suites.append(in_child(run_suite, name, manifest, root, args.workers))
            reads.append(in_child(run_read, name, manifest, root, args.batch_size))
        plains.append(in_child(run_plain, name, manifest))
    suite, read, plain = fastest(suites), fastest(reads), fastest(plains)
    return {"view": name, "n": suite["n"], "shape": suite["shape"], "source": suite["source"],
            "suite": audio_s / suite["time"], "plain": audio_s / plain["time"], "read": audio_s / read["time"],
            "suite/plain": plain["time"] / suite["time"], "read/suite": suite["time"] / read["time"],
            "cpu plain/suite": plain["cpu"] / suite["cpu"],
            "mem_suite": suite["mem"], "mem_workers": suite["mem_workers"], "mem_plain": plain["mem"],
            "mem_read": read["mem"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--size", default="default", help="size of the synthetic default corpus (tiny, small, default)")
    parser.add_argument("--views", nargs="+", default=["egemaps", "mel", "speaker"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="rows per FeatureSet.batch when reading back")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each phase; the fastest counts")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N utterances")
    args = parser.parse_args(argv)

    params = {"size": args.size} if args.dataset == "default" else {}
    manifest = load_dataset(args.dataset, args.data_root, **params)
    if args.limit:
        manifest = manifest.iloc[:args.limit]
    audio_s = sum(sf.info(p).duration for p in manifest["path"])
    cores = usable_cores()
    load = os.getloadavg()[0]
    print(f"{args.dataset} ({args.size}): {len(manifest)} utterances, {audio_s / 60:.1f} min of audio; "
          f"{cores} usable cores (load average {load:.1f}), workers={args.workers}, fastest of {args.repeat}",
          flush=True)

    head = (f"{'view':<9} {'shape':<11} {'suite':>8} {'plain':>8} {'suite/plain':>11} {'read':>9} "
            f"{'read/suite':>10} {'cpu p/s':>7} {'MiB suite':>9} {'(workers)':>9} {'MiB plain':>9} {'MiB read':>8}")
    print(f"CPU headroom: {args.workers} processes run a pure-CPU loop {cpu_headroom(args.workers):.2f}x "
          "faster than one (the most suite/plain can reach here)", flush=True)
    rows = []
    for name in args.views:
        print(f"... {name}", file=sys.stderr, flush=True)
        try:
            rows.append(bench_view(name, manifest, audio_s, args))
        except RuntimeError as err:
            print(f"{name}: not measured: {err}", flush=True)
    print("speeds in audio seconds per wall second\n" + head)
    for r in rows:
        print(f"{r['view']:<9} {str(r['shape']):<11} {r['suite']:>8.1f} {r['plain']:>8.1f} {r['suite/plain']:>10.2f}x "
              f"{r['read']:>9.0f} {r['read/suite']:>9.1f}x {r['cpu plain/suite']:>6.2f}x {r['mem_suite']:>9.0f} "
              f"{r['mem_workers']:>9.0f} "
              f"{r['mem_plain']:>9.0f} {r['mem_read']:>8.0f}")
    print("cpu p/s: CPU time of the plain way / CPU time of the suite (workers included): 1.0 = no overhead, "
          "so suite/plain would reach the CPU headroom")
    print("MiB: peak resident memory growth of the process doing the work; (workers): largest peak RSS of "
          "one extraction worker process")
    for r in rows:
        print(f"{r['view']}: {r['source']}")


if __name__ == "__main__":
    main()
