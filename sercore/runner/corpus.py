"""The corpus step and the bad-file report of one corpus.

Before any notebook starts, each corpus is loaded once: the synthetic default corpus is generated, a real
corpus is read and checked, so a root with the wrong layout is reported as a bad argument. The loader's
options (``--param dataset_params=...``) apply here too; ``strict`` turns any bad file into a failure naming
it. After the notebooks ran, :func:`collect_bad_files` gathers what every step skipped, the loader's
``manifest.attrs["bad_files"]`` and the feature cache's skipped files that notebooks record, into
``results/<dataset>/bad_files.csv``.
"""

from __future__ import annotations

import csv
import inspect
import json
import time
import traceback
from collections import Counter
from pathlib import Path

from sercore.runner.execute import finish_line, now, say
from sercore.runner.plan import BadArguments, Corpus

BAD_FILES_CSV = "bad_files.csv"
BAD_FILE_COLUMNS = ("path", "step", "reason")
_SHOWN = 5


class StrictError(RuntimeError):
    """A bad file under ``strict``: the message names the file and the problem."""


def loader_params(corpus: Corpus, *, size: str, strict: bool) -> dict:
    """Options passed to the corpus loader: ``corpus.params``, ``size`` for ``default``, and ``on_error``
    (``"raise"`` under ``strict``, else ``"skip"`` unless given) when the loader's signature names it."""
    from sercore.data.registry import dataset_info

    info = dataset_info(corpus.name)
    params = dict(corpus.params)
    if info.name == "default":
        params.setdefault("size", size)
    if "on_error" in inspect.signature(info.loader).parameters:
        params["on_error"] = "raise" if strict else params.get("on_error", "skip")
    return params


def corpus_step(corpus: Corpus, *, size: str, strict: bool = False) -> tuple[dict, list[dict]]:
    """Load ``corpus`` once; returns the step record (``utterances``, ``speakers``, ``bad_files`` count) and
    the loader's bad-file records.

    A corpus error (wrong layout, unusable CSV: the loader fails even with bad files skipped) raises
    :class:`BadArguments`; any other failure, and under ``strict`` any bad file, is recorded as a failed step.
    """
    from sercore.data.manifest import ManifestError

    record = {"notebook": "corpus", "status": "ok", "seconds": None, "error": None, "started": now()}
    start, bad = time.perf_counter(), []
    say(f"start  corpus ({corpus.name}{', size=' + size if corpus.name == 'default' else ''})")
    try:
        manifest = load_corpus(corpus, size=size, strict=strict)
        bad = [dict(r, step=r.get("step") or "loader") for r in getattr(manifest, "attrs", {}).get("bad_files", [])]
        if strict and bad:
            raise StrictError(f"{corpus.name}: bad file {bad[0]['path']}: {bad[0]['reason']}"
                              + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
        record.update(utterances=int(len(manifest)), bad_files=len(bad))
        if hasattr(manifest, "columns") and "speaker" in manifest.columns:
            record["speakers"] = int(manifest["speaker"].nunique())
    except ManifestError as exc:
        if not strict or _unusable(corpus, size):
            raise BadArguments(f"{corpus.name} at {corpus.root}: {exc}") from exc
        record.update(status="failed", error=f"ManifestError: {exc}")
    except Exception as exc:  # reported like a notebook failure
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    record["seconds"] = round(time.perf_counter() - start, 2)
    say(finish_line(record))
    return record, bad


def load_corpus(corpus: Corpus, *, size: str, strict: bool):
    """The manifest of ``corpus`` from its loader, with the run's ``size`` and ``strict`` (``loader_params``)."""
    import sercore.data

    return sercore.data.load_dataset(corpus.name, root=corpus.root, **loader_params(corpus, size=size, strict=strict))


def _unusable(corpus: Corpus, size: str) -> bool:
    """True when the corpus fails even with bad files skipped: a wrong layout, not a bad file."""
    from sercore.data.manifest import ManifestError

    try:
        load_corpus(corpus, size=size, strict=False)
    except ManifestError:
        return True
    return False


# ---------------------------------------------------------------------------------------------- bad files


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def notebook_bad_files(folder: str | Path) -> list[dict]:
    """Bad files a notebook recorded in its results folder: ``params.json`` key ``bad_files`` (records; the
    feature store's skipped files among them, step ``features``), or a ``bad_files.json`` list."""
    folder = Path(folder)
    params = _read_json(folder / "params.json")
    params = params if isinstance(params, dict) else {}
    found = list(params.get("bad_files") or [])
    extra = _read_json(folder / "bad_files.json")
    found += extra if isinstance(extra, list) else []
    return [r for r in found if isinstance(r, dict) and r.get("path")]


def collect_bad_files(out_root: str | Path, loader_records: list[dict]) -> list[dict]:
    """Every distinct skipped file of a corpus: the loader's records and those of each notebook folder."""
    records = list(loader_records)
    for folder in sorted(p for p in Path(out_root).iterdir() if p.is_dir()):
        records += notebook_bad_files(folder)
    unique = {}
    for r in records:
        row = {"path": str(r["path"]), "step": str(r.get("step") or "features"), "reason": str(r.get("reason", ""))}
        unique.setdefault(tuple(row.values()), row)
    return sorted(unique.values(), key=lambda r: (r["step"], r["path"], r["reason"]))


def write_bad_files(out_root: str | Path, records: list[dict]) -> Path:
    """Write ``bad_files.csv`` (``path, step, reason``; a header only when nothing was skipped)."""
    path = Path(out_root) / BAD_FILES_CSV
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=BAD_FILE_COLUMNS)
        writer.writeheader()
        writer.writerows({k: r[k] for k in BAD_FILE_COLUMNS} for r in records)
    tmp.replace(path)
    return path


def reason_kind(reason: str) -> str:
    """The kind of a reason, without its details: ``unreadable audio (Error ...)`` → ``unreadable audio``."""
    return reason.split(" (")[0].split(": ")[0].strip() or "unknown"


def bad_files_summary(dataset: str, records: list[dict]) -> list[str]:
    """Console lines: the count of skipped files by step and kind of reason, and the first names."""
    if not records:
        return [f"{dataset}: no bad files"]
    kinds = Counter(f"{r['step']}: {reason_kind(r['reason'])}" for r in records)
    counts = "; ".join(f"{k} x{n}" for k, n in kinds.most_common())
    lines = [f"{dataset}: {len(records)} bad file(s) skipped ({counts})"]
    lines += [f"  {r['path']}  [{r['step']}] {r['reason']}" for r in records[:_SHOWN]]
    if len(records) > _SHOWN:
        lines.append(f"  ... {len(records) - _SHOWN} more in {BAD_FILES_CSV}")
    return lines
