"""Benchmark: wav2vec 2.0 base at full size (random weights) — extraction and three-view pre-training; and the
base architectures of wav2vec 2.0, HuBERT and WavLM side by side.

1. Extraction of the same files (synthetic speech-like noise, IEMOCAP-like durations) by
   - plain:   torchaudio's ``wav2vec2_base()`` in process, ``model.extract_features(wave)`` one file at a time,
              fp32, every layer's output kept in memory (what a plain script does);
   - sercore: ``extract_features`` with ``get_view("wav2vec2", source="random:wav2vec2_base", precision=...)``:
              length-sorted batches, 13 layers streamed chunk by chunk into the float16 cache; fp32 and bf16.
   Printed: real-time factor, speed-up against plain, peak RSS growth of each arm (its own forked child), and
   the cache's disk per hour of audio against ``estimate_bytes``.
2. Three-view Pairwise-CL pre-training (wav2vec2 13 × 768 + mel + eGeMAPS) throughput in fp32 and bf16.
3. Upstreams: ``extract_features`` of the same files with each base architecture of ``UPSTREAMS`` (random
   weights: ``random:wav2vec2_base``, ``random:hubert_base``, ``random:wavlm_base``), fp32, in one run: real-time
   factor, peak memory (RSS growth of its own child; peak CUDA memory on a GPU), GB per hour of audio in the
   float16 cache against the view's ``estimate_bytes``.

On a device without fast bf16 kernels a bf16 run falls back to fp32 (``sercore.core.precision``), so the bf16 arms would
repeat the fp32 ones: they are skipped with a line saying why (``SERCORE_BF16_EMULATED=1`` runs them emulated).
Defaults: a few minutes of audio (``--minutes``); about 30 for the real measurement. ``--smoke``: seconds.
Usage: ``python benchmarks/bench_wav2vec2.py [--minutes 3] [--epochs 2] [--device cpu] [--part all|extract|pretrain|
upstreams] [--smoke]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pretrain import in_child  # noqa: E402  (the same child runner: result + peak RSS growth)

from sercore.core.config import usable_cores  # noqa: E402

# Smoke-test bounds (tests/test_benchmarks.py) that only catch a broken path.
FLOORS = {"extraction speed-up fp32 vs plain:": 0.3, "measured/estimate": 0.8}
CEILINGS = {"measured/estimate": 1.25}
SOURCE = "random:wav2vec2_base"
UPSTREAMS = {"wav2vec2": "random:wav2vec2_base", "hubert_base": "random:hubert_base",
             "wavlm_base": "random:wavlm_base"}  # view -> source: the base architectures compared in part 3
SR = 16000


def make_audio(folder: Path, minutes: float, seed: int = 0, max_seconds: float = 15.0) -> pd.DataFrame:
    """Speech-like noise files (amplitude-modulated, band-limited) until ``minutes`` of audio; the manifest."""
    rng = np.random.default_rng(seed)
    rows, total, i = [], 0.0, 0
    emotions, speakers = ["neu", "hap", "sad", "ang"], [f"Ses{s}{g}" for s in range(1, 6) for g in "FM"]
    while total < minutes * 60:
        seconds = float(np.clip(rng.lognormal(np.log(3.5), 0.6), 1.0, max_seconds))
        n = int(seconds * SR)
        t = np.arange(n) / SR
        wave = np.convolve(rng.normal(size=n), np.hanning(9) / 4.5, "same")
        wave *= 0.2 * (1.2 + np.sin(2 * np.pi * rng.uniform(2, 6) * t))
        path = folder / f"utt{i:05d}.wav"
        sf.write(path, wave.astype(np.float32), SR, subtype="PCM_16")
        rows.append({"utt_id": path.stem, "path": str(path), "speaker": speakers[i % 10],
                     "emotion": emotions[int(rng.integers(4))], "seconds": seconds})
        total, i = total + seconds, i + 1
    return pd.DataFrame(rows)


def plain_extraction(manifest: pd.DataFrame, threads: int, device: str) -> float:
    """The plain way: one file at a time through ``model.extract_features``, fp32, results kept in memory."""
    import torch
    import torchaudio

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torchaudio.models.wav2vec2_base().to(device).eval()
    kept = []
    start = time.perf_counter()
    with torch.inference_mode():
        for path in manifest["path"]:
            wave, _ = sf.read(path, dtype="float32")
            layers, _ = model.extract_features(torch.from_numpy(wave)[None].to(device))
            kept.append(torch.stack(layers, dim=2)[0].cpu().numpy())
    return time.perf_counter() - start


def sercore_extraction(manifest: pd.DataFrame, cache_root: Path, precision: str, threads: int, device: str,
                       batch_size: int) -> tuple[float, int, str]:
    """``extract_features`` into a fresh cache → (seconds, bytes of the entry, precision note)."""
    import torch

    from sercore.features.cache import cache_info, extract_features
    from sercore.views import get_view

    torch.set_num_threads(threads)
    view = get_view("wav2vec2", source=SOURCE, precision=precision, device=device, batch_size=batch_size)
    view._model()  # build the model before the clock starts, as the plain arm does
    start = time.perf_counter()
    extract_features(manifest, view, cache_root=cache_root, batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - start
    return seconds, store_bytes(cache_info(manifest, view, cache_root=cache_root)["folder"]), \
        view.provenance()["precision_note"]


def store_bytes(folder) -> int:
    """Bytes of the feature arrays of a store folder (its ``.npy`` shards; the index is not counted)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*.npy"))


def pretrain_throughput(manifest, cache_root: Path, precision: str, epochs: int, threads: int,
                        device: str) -> tuple[float, float, dict]:
    """Three-view Pairwise-CL (wav2vec2 fp32 cache + mel + eGeMAPS) → (utt/s, audio s per s, result metrics)."""
    import torch

    from sercore.features.cache import extract_features
    from sercore.pairwise.pretrain import PretrainConfig, pretrain_pairwise
    from sercore.views import get_view

    torch.set_num_threads(threads)
    features = {"wav2vec2": extract_features(manifest, get_view("wav2vec2", source=SOURCE), cache_root=cache_root,
                                             progress=False),
                "mel": extract_features(manifest, get_view("mel"), cache_root=cache_root, progress=False,
                                        workers=1),
                "egemaps": extract_features(manifest, get_view("egemaps"), cache_root=cache_root, progress=False,
                                            workers=1)}
    ids = manifest["utt_id"].tolist()
    cut = max(2, int(0.9 * len(ids)))
    train, val = ids[:cut], ids[cut:] or ids[-2:]
    config = PretrainConfig(max_epochs=epochs + 1, patience=epochs + 1, batch_size=32, precision=precision)
    result = pretrain_pairwise(features, train, val, config=config, device=device)
    timed = result.history["seconds"].iloc[1:].sum()  # the first epoch is a warm-up
    audio = manifest.set_index("utt_id").loc[train, "seconds"].sum()
    return len(train) * epochs / timed, audio * epochs / timed, result.metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="minutes of synthetic audio (real run: 30)")
    parser.add_argument("--epochs", type=int, default=2, help="pre-training epochs timed (after one warm-up)")
    parser.add_argument("--threads", type=int, default=usable_cores())
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--part", choices=["all", "extract", "pretrain", "upstreams"], default="all")
    parser.add_argument("--smoke", action="store_true", help="a few seconds of audio, one epoch (CI smoke test)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.minutes, args.epochs = 0.1, 1
    with tempfile.TemporaryDirectory(prefix="bench_wav2vec2_") as tmp:
        folder = Path(tmp)
        (folder / "audio").mkdir()
        manifest = make_audio(folder / "audio", args.minutes, max_seconds=4.0 if args.smoke else 15.0)
        hours = manifest["seconds"].sum() / 3600
        print(f"{len(manifest)} files, {hours * 60:.1f} min of audio (mean {manifest['seconds'].mean():.1f} s), "
              f"wav2vec2 {SOURCE} (random weights), {args.threads} torch thread(s), device {args.device}")
        if args.part in ("all", "extract"):
            part_extract(args, manifest, folder, hours)
        if args.part in ("all", "pretrain"):
            part_pretrain(args, manifest, folder)
        if args.part in ("all", "upstreams"):
            part_upstreams(args, manifest, folder, hours)
    return 0


def precisions(device: str) -> list[str]:
    """fp32, and bf16 where a run would use it (fast kernels, or emulation asked for); else a line why not."""
    from sercore.core.precision import resolve_precision

    used, note = resolve_precision("bf16", device)
    if used != "bf16":
        print(f"  bf16 arms skipped: {note}")
        return ["fp32"]
    return ["fp32", "bf16"]


def part_extract(args, manifest, folder: Path, hours: float) -> None:
    audio_s = hours * 3600
    plain, plain_mem = in_child(plain_extraction, manifest, args.threads, args.device)
    print(f"  plain (extract_features, 1 file at a time, fp32): {audio_s / plain:6.2f}x real time, "
          f"peak RSS +{plain_mem:6.0f} MiB")
    for precision in precisions(args.device):
        (took, size, note), mem = in_child(sercore_extraction, manifest, folder / f"cache-{precision}", precision,
                                           args.threads, args.device, args.batch_size)
        print(f"  sercore {precision} (batched, float16 cache):      {audio_s / took:6.2f}x real time, "
              f"peak RSS +{mem:6.0f} MiB {('(' + note + ')') if note else ''}")
        print(f"extraction speed-up {precision} vs plain: {plain / took:.2f}x; peak memory ratio plain/sercore "
              f"{plain_mem / max(mem, 1):.2f}x")
        if precision == "fp32":
            from sercore.views import get_view

            estimate = get_view("wav2vec2", source=SOURCE).estimate_bytes(audio_s)
            print(f"disk: {size / hours / 1e9:.2f} GB per hour of audio (estimate_bytes: "
                  f"{estimate / hours / 1e9:.2f}); measured/estimate {size / estimate:.2f}x")


def part_pretrain(args, manifest, folder: Path) -> None:
    rates = {}
    for precision in precisions(args.device):
        (utt_s, audio_s, metrics), mem = in_child(pretrain_throughput, manifest, folder / "cache-fp32", precision,
                                                  args.epochs, args.threads, args.device)
        rates[precision] = utt_s
        note = metrics["precision_note"]
        print(f"  three-view pre-training {precision}: {utt_s:7.2f} utt/s, {audio_s:7.1f} s of audio per s, "
              f"{metrics['steps']} steps, peak RSS +{mem:.0f} MiB {('(' + note + ')') if note else ''}")
    if "bf16" in rates:
        print(f"three-view pre-training speed-up bf16 vs fp32: {rates['bf16'] / rates['fp32']:.2f}x")


def upstream_extraction(manifest: pd.DataFrame, cache_root: Path, view_name: str, source: str, threads: int,
                        device: str, batch_size: int) -> tuple[float, int, int, int]:
    """``extract_features`` of one upstream (fp32) into a fresh cache → (seconds, cache bytes, estimated bytes,
    peak CUDA bytes or 0)."""
    import torch

    from sercore.features.cache import cache_info, extract_features
    from sercore.views import get_view

    torch.set_num_threads(threads)
    view = get_view(view_name, source=source, precision="fp32", device=device, batch_size=batch_size)
    view._model()  # build the model before the clock starts
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    extract_features(manifest, view, cache_root=cache_root, batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if cuda else 0
    size = store_bytes(cache_info(manifest, view, cache_root=cache_root)["folder"])
    return seconds, size, view.estimate_bytes(float(manifest["seconds"].sum())), peak


def part_upstreams(args, manifest, folder: Path, hours: float) -> None:
    audio_s = hours * 3600
    print("upstreams (random weights, fp32, float16 cache):")
    for view_name, source in UPSTREAMS.items():
        (took, size, estimate, cuda_peak), mem = in_child(upstream_extraction, manifest, folder / f"up-{view_name}",
                                                          view_name, source, args.threads, args.device,
                                                          args.batch_size)
        gpu = f", peak CUDA {cuda_peak / 2**20:.0f} MiB" if cuda_peak else ""
        print(f"  upstream {view_name:<11} ({source}): {audio_s / took:6.2f}x real time, peak RSS +{mem:6.0f} MiB"
              f"{gpu}, {size / hours / 1e9:.2f} GB per hour of audio (estimate {estimate / hours / 1e9:.2f})")


if __name__ == "__main__":
    sys.exit(main())
