"""GPU check: one three-view Pairwise-CL pre-training epoch at IEMOCAP scale with the full-size wav2vec 2.0.

Paper A reports 13 minutes per pre-training epoch on IEMOCAP (10,039 utterances, mean 4.5 s) with wav2vec 2.0
(all 13 layers), mel and eGeMAPS. This script builds features of that shape — wav2vec2 ``[T, 13, 768]`` float16
at 50 frames/s, mel ``[T, 64]`` at 100 frames/s, eGeMAPS ``[88]`` — with random values (all 10,039 utterances
would hold about 45 GB of wav2vec2 frames, so ``--subset`` utterances are built and the epoch is scaled to ``--n``),
times ``pretrain_pairwise`` for one epoch after a warm-up epoch, and times the random-weight wav2vec2 base model
(``source="random:wav2vec2_base"``) extracting a few synthetic utterances on the same device, scaled to the corpus.

Without a CUDA GPU it prints a message and exits with status 0 (nothing measured). ``--dry-run`` runs the same
steps at toy size on the CPU (a check of the script, not a measurement).
Usage: ``python benchmarks/gpu_iemocap_epoch.py [--precision bf16] [--subset 1000] [--dry-run]``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

PAPER_MINUTES = 13.0
W2V_FPS, MEL_FPS = 50, 100


def durations(n: int, mean_seconds: float, seed: int = 0) -> np.ndarray:
    """Log-normal utterance durations with the given mean, clipped to 1–15 s (IEMOCAP-like)."""
    rng = np.random.default_rng(seed)
    sigma = 0.5
    seconds = rng.lognormal(np.log(mean_seconds) - sigma ** 2 / 2, sigma, n)
    return np.clip(seconds, 1.0, 15.0)


def random_frames(total: int, shape: tuple, rng: np.random.Generator, block: int = 20000) -> np.ndarray:
    """``[total, *shape]`` float16 standard-normal values, generated block by block (bounded temporary memory)."""
    out = np.empty((total, *shape), np.float16)
    for start in range(0, total, block):
        stop = min(total, start + block)
        out[start:stop] = rng.standard_normal((stop - start, *shape), dtype=np.float32)
    return out


def build_features(seconds: np.ndarray, seed: int = 0) -> dict:
    """Three FeatureSets of IEMOCAP shape (random values) for utterances of ``seconds``."""
    from sercore.features.featureset import FeatureSet

    rng = np.random.default_rng(seed)
    ids = [f"utt{i:05d}" for i in range(len(seconds))]
    w2v_len = np.maximum(1, (seconds * W2V_FPS).astype(np.int64))
    mel_len = np.maximum(1, (seconds * MEL_FPS).astype(np.int64))
    return {"wav2vec2": FeatureSet(ids, random_frames(int(w2v_len.sum()), (13, 768), rng), w2v_len,
                                   meta={"view": "wav2vec2"}),
            "mel": FeatureSet(ids, random_frames(int(mel_len.sum()), (64,), rng), mel_len, meta={"view": "mel"}),
            "egemaps": FeatureSet(ids, rng.standard_normal((len(ids), 88), dtype=np.float32),
                                  meta={"view": "egemaps"})}


def epoch_seconds(features: dict, device: str, precision: str, batch_size: int) -> tuple[float, dict]:
    """Seconds of the second pre-training epoch (the first is a warm-up) over 90 % train / 10 % validation."""
    from sercore.pairwise.pretrain import PretrainConfig, pretrain_pairwise

    ids = list(features["mel"].ids)
    cut = max(2, int(0.9 * len(ids)))
    config = PretrainConfig(max_epochs=2, patience=2, batch_size=batch_size, precision=precision)
    result = pretrain_pairwise(features, ids[:cut], ids[cut:] or ids[-2:], config=config, device=device)
    return float(result.history["seconds"].iloc[-1]), result.metrics


def extraction_seconds(seconds: np.ndarray, device: str, precision: str) -> float:
    """Seconds the random-weight wav2vec2 base model takes for synthetic audio of ``seconds`` (after a warm-up)."""
    from sercore.views import get_view

    view = get_view("wav2vec2", source="random:wav2vec2_base", device=device, precision=precision, batch_size=8)
    rng = np.random.default_rng(1)
    waves = [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in seconds]
    view.extract_batch(waves[:1])
    _sync(device)
    start = time.perf_counter()
    view.extract_batch(waves)
    _sync(device)
    return time.perf_counter() - start


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10039, help="utterances of the corpus the epoch is scaled to")
    parser.add_argument("--subset", type=int, default=1000, help="utterances actually built and trained on")
    parser.add_argument("--mean-seconds", type=float, default=4.5)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--extract", type=int, default=64, help="utterances timed through the wav2vec2 model")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU: checks the script only")
    args = parser.parse_args(argv)
    import torch

    if args.dry_run:
        args.device, args.n, args.subset, args.mean_seconds, args.extract, args.batch_size = "cpu", 40, 12, 1.5, 2, 4
    elif not torch.cuda.is_available():
        print("gpu_iemocap_epoch: no CUDA GPU available here, nothing measured (use --dry-run to check the script "
              "on the CPU)")
        return 0
    seconds = durations(args.subset, args.mean_seconds)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU (dry run)"
    print(f"device {args.device} ({name}), precision {args.precision}; {args.subset} of {args.n} utterances built "
          f"(mean {seconds.mean():.2f} s), batch {args.batch_size}")
    start = time.perf_counter()
    features = build_features(seconds)
    print(f"features built in {time.perf_counter() - start:.0f} s: "
          f"wav2vec2 {features['wav2vec2'].data.nbytes / 1e9:.2f}"
          f" GB float16 [T, 13, 768], mel [T, 64], eGeMAPS [88]")
    took, metrics = epoch_seconds(features, args.device, args.precision, args.batch_size)
    scaled = took * args.n / args.subset
    note = f" ({metrics['precision_note']})" if metrics["precision_note"] else ""
    print(f"one pre-training epoch: {took:.1f} s for {args.subset} utterances -> {scaled / 60:.2f} min for {args.n} "
          f"(paper: {PAPER_MINUTES:.0f} min); paper/ours {PAPER_MINUTES * 60 / scaled:.2f}x; "
          f"precision used {metrics['precision']}{note}")
    ext = seconds[:args.extract]
    ext_took = extraction_seconds(ext, args.device, args.precision)
    corpus_hours = args.n * args.mean_seconds / 3600
    speed = ext.sum() / ext_took
    print(f"wav2vec2 base extraction: {speed:.1f}x real time -> {corpus_hours * 3600 / speed / 60:.2f}"
          f" min once for the {corpus_hours:.1f} h corpus (cached afterwards)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
