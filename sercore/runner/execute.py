"""Executing notebooks: the Jupyter kernel, the kernels' environment, papermill runs in one or more processes.

Each notebook ``<stem>.ipynb`` runs in its own folder ``<results>/<dataset>/<stem>/`` (injected as the
absolute ``output_dir`` parameter, and also the kernel's working directory, so anything a notebook writes
with a relative path stays in its own folder and parallel runs cannot collide). That folder then holds the
executed copy ``<stem>.ipynb``, its HTML rendering ``<stem>.html``, the notebook's own figures/tables and
``run.json`` (status, run time, fingerprint); it is emptied before each rerun so no stale figure stays.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path

from sercore.core.config import usable_cores

KERNEL_NAME = "python3"
_REPO = Path(__file__).resolve().parents[2]  # the folder holding the sercore package


def say(message: str) -> None:
    """One console line of the run, prefixed ``[run_all]``."""
    print(f"[run_all] {message}", flush=True)


def now() -> str:
    """The current UTC time, ISO format to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def finish_line(record: dict) -> str:
    """Console line for a finished step: status, name, seconds and error."""
    line = f"{record['status']:<7}{record['notebook']}  {record.get('seconds') or 0:.1f} s"
    return line + (f"  {record['error']}" if record.get("error") else "")


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
    say(f"installing Jupyter kernel {name!r} for {sys.executable}")
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
    updates = {"PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH")])),
               "SERCORE_PROGRESS": os.environ.get("SERCORE_PROGRESS", "console")}  # bars on this console
    if offline:
        updates.update(SERCORE_OFFLINE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        updates["OMP_NUM_THREADS"] = str(max(1, usable_cores() // workers))
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


class _SettingsParameters(logging.Filter):
    """Drops papermill's "Passed unknown parameter" for names of ``Params``: a notebook's parameters cell lists only
    its own and those it sets, and ``setup`` takes every other ``Params`` name from the injected cell."""

    def filter(self, record: logging.LogRecord) -> bool:
        from sercore.notebook.settings import Params  # torch and the models: only once papermill says something

        message = record.getMessage()
        prefix = "Passed unknown parameter: "
        return not (message.startswith(prefix) and message[len(prefix):] in Params.names())


logging.getLogger("papermill").addFilter(_SettingsParameters())


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
    record = {"notebook": stem, "source": str(notebook), "status": "running", "started": now(),
              "seconds": None, "fingerprint": job["fingerprint"], "params": job["params"],
              "executed": f"{stem}.ipynb", "html": None, "error": None}
    _write_record(out, record)
    say(f"start  {stem}")
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
    _open_with_findings(out / f"{stem}.ipynb", record)
    record["html"] = _render(out / f"{stem}.ipynb", record)
    _write_record(out, record)
    say(finish_line(record))
    return record


def render_html(executed: str | Path) -> Path:
    """Render an executed notebook to ``<stem>.html`` beside it (nbconvert ``HTMLExporter``)."""
    from nbconvert import HTMLExporter

    executed = Path(executed)
    body, _ = HTMLExporter().from_filename(str(executed))
    path = executed.with_suffix(".html")
    path.write_text(body, encoding="utf-8")
    return path


def _open_with_findings(executed: Path, record: dict) -> None:
    """The executed notebook's first cell becomes its findings line (``sercore.runner.findings``)."""
    from sercore.runner.findings import add_findings, notebook_findings

    if not executed.exists():
        return
    try:
        record["findings"] = notebook_findings(executed.parent, record)
        add_findings(executed, record["findings"])
    except Exception as exc:  # a findings problem must not hide the execution result
        record["findings_error"] = f"{type(exc).__name__}: {exc}"


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


def execute_all(jobs: list[dict], workers: int) -> dict:
    """Run jobs in this process (workers == 1) or in ``workers`` spawned processes; records by stem."""
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
                say(finish_line(records[stem]))
    return records
