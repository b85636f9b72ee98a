"""Execute the notebooks of ``notebooks/`` with papermill and index what they produce.

Each notebook ``<stem>.ipynb`` runs in its own folder ``<results>/<dataset>/<stem>/`` (injected as the
absolute ``output_dir`` parameter, and also the kernel's working directory, so anything a notebook writes
with a relative path stays in its own folder and parallel runs cannot collide). That folder then holds the
executed copy ``<stem>.ipynb``, its HTML rendering ``<stem>.html``, the notebook's own figures/tables and
``run.json`` (status, run time, fingerprint); it is emptied before each rerun so no stale figure stays.
``<results>/<dataset>/`` gets ``index.html``, ``index.md``
and ``run_summary.json``.

A notebook is skipped when its last run succeeded and its fingerprint (notebook file, injected
parameters, source of the ``sercore`` package the kernel imports) is unchanged; ``force=True`` reruns it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from html import escape
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import quote

KERNEL_NAME = "python3"
SIZES = ("default", "small", "tiny")
OPTIONAL_PARAMS = ("views", "folds", "repetitions", "epochs")
RESERVED_PARAMS = ("dataset", "output_dir")


def _say(message: str) -> None:
    print(f"[run_all] {message}", flush=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------------------------- discovery


def discover_notebooks(notebooks_dir: str | Path, names: list[str] | None = None) -> list[Path]:
    """Notebooks of ``notebooks_dir`` (sorted), or the ones named (stem or file name) in ``names``.

    Raises ``FileNotFoundError`` for a missing folder and ``ValueError`` for an unknown name.
    """
    folder = Path(notebooks_dir).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"notebooks folder {folder} does not exist")
    found = {p.stem: p for p in sorted(folder.glob("*.ipynb")) if not p.name.startswith(".")}
    if not names:
        return list(found.values())
    unknown = [n for n in names if Path(n).stem not in found]
    if unknown:
        raise ValueError(f"unknown notebook(s) {unknown} in {folder}; available: {sorted(found)}")
    return [found[Path(n).stem] for n in dict.fromkeys(names)]


def notebook_params(output_dir: Path, *, dataset: str, data_root: str | None, size: str, quick: bool,
                    device: str, seed: int, offline: bool, extra: dict | None = None) -> dict:
    """Parameters injected into one notebook: the shared ones plus ``extra`` (views, folds, ``--param``)."""
    params = {"dataset": dataset, "data_root": None if data_root is None else str(Path(data_root).resolve()),
              "size": size, "quick": bool(quick), "device": device, "seed": int(seed),
              "offline": bool(offline), "output_dir": str(Path(output_dir).resolve())}
    for key, value in (extra or {}).items():
        if key in RESERVED_PARAMS:
            raise ValueError(f"parameter {key!r} cannot be overridden (use --dataset / --results instead)")
        params[key] = value
    return params


# --------------------------------------------------------------------------------------------- fingerprint


def source_hash(package_dir: str | Path | None = None) -> str:
    """SHA-256 over the files of the ``sercore`` package (or ``package_dir``), byte cache files excluded."""
    if package_dir is None:
        package_dir = Path(__file__).resolve().parent
    root = Path(package_dir)
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def fingerprint(notebook: str | Path, params: dict, sercore_hash: str) -> str:
    """Hash of the notebook file, the injected parameters and the ``sercore`` source hash."""
    digest = hashlib.sha256(Path(notebook).read_bytes())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(sercore_hash.encode())
    return digest.hexdigest()


def read_record(output_dir: str | Path) -> dict | None:
    """The ``run.json`` of a notebook's results folder, or None when absent or unreadable."""
    path = Path(output_dir) / "run.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_up_to_date(output_dir: Path, stem: str, fp: str) -> bool:
    """True when the last run in ``output_dir`` succeeded with fingerprint ``fp`` and its copy exists."""
    record = read_record(output_dir)
    return bool(record and record.get("status") == "ok" and record.get("fingerprint") == fp
                and (output_dir / f"{stem}.ipynb").exists())


# ------------------------------------------------------------------------------------------------- kernel


def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """Name of a Jupyter kernel that runs this interpreter, installing a kernel spec when needed.

    ``name`` is used when it exists and starts ``python`` (jupyter_client maps that to ``sys.executable``)
    or this very interpreter; when missing it is installed for the user; when it points at another Python,
    a kernel ``sercore-<hash>`` for this interpreter is installed and returned instead.
    """
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv0 = KernelSpecManager().get_kernel_spec(name).argv[0]
    except NoSuchKernel:
        argv0 = None
    aliases = {"python", f"python{sys.version_info[0]}", "python%d.%d" % sys.version_info[:2]}
    if argv0 is not None and (argv0 in aliases or _same_file(argv0, sys.executable)):
        return name
    if argv0 is not None:
        name = "sercore-" + hashlib.sha1(sys.executable.encode()).hexdigest()[:8]
    _say(f"installing Jupyter kernel {name!r} for {sys.executable}")
    try:
        install(user=True, kernel_name=name, display_name=f"Python ({sys.prefix})")
    except OSError:  # read-only home: install into the environment instead
        install(prefix=sys.prefix, kernel_name=name, display_name=f"Python ({sys.prefix})")
    return name


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@contextlib.contextmanager
def run_environment(*, offline: bool, workers: int):
    """Environment for the kernels: offline flags, ``sercore`` importable, threads shared among workers."""
    updates = {"PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                           os.environ.get("PYTHONPATH")]))}
    if offline:
        updates.update(SERCORE_OFFLINE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        updates["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    saved = {key: os.environ.get(key) for key in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ---------------------------------------------------------------------------------------------- execution


def execute_one(job: dict) -> dict:
    """Execute one notebook job (a plain dict, so it crosses process boundaries) and render its HTML.

    Keys: ``notebook, output_dir, params, fingerprint, kernel, progress_bar, timeout``. Returns the run
    record also written to ``output_dir/run.json``; a failure is recorded, never raised.
    """
    import papermill as pm

    notebook, out = Path(job["notebook"]), Path(job["output_dir"])
    stem = notebook.stem
    if out.exists():  # stale figures of an earlier run must not show up in the index
        shutil.rmtree(out)
    out.mkdir(parents=True)
    record = {"notebook": stem, "source": str(notebook), "status": "running", "started": _now(),
              "seconds": None, "fingerprint": job["fingerprint"], "params": job["params"],
              "executed": f"{stem}.ipynb", "html": None, "error": None}
    _write_record(out, record)
    _say(f"start  {stem}")
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(notebook), str(out / f"{stem}.ipynb"), parameters=job["params"],
                            kernel_name=job["kernel"], language="python", cwd=str(out),
                            progress_bar=job["progress_bar"], execution_timeout=job["timeout"])
        record["status"] = "ok"
    except pm.PapermillExecutionError as exc:
        record.update(status="failed", error=f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}")
    except Exception as exc:  # kernel death, timeout, unreadable notebook: recorded like a failure
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    record["seconds"] = round(time.perf_counter() - start, 2)
    record["html"] = _render(out / f"{stem}.ipynb", record)
    _write_record(out, record)
    _say(_finish_line(record))
    return record


def _render(executed: Path, record: dict) -> str | None:
    if not executed.exists():
        return None
    try:
        return render_html(executed).name
    except Exception as exc:  # a rendering problem must not hide the execution result
        record["render_error"] = f"{type(exc).__name__}: {exc}"
        return None


def _write_record(out: Path, record: dict) -> None:
    tmp = out / "run.json.tmp"
    tmp.write_text(json.dumps(record, indent=2, default=str))
    tmp.replace(out / "run.json")


def _finish_line(record: dict) -> str:
    line = f"{record['status']:<7}{record['notebook']}  {record.get('seconds') or 0:.1f} s"
    return line + (f"  {record['error']}" if record.get("error") else "")


def build_corpus(dataset: str, data_root: str | None, size: str) -> dict:
    """Load the corpus once before the notebooks (the synthetic default corpus is generated here; a real
    corpus is validated, so a wrong root fails early with the expected layout); returns a step record."""
    record = {"notebook": "corpus", "status": "ok", "seconds": None, "error": None, "started": _now()}
    start = time.perf_counter()
    _say(f"start  corpus ({dataset}, size={size})")
    try:
        from sercore.data import load_dataset

        params = {"size": size} if dataset == "default" else {}
        manifest = load_dataset(dataset, root=data_root, **params)
        record["utterances"] = int(len(manifest))
    except Exception as exc:  # reported like a notebook failure
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    record["seconds"] = round(time.perf_counter() - start, 2)
    _say(_finish_line(record))
    return record


def run(notebooks_dir: str | Path, results_dir: str | Path, *, dataset: str = "default",
        data_root: str | Path | None = None, size: str = "default", quick: bool = False, device: str = "cpu",
        seed: int = 0, offline: bool = False, names: list[str] | None = None, extra_params: dict | None = None,
        workers: int = 1, force: bool = False, progress_bar: bool = False, timeout: float | None = None) -> dict:
    """Run the selected notebooks; write executed copies, HTML, ``index.html/.md`` and ``run_summary.json``.

    Returns the summary dict; ``summary["failed"]`` lists the steps that failed (empty on success).
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    notebooks = discover_notebooks(notebooks_dir, names)
    if not notebooks:
        _say(f"no notebooks in {Path(notebooks_dir).resolve()}")
    out_root = Path(results_dir).resolve() / dataset
    out_root.mkdir(parents=True, exist_ok=True)
    started, t0 = _now(), time.perf_counter()
    with run_environment(offline=offline, workers=workers):
        steps = [build_corpus(dataset, None if data_root is None else str(data_root), size)] \
            if dataset == "default" or data_root is not None else []
        kernel = ensure_kernel()
        jobs, records = _plan(notebooks, out_root, steps, dict(
            dataset=dataset, data_root=data_root, size=size, quick=quick, device=device, seed=seed,
            offline=offline, extra=extra_params), force=force, kernel=kernel, progress_bar=progress_bar,
            timeout=timeout)
        records.update(_execute_all(jobs, workers))
    ordered = [records[nb.stem] for nb in notebooks]
    failed = [r["notebook"] for r in steps + ordered if r["status"] in ("failed", "blocked")]
    summary = {"dataset": dataset, "started": started, "seconds": round(time.perf_counter() - t0, 2),
               "kernel": kernel, "options": {"size": size, "quick": quick, "device": device, "seed": seed,
                                             "offline": offline, "workers": workers, "force": force},
               "steps": steps, "notebooks": ordered, "failed": failed, "ok": not failed}
    (out_root / "run_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    write_index(out_root, summary)
    _say(f"{len(ordered)} notebook(s), {len(failed)} failed, {summary['seconds']:.1f} s; "
         f"index: {out_root / 'index.html'}")
    return summary


def _plan(notebooks, out_root, steps, param_args, *, force, kernel, progress_bar, timeout):
    """Split notebooks into jobs to execute and records of skipped/blocked ones."""
    sercore_hash = source_hash()
    blocked = any(s["status"] == "failed" for s in steps)
    jobs, records = [], {}
    for nb in notebooks:
        out = out_root / nb.stem
        params = notebook_params(out, **param_args)
        fp = fingerprint(nb, params, sercore_hash)
        if blocked:
            records[nb.stem] = {"notebook": nb.stem, "status": "blocked", "seconds": None,
                                "error": "not run: the corpus step failed"}
        elif not force and is_up_to_date(out, nb.stem, fp):
            records[nb.stem] = dict(read_record(out), status="skipped")
            _say(f"skip   {nb.stem}  (unchanged since its last successful run; --force reruns)")
        else:  # papermill itself warns when a notebook has no cell tagged 'parameters'
            jobs.append({"notebook": str(nb), "output_dir": str(out), "params": params, "fingerprint": fp,
                         "kernel": kernel, "progress_bar": progress_bar, "timeout": timeout})
    return jobs, records


def _execute_all(jobs: list[dict], workers: int) -> dict:
    """Run jobs in this process (workers == 1) or in ``workers`` spawned processes."""
    if workers == 1 or len(jobs) <= 1:
        return {Path(j["notebook"]).stem: execute_one(j) for j in jobs}
    records = {}
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(execute_one, job): Path(job["notebook"]).stem for job in jobs}
        for future in as_completed(futures):
            stem = futures[future]
            try:
                records[stem] = future.result()
            except Exception as exc:  # the worker process itself died (killed, out of memory)
                records[stem] = {"notebook": stem, "status": "failed", "seconds": None,
                                 "error": f"worker process failed: {type(exc).__name__}: {exc}"}
                _say(_finish_line(records[stem]))
    return records


# -------------------------------------------------------------------------------------------------- index

_INDEX_FILES = {"index.html", "index.md", "run_summary.json", "run.json"}
_NO_FILES = {"figures": [], "tables": [], "params": []}
_CSS = ("body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.ok{color:#070}.failed,.blocked{color:#b00}"
        "img{max-width:220px;max-height:160px;border:1px solid #ddd;margin:.2em}figure{display:inline-block}")


def render_html(executed: str | Path) -> Path:
    """Render an executed notebook to ``<stem>.html`` beside it (nbconvert ``HTMLExporter``)."""
    from nbconvert import HTMLExporter

    executed = Path(executed)
    body, _ = HTMLExporter().from_filename(str(executed))
    path = executed.with_suffix(".html")
    path.write_text(body, encoding="utf-8")
    return path


def collect_outputs(folder: Path, root: Path, *, recursive: bool = True) -> dict:
    """Figures (PNG), tables (CSV/MD) and ``params.json`` files under ``folder``, relative to ``root``."""
    found = {"figures": [], "tables": [], "params": []}
    for path in sorted(folder.rglob("*") if recursive else folder.iterdir()):
        rel = path.relative_to(root)
        if not path.is_file() or path.name in _INDEX_FILES or any(p.startswith(".") for p in rel.parts):
            continue
        suffix = path.suffix.lower()
        kind = "figures" if suffix == ".png" else "tables" if suffix in (".csv", ".md") else \
            "params" if path.name == "params.json" else None
        if kind:
            found[kind].append(rel.as_posix())
    return found


def _sections(out_root: Path, summary: dict) -> list[dict]:
    """One section per results sub-folder (notebook or not), plus loose top-level files."""
    this_run = {r["notebook"]: r for r in summary["notebooks"]}
    folders = {p.name: p for p in out_root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    folders.update({name: out_root / name for name in this_run if name not in folders})  # blocked: no folder
    sections = []
    for folder in (folders[name] for name in sorted(folders)):
        record = this_run.get(folder.name) or read_record(folder) or {}
        status = record.get("status", "")
        if record and folder.name not in this_run:
            status += " (earlier run)"
        html = record.get("html")
        sections.append({"name": folder.name, "status": status, "seconds": record.get("seconds"),
                         "error": record.get("error"), "html": f"{folder.name}/{html}" if html else None,
                         **(collect_outputs(folder, out_root) if folder.is_dir() else _NO_FILES)})
    loose = collect_outputs(out_root, out_root, recursive=False)
    if any(loose.values()):
        sections.append({"name": "(top level)", "status": "", "seconds": None, "error": None, "html": None,
                         **loose})
    return sections


def write_index(out_root: str | Path, summary: dict) -> tuple[Path, Path]:
    """Write ``index.html`` and ``index.md`` in ``out_root`` linking every notebook and result file."""
    out_root = Path(out_root)
    sections = _sections(out_root, summary)
    steps = [s for s in summary.get("steps", []) if s["status"] != "ok"]
    html_path, md_path = out_root / "index.html", out_root / "index.md"
    html_path.write_text(_index_html(summary, sections, steps), encoding="utf-8")
    md_path.write_text(_index_md(summary, sections, steps), encoding="utf-8")
    return html_path, md_path


def _link(rel: str, text: str | None = None) -> str:
    return f'<a href="{quote(rel)}">{escape(text or rel)}</a>'


def _index_html(summary: dict, sections: list[dict], steps: list[dict]) -> str:
    failed = ", ".join(summary["failed"]) or "none"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>sercore results: "
             f"{escape(summary['dataset'])}</title><style>{_CSS}</style></head><body>",
             f"<h1>Results: {escape(summary['dataset'])}</h1><p>Run started {summary['started']}, "
             f"{summary['seconds']:.1f} s; failed: {escape(failed)}.</p>"]
    parts += [f"<p class='failed'>Step {escape(s['notebook'])} failed: {escape(str(s['error']))}</p>" for s in steps]
    parts.append("<table><tr><th>notebook</th><th>status</th><th>time (s)</th><th>figures</th>"
                 "<th>tables</th><th>params</th></tr>")
    for s in sections:
        name = _link(s["html"], s["name"]) if s["html"] else escape(s["name"])
        status = escape(s["status"]) + (f"<br><small>{escape(s['error'])}</small>" if s["error"] else "")
        figures = "".join(f'<figure><a href="{quote(f)}"><img src="{quote(f)}" alt="{escape(f)}" '
                          f'loading="lazy"></a><figcaption>{escape(Path(f).name)}</figcaption></figure>'
                          for f in s["figures"])
        tables = "<br>".join(_link(t) for t in s["tables"])
        params = "<br>".join(_link(p) for p in s["params"])
        seconds = "" if s["seconds"] is None else f"{s['seconds']:.1f}"
        parts.append(f"<tr><td>{name}</td><td class='{escape(s['status'].split(' ')[0])}'>{status}</td>"
                     f"<td>{seconds}</td><td>{figures}</td><td>{tables}</td><td>{params}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def _index_md(summary: dict, sections: list[dict], steps: list[dict]) -> str:
    lines = [f"# Results: {summary['dataset']}", "",
             f"Run started {summary['started']}, {summary['seconds']:.1f} s; failed: "
             f"{', '.join(summary['failed']) or 'none'}.", ""]
    lines += [f"Step {s['notebook']} failed: {s['error']}" for s in steps]
    lines += ["| notebook | status | time (s) |", "|---|---|---|"]
    for s in sections:
        name = f"[{s['name']}]({quote(s['html'])})" if s["html"] else s["name"]
        seconds = "" if s["seconds"] is None else f"{s['seconds']:.1f}"
        lines.append(f"| {name} | {s['status']} | {seconds} |")
    for s in sections:
        lines += ["", f"## {s['name']}"]
        if s["error"]:
            lines.append(f"Error: `{s['error']}`")
        for kind in ("figures", "tables", "params"):
            lines += [f"- {kind[:-1] if kind != 'params' else 'params'}: [{f}]({quote(f)})" for f in s[kind]]
    return "\n".join(lines) + "\n"
