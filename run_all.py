"""Run every notebook of ``notebooks/`` with papermill; results under ``results/<dataset>/``.

    python run_all.py                                   # all notebooks, synthetic default corpus
    python run_all.py --quick                           # smoke test: first fold, tiny budgets, small corpus
    python run_all.py --size tiny --quick --notebooks 03_sparse_labels
    python run_all.py --dataset iemocap --data-root /data/IEMOCAP_full_release --device cuda --workers 2
    python run_all.py --data emodb=/data/emodb ravdess=/data/RAVDESS default --quick   # several corpora

Each corpus gets ``results/<dataset>/``; ``results/index.html`` compares the corpora. Each notebook runs with
its results folder as working directory; see ``sercore/runner/``.
Exit status: 0 when every step succeeded, 1 when one failed, 2 on bad arguments (an unknown notebook,
dataset or view, a missing or wrong data root), checked before any notebook starts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def parse_param(text: str) -> tuple[str, object]:
    """``key=value`` → ``(key, value)``; the value is read as JSON when it parses, else kept as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"--param expects key=value with a Python name as key, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(description="Execute the sercore notebooks with papermill and index the results.")
    p.add_argument("--dataset", default="default", help="corpus name (default: the synthetic corpus)")
    p.add_argument("--data-root", default=None, help="folder of the corpus (not needed for 'default')")
    p.add_argument("--data", nargs="+", metavar="NAME=ROOT",
                   help="several corpora, each NAME=ROOT ('default' needs no root); replaces --dataset/--data-root")
    p.add_argument("--strict", action="store_true",
                   help="any bad file is an error naming it (default: skipped and listed in bad_files.csv)")
    p.add_argument("--n-folds", type=int, help="number of speaker-disjoint folds (injected only when given)")
    p.add_argument("--splits", metavar="FILE",
                   help="use these folds instead of dealing them: a splits.csv (the suite's format) or a folder of "
                        "EmoBox fold files fold_<k>/<dataset>_{train,test}_fold_<k>.jsonl (one corpus only)")
    p.add_argument("--export-splits", metavar="DIR",
                   help="after the run, write each corpus's folds as EmoBox fold files to DIR/<dataset>/")
    p.add_argument("--size", default=None, choices=("default", "small", "tiny"),
                   help="synthetic corpus size (default: 'default'; 'small' with --quick)")
    p.add_argument("--notebooks", nargs="+", metavar="NAME", help="notebook stems or file names (default: all)")
    p.add_argument("--quick", action="store_true", help="quick mode (few epochs, one fold)")
    p.add_argument("--device", default="cpu", help="torch device for the notebooks, e.g. cpu, cuda, cuda:1")
    p.add_argument("--offline", action="store_true", help="no downloads (sets SERCORE_OFFLINE/HF_HUB_OFFLINE)")
    p.add_argument("--workers", type=int, default=1, help="notebooks executed in parallel processes")
    p.add_argument("--force", action="store_true", help="rerun notebooks even when unchanged since their last run")
    p.add_argument("--results", default=str(ROOT / "results"), help="results root (default: ./results)")
    p.add_argument("--notebooks-dir", default=str(ROOT / "notebooks"), help="folder of the notebooks")
    p.add_argument("--seed", type=int, default=0, help="base random seed")
    p.add_argument("--views", nargs="+", help="views to use (injected only when given)")
    p.add_argument("--folds", nargs="+", type=int, help="fold indices (injected only when given)")
    p.add_argument("--repetitions", type=int, help="repetitions per condition (injected only when given)")
    p.add_argument("--epochs", type=int, help="training epochs (injected only when given)")
    p.add_argument("--budget", choices=("quick", "default", "paper"),
                   help="training budget: 'paper' is paper A's protocol (100 epochs, patience 30, 10 repetitions)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                   help="training precision (default auto: bf16 where the CPU/GPU has fast bf16 kernels, else fp32)")
    p.add_argument("--engine", choices=("local", "ray"), help="job engine for the grids (default: local processes)")
    p.add_argument("--ray-address", help="address of a running Ray cluster, e.g. 10.0.0.1:6379 (with --engine ray)")
    p.add_argument("--param", action="append", type=parse_param, default=[], metavar="KEY=VALUE",
                   help="any other notebook parameter; VALUE read as JSON when possible (repeatable)")
    p.add_argument("--timeout", type=float, default=None, help="per-cell time limit in seconds (default: none)")
    p.add_argument("--progress-bar", action="store_true", help="show papermill's per-cell progress bar")
    return p


def corpora_of(args) -> list:
    """The corpora asked for: ``--data NAME=ROOT ...`` or ``--dataset`` with ``--data-root``."""
    from sercore.runner import BadArguments, Corpus, parse_corpus

    if args.data:
        if args.dataset != "default" or args.data_root is not None:
            raise BadArguments("give either --data NAME=ROOT ... or --dataset/--data-root, not both")
        return [parse_corpus(text) for text in args.data]
    root = None if args.data_root is None else str(Path(args.data_root).expanduser().resolve())
    return [Corpus(args.dataset, root)]


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the notebooks on each corpus, return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from sercore import runner

    size = args.size or ("small" if args.quick else "default")
    if args.splits is not None:
        args.splits = str(Path(args.splits).expanduser().resolve())
    extra = {k: getattr(args, k) for k in runner.OPTIONAL_PARAMS if getattr(args, k, None) is not None}
    extra.update(dict(args.param))
    try:
        corpora = corpora_of(args)
        if args.splits is not None and (len(corpora) > 1 or not Path(args.splits).exists()):
            raise runner.BadArguments(f"--splits {args.splits}: " + ("no such file or folder" if len(corpora) == 1
                                      else "one splits file cannot serve several corpora; run them one by one"))
        summaries = runner.run_corpora(args.notebooks_dir, args.results, corpora, size=size,
                                       quick=args.quick, device=args.device, seed=args.seed, offline=args.offline,
                                       names=args.notebooks, extra_params=extra, workers=args.workers,
                                       force=args.force, progress_bar=args.progress_bar, timeout=args.timeout,
                                       strict=args.strict)
    except runner.BadArguments as exc:
        print(f"run_all.py: error: {exc}", file=sys.stderr)
        return 2
    if args.export_splits:
        from sercore.runner.splits_export import export_run_splits

        export_run_splits(args.results, corpora, args.export_splits, size=size, strict=args.strict,
                          dataset_params=extra.get("dataset_params"))
    failed = [f"{s['dataset']}/{name}" for s in summaries for name in s["failed"]]
    if failed:
        print(f"run_all.py: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
