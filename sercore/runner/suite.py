"""A whole run: every corpus is checked and loaded first, then its notebooks run, then the pages are written.

Order: (1) arguments of all corpora checked (:func:`~sercore.runner.plan.check_arguments`), (2) each
corpus's corpus step, (3) each corpus's notebooks, its ``bad_files.csv``, ``run_summary.json`` and index
page under ``<results>/<dataset>/``, (4) the benchmark page ``<results>/index.html`` across corpora.
Bad arguments, including a corpus whose root has the wrong layout, raise ``BadArguments`` before any
notebook starts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sercore.runner import corpus as corpus_mod
from sercore.runner.benchmark_page import write_benchmark_page
from sercore.runner.execute import ensure_kernel, execute_all, now, run_environment, say
from sercore.runner.index_page import write_index
from sercore.runner.plan import Corpus, check_arguments, plan_jobs


def run_corpora(notebooks_dir: str | Path, results_dir: str | Path, corpora: list[Corpus], *,
                size: str = "default", quick: bool = False, device: str = "cpu", seed: int = 0,
                offline: bool = False, names: list[str] | None = None, extra_params: dict | None = None,
                workers: int = 1, force: bool = False, progress_bar: bool = False, timeout: float | None = None,
                strict: bool = False) -> list[dict]:
    """Run the selected notebooks on every corpus; returns one summary per corpus (``summary["failed"]``
    lists the steps that failed). ``strict`` makes any bad file an error (injected as ``strict``)."""
    extra = dict(extra_params or {})
    notebooks = check_arguments(notebooks_dir, names, corpora, params=extra, size=size, workers=workers)
    if strict:
        extra["strict"] = True
    from sercore.data.registry import dataset_info

    loader_options = extra.get("dataset_params") or {}  # notebooks get them too, through extra
    corpora = [Corpus(dataset_info(c.name).name, c.root, {**loader_options, **c.params}) for c in corpora]
    if not notebooks:
        say(f"no notebooks in {Path(notebooks_dir).resolve()}")
    results_root = Path(results_dir).resolve()
    options = dict(size=size, quick=quick, device=device, seed=seed, offline=offline, workers=workers,
                   force=force, strict=strict)
    summaries = []
    with run_environment(offline=offline, workers=workers):
        loaded = [corpus_mod.corpus_step(c, size=size, strict=strict) for c in corpora]  # before any notebook
        kernel = ensure_kernel()
        for c, (step, bad) in zip(corpora, loaded):
            others = {o.name: o.root for o in corpora if o.name != c.name}
            summaries.append(_run_one(notebooks, results_root / c.name, c, step, bad, extra, options, others,
                                      kernel=kernel, progress_bar=progress_bar, timeout=timeout))
    page = write_benchmark_page(results_root)
    say(f"benchmark page: {page}")
    return summaries


def _run_one(notebooks, out_root: Path, c: Corpus, step: dict, loader_bad: list[dict], extra: dict,
             options: dict, others: dict, *, kernel: str, progress_bar: bool, timeout) -> dict:
    """The notebooks of one corpus (``others``: the run's other corpora, for notebooks that take
    ``corpora``), then its bad-file report, summary and index page."""
    out_root.mkdir(parents=True, exist_ok=True)
    started, t0 = now(), time.perf_counter()
    param_args = dict(dataset=c.name, data_root=c.root, size=options["size"], quick=options["quick"],
                      device=options["device"], seed=options["seed"], offline=options["offline"], extra=extra)
    jobs, records = plan_jobs(notebooks, out_root, param_args,
                              blocked_by="corpus" if step["status"] == "failed" else None, force=options["force"],
                              job_options={"kernel": kernel, "progress_bar": progress_bar, "timeout": timeout},
                              say=say, others=others)
    records.update(execute_all(jobs, options["workers"]))
    ordered = [records[nb.stem] for nb in notebooks]
    bad = corpus_mod.collect_bad_files(out_root, loader_bad)
    corpus_mod.write_bad_files(out_root, bad)
    for line in corpus_mod.bad_files_summary(c.name, bad):
        say(line)
    failed = [r["notebook"] for r in [step] + ordered if r["status"] in ("failed", "blocked")]
    summary = {"dataset": c.name, "data_root": c.root, "started": started,
               "seconds": round(time.perf_counter() - t0, 2), "kernel": kernel, "options": options,
               "steps": [step], "notebooks": ordered, "bad_files": len(bad), "failed": failed, "ok": not failed}
    (out_root / "run_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    write_index(out_root, summary)
    say(f"{c.name}: {len(ordered)} notebook(s), {len(failed)} failed, {summary['seconds']:.1f} s; "
        f"index: {out_root / 'index.html'}")
    return summary


def run(notebooks_dir: str | Path, results_dir: str | Path, *, dataset: str = "default",
        data_root: str | Path | None = None, size: str = "default", quick: bool = False, device: str = "cpu",
        seed: int = 0, offline: bool = False, names: list[str] | None = None, extra_params: dict | None = None,
        workers: int = 1, force: bool = False, progress_bar: bool = False, timeout: float | None = None,
        strict: bool = False) -> dict:
    """Run the selected notebooks on one corpus; the summary dict of :func:`run_corpora` for it."""
    root = None if data_root is None else str(Path(data_root).expanduser().resolve())
    return run_corpora(notebooks_dir, results_dir, [Corpus(dataset, root)], size=size, quick=quick, device=device,
                       seed=seed, offline=offline, names=names, extra_params=extra_params, workers=workers,
                       force=force, progress_bar=progress_bar, timeout=timeout, strict=strict)[0]
