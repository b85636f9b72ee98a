"""Benchmark: notebook 09's extraction with the feature store against the manifest-keyed cache it replaced.

Notebook 09 takes each corpus in turn as its target and pre-trains on the union of the others, so it asks for
the features of every target and of every pool. Three corpora are made from the synthetic default corpus (its
speakers dealt into three disjoint groups); both arms extract, from a cold cache, what the three targets ask for:

- manifest-keyed (the plain way, sercore 0.2): a cache entry per distinct manifest, so each pool extracts its
  utterances again (reproduced here by giving each manifest its own store root);
- store: one store, where each distinct audio is extracted once per view.

It prints per view the utterances each arm extracted (rows its stores hold) and each arm's wall time with their
ratio, then times ``FeatureSet.batch`` reading the union's mel features from the store's shards against the same
features in one memory-mapped array (the old single-entry layout), batches of 32, and prints that ratio (≥ 0.9
means the store reads at least 90 % as fast).
Usage: ``python benchmarks/bench_store.py [--size small] [--views egemaps mel] [--quick]``.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sercore.data import load_dataset
from sercore.features.cache import extract_features
from sercore.features.featureset import FeatureSet
from sercore.features.maintenance import store_table
from sercore.views import get_view

# Smoke-test floors (tests/test_benchmarks.py): the store extracts each utterance once where the manifest-keyed
# cache extracts it three times; reads must not fall below the plain memory map by more than the noise.
FLOORS = {"extraction speed-up:": 1.5, "batch read speed, store vs one memory map:": 0.75}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def three_corpora(size: str) -> list[pd.DataFrame]:
    """The default corpus of ``size``, its speakers dealt into three corpora ``c0``..``c2``."""
    manifest = load_dataset("default", size=size)
    speakers = sorted(manifest["speaker"].unique())
    group = {s: i % 3 for i, s in enumerate(speakers)}
    return [manifest[manifest["speaker"].map(group) == i].assign(dataset=f"c{i}").reset_index(drop=True)
            for i in range(3)]


def requests(corpora: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """What notebook 09 extracts with each corpus as target: the target, then the union of the others."""
    out = []
    for t, target in enumerate(corpora):
        out.append(target)
        out.append(pd.concat([c for i, c in enumerate(corpora) if i != t], ignore_index=True))
    return out


def run_arm(manifests, views, root: Path, keyed_by_manifest: bool) -> tuple[float, dict]:
    """Extract every view for every manifest; returns the wall time and the utterances stored per view."""
    start = time.perf_counter()
    for manifest in manifests:
        where = root
        if keyed_by_manifest:
            digest = hashlib.sha256("\n".join(sorted(manifest["path"])).encode()).hexdigest()[:16]
            where = root / digest
        for name in views:
            extract_features(manifest, get_view(name), cache_root=where, progress=False, on_error="skip",
                             view_factory=get_view)
    seconds = time.perf_counter() - start
    roots = [p for p in root.iterdir() if p.is_dir()] if keyed_by_manifest else [root]
    tables = [store_table(r) for r in roots]
    stored = pd.concat(tables).groupby("view")["utterances"].sum().to_dict()
    return seconds, stored


def read_times(fs: FeatureSet, repeats: int, batch: int = 32) -> tuple[float, float]:
    """Median seconds to read every batch of a shuffled epoch: from the store's shards, and from one memmap."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npy"
        np.save(path, np.asarray(fs.data))
        plain = FeatureSet(fs.ids, np.load(path, mmap_mode="r"), fs.lengths, dict(fs.meta))
        order = np.random.default_rng(0).permutation(len(fs))
        batches = [order[i:i + batch] for i in range(0, len(order), batch)]
        times = {"store": [], "plain": []}
        for _ in range(repeats):
            for arm, features in (("plain", plain), ("store", fs)):
                start = time.perf_counter()
                for b in batches:
                    features.batch(b)
                times[arm].append(time.perf_counter() - start)
        for b in batches[:3]:  # the same numbers either way
            assert np.array_equal(fs.batch(b)[0].numpy(), plain.batch(b)[0].numpy())
    return statistics.median(times["store"]), statistics.median(times["plain"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "small", "default"], default="small",
                        help="synthetic default corpus dealt into the three corpora")
    parser.add_argument("--views", nargs="+", default=["egemaps", "mel"], help="views to extract")
    parser.add_argument("--repeats", type=int, default=5, help="turns of the read benchmark (medians compared)")
    parser.add_argument("--quick", "--smoke", action="store_true", help="tiny corpus, mel only (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.views, args.repeats = "tiny", ["mel"], 3
    corpora = three_corpora(args.size)
    manifests = requests(corpora)
    unique = len(pd.concat(corpora)["path"].unique())
    print(f"CPU {cpu_model()}; three corpora of {', '.join(str(len(c)) for c in corpora)} utterances "
          f"({unique} distinct), notebook 09's {len(manifests)} extraction requests per view, views {args.views}")
    with tempfile.TemporaryDirectory() as tmp:
        old_s, old_n = run_arm(manifests, args.views, Path(tmp) / "keyed", keyed_by_manifest=True)
        new_s, new_n = run_arm(manifests, args.views, Path(tmp) / "store", keyed_by_manifest=False)
        for name in args.views:
            print(f"  {name:8s} utterances extracted: manifest-keyed {old_n.get(name, 0)}, store {new_n.get(name, 0)}")
        print(f"  wall time: manifest-keyed {old_s:.1f} s, store {new_s:.1f} s")
        print(f"extraction speed-up: {old_s / new_s:.2f}x (each distinct utterance once per view in the store)")
        if any(new_n.get(v, 0) > unique for v in args.views):
            sys.exit("the store extracted an utterance more than once")
        union = pd.concat(corpora, ignore_index=True)
        fs = extract_features(union, get_view("mel"), cache_root=Path(tmp) / "store", progress=False)
        store_s, plain_s = read_times(fs, args.repeats)
        print(f"  FeatureSet.batch, one shuffled epoch of {len(fs)} mel items in batches of 32 from "
              f"{len(fs.meta['shards'])} shards: store {store_s * 1e3:.1f} ms, one memory map {plain_s * 1e3:.1f} ms")
        print(f"batch read speed, store vs one memory map: {plain_s / store_s:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
