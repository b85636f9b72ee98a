"""``python -m sercore.cache info [--root DIR]`` and ``python -m sercore.cache prune [--view V ...] [--model M ...]
[--unused-since YYYY-MM-DD] [--legacy] [--dry-run] [--root DIR]``."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from sercore.core.config import cache_dir
from sercore.features.maintenance import prune, store_table


def _gb(n: float) -> str:
    return f"{n / 1e9:.3f} GB" if n >= 1e7 else f"{n / 1e6:.2f} MB"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sercore.cache", description=__doc__.split("\n")[0])
    p.add_argument("--root", default=None, help="feature store root (default: $SERCORE_CACHE/features)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="size per view and model, utterances stored")
    pr = sub.add_parser("prune", help="remove views, models, shards unused since a date, or old-layout entries")
    pr.add_argument("--view", nargs="+", default=[], help="remove every stored feature of these views")
    pr.add_argument("--model", nargs="+", default=[], help="remove the features of these models (as info names them)")
    pr.add_argument("--unused-since", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                    help="remove shards not read since this day")
    pr.add_argument("--legacy", action="store_true", help="remove entries of the old (sercore 0.2) layout")
    pr.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    args = p.parse_args(argv)
    root = args.root or cache_dir() / "features"
    if args.command == "info":
        table = store_table(root)
        if table.empty:
            print(f"{root}: no stored features")
            return 0
        shown = table.drop(columns="folder").assign(bytes=table["bytes"].map(_gb))
        print(f"feature store {root}\n")
        print(shown.to_string(index=False))
        by_view = table.groupby("view")["bytes"].sum().map(_gb)
        print(f"\nper view: {', '.join(f'{v} {s}' for v, s in by_view.items())}; "
              f"total {_gb(table['bytes'].sum())}, {int(table['utterances'].sum())} utterances")
        return 0
    if not (args.view or args.model or args.unused_since or args.legacy):
        p.error("prune: say what to remove (--view, --model, --unused-since or --legacy)")
    removed = prune(root, views=args.view, models=args.model, unused_since=args.unused_since, legacy=args.legacy,
                    dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for row in removed.itertuples():
        print(f"{verb} {row.what}: {row.folder} ({_gb(row.bytes)})")
    print(f"{verb} {len(removed)} item(s), {_gb(removed['bytes'].sum() if len(removed) else 0)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
