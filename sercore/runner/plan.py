"""Planning a run: which corpora and notebooks, checked arguments, injected parameters, what is up to date.

Everything here is decided before any notebook starts. Bad arguments (an unknown notebook, dataset or view,
a missing or wrong data root) raise :class:`BadArguments`, which ``run_all.py`` turns into exit status 2.
A notebook is up to date when its last run succeeded and its fingerprint (notebook file, injected
parameters, source of the ``sercore`` package the kernel imports) is unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from sercore.notebook.requirements import notebook_problems

SIZES = ("default", "small", "tiny")
OPTIONAL_PARAMS = ("views", "folds", "n_folds", "repetitions", "epochs", "budget", "precision", "engine",
                   "ray_address", "splits")
RESERVED_PARAMS = ("dataset", "output_dir", "corpora")
CORPORA_PARAM = "corpora"  # injected only into notebooks that declare it: the run's other corpora {name: root}
NO_ROOT = "default"  # the generated corpus: the only one that needs no data root


class BadArguments(ValueError):
    """Arguments that cannot work (exit status 2): the message says what is wrong and what would work."""


@dataclass(frozen=True)
class Corpus:
    """One corpus of a run: its registered name, data root (None for ``default``) and loader options."""

    name: str
    root: str | None = None
    params: dict = field(default_factory=dict, hash=False, compare=False)


def parse_corpus(text: str) -> Corpus:
    """``NAME=ROOT`` (or plain ``NAME``) → :class:`Corpus`; the root is resolved to an absolute path."""
    name, sep, root = text.partition("=")
    name, root = name.strip(), root.strip()
    if not name:
        raise BadArguments(f"--data expects NAME=ROOT, got {text!r}")
    return Corpus(name, str(Path(root).expanduser().resolve()) if sep and root else None)


# ----------------------------------------------------------------------------------------------- discovery


def discover_notebooks(notebooks_dir: str | Path, names: list[str] | None = None) -> list[Path]:
    """Notebooks of ``notebooks_dir`` (sorted), or the ones named (stem or file name) in ``names``.

    Names starting with ``_`` (templates) or ``.`` are left out unless named explicitly. Raises
    ``FileNotFoundError`` for a missing folder and ``ValueError`` for an unknown name.
    """
    folder = Path(notebooks_dir).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"notebooks folder {folder} does not exist")
    found = {p.stem: p for p in sorted(folder.glob("*.ipynb")) if not p.name.startswith(".")}
    if not names:
        return [p for stem, p in found.items() if not stem.startswith("_")]
    unknown = [n for n in names if Path(n).stem not in found]
    if unknown:
        raise ValueError(f"unknown notebook(s) {unknown} in {folder}; available: {sorted(found)}")
    return [found[Path(n).stem] for n in dict.fromkeys(names)]


# --------------------------------------------------------------------------------------------- arguments


def check_corpora(corpora: list[Corpus]) -> list[str]:
    """Problems with ``corpora`` (unknown dataset, missing or nonexistent root, a name given twice)."""
    from sercore.data.registry import dataset_info

    problems, seen = [], set()
    for corpus in corpora:
        try:
            info = dataset_info(corpus.name)
        except KeyError as err:
            problems.append(str(err.args[0]))
            continue
        if info.name in seen:
            problems.append(f"dataset {info.name!r} given twice (each corpus writes results/{info.name}/)")
        seen.add(info.name)
        if corpus.root is None and info.needs_root and corpus.name != NO_ROOT:
            problems.append(f"dataset {corpus.name!r} needs a data root (--data {corpus.name}=ROOT or "
                            f"--data-root ROOT): the folder holding {info.layout}")
        elif corpus.root is not None and not Path(corpus.root).exists():
            problems.append(f"data root {corpus.root} of {corpus.name!r} does not exist; expected {info.layout}")
    return problems


def check_views(views: list[str] | None) -> list[str]:
    """Problems with the ``views`` asked for (unknown names), empty when all are registered."""
    if not views:
        return []
    from sercore.views import available_views

    known = available_views()
    unknown = [v for v in views if v not in known]
    return [f"unknown view(s) {unknown}; available views: {', '.join(known)}"] if unknown else []


def check_arguments(notebooks_dir, names, corpora: list[Corpus], *, params: dict | None = None,
                    size: str = "default", workers: int = 1) -> list[Path]:
    """Every check that needs no corpus loading (notebooks, corpora, the notebook ``params`` ``views``,
    ``n_folds``, ``dataset_params``, and each notebook's declared requirements against its parameters); returns the
    notebooks or raises :class:`BadArguments` listing all
    problems at once."""
    params = params or {}
    n_folds, dataset_params = params.get("n_folds"), params.get("dataset_params")
    problems = [f"parameter {key!r} cannot be overridden (use --data / --results instead)"
                for key in RESERVED_PARAMS if key in params]
    try:
        notebooks = discover_notebooks(notebooks_dir, names)
    except (FileNotFoundError, ValueError) as err:
        problems.append(str(err))
        notebooks = []
    if size not in SIZES:
        problems.append(f"size must be one of {SIZES}, got {size!r}")
    if workers < 1:
        problems.append(f"workers must be >= 1, got {workers}")
    if n_folds is not None and (not isinstance(n_folds, int) or n_folds < 2):
        problems.append(f"n_folds must be >= 2 (or left out for the automatic choice), got {n_folds}")
    if dataset_params is not None and not isinstance(dataset_params, dict):
        problems.append(f"dataset_params must be a JSON object, e.g. '{{\"on_error\": \"skip\"}}', "
                        f"got {dataset_params!r}")
    if not corpora:
        problems.append("no corpus given")
    problems += check_corpora(corpora) + check_views(params.get("views"))
    for notebook in notebooks:  # what each notebook declares it needs (its setup call's requires=)
        problems += notebook_problems(notebook, params)
    if problems:
        raise BadArguments("\n".join(problems))
    return notebooks


def notebook_params(output_dir: Path, *, dataset: str, data_root: str | None, size: str, quick: bool,
                    device: str, seed: int, offline: bool, extra: dict | None = None) -> dict:
    """Parameters injected into one notebook: the shared ones plus ``extra`` (views, folds, ``--param``)."""
    params = {"dataset": dataset, "data_root": None if data_root is None else str(Path(data_root).resolve()),
              "size": size, "quick": bool(quick), "device": device, "seed": int(seed),
              "offline": bool(offline), "output_dir": str(Path(output_dir).resolve())}
    for key, value in (extra or {}).items():
        if key in RESERVED_PARAMS:
            raise BadArguments(f"parameter {key!r} cannot be overridden (use --data / --results instead)")
        params[key] = value
    return params


# --------------------------------------------------------------------------------------------- fingerprint


def source_hash(package_dir: str | Path | None = None) -> str:
    """SHA-256 over the files of the ``sercore`` package (or ``package_dir``), byte cache files excluded."""
    root = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def fingerprint(notebook: str | Path, params: dict, sercore_hash: str) -> str:
    """Hash of the notebook file, the injected parameters, the content of a ``splits`` file or fold folder they
    name (an edited split reruns the notebooks) and the ``sercore`` source hash."""
    digest = hashlib.sha256(Path(notebook).read_bytes())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    splits = Path(str(params.get("splits") or ""))
    if params.get("splits") and splits.exists():
        for file in sorted([splits] if splits.is_file() else (p for p in splits.rglob("*") if p.is_file())):
            digest.update(file.as_posix().encode() + hashlib.sha256(file.read_bytes()).digest())
    digest.update(sercore_hash.encode())
    return digest.hexdigest()


def read_record(output_dir: str | Path) -> dict | None:
    """The ``run.json`` of a notebook's results folder, or None when absent or unreadable."""
    try:
        return json.loads((Path(output_dir) / "run.json").read_text())
    except (OSError, ValueError):
        return None


def is_up_to_date(output_dir: Path, stem: str, fp: str) -> bool:
    """True when the last run in ``output_dir`` succeeded with fingerprint ``fp`` and its copy exists."""
    record = read_record(output_dir)
    return bool(record and record.get("status") == "ok" and record.get("fingerprint") == fp
                and (Path(output_dir) / f"{stem}.ipynb").exists())


def declared_parameters(notebook: str | Path) -> set[str]:
    """Names assigned in the notebook's cell tagged ``parameters`` (Python source); empty when it has none.

    Read with ``ast`` rather than ``papermill.inspect_notebook``, which needs a kernel name in the notebook.
    """
    import ast

    import nbformat

    names = set()
    for cell in nbformat.read(str(notebook), as_version=4).cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def plan_jobs(notebooks: list[Path], out_root: Path, param_args: dict, *, blocked_by: str | None, force: bool,
              job_options: dict, say=print, others: dict | None = None) -> tuple[list[dict], dict]:
    """Split notebooks into jobs to execute and records of skipped (up to date) or blocked ones.

    ``blocked_by``: the failed step that blocks every notebook of this corpus, or None. ``others``: the run's
    other corpora ``{name: root}``, injected as ``corpora`` into the notebooks that declare that parameter.
    """
    sercore_hash = source_hash()
    jobs, records = [], {}
    for nb in notebooks:
        out = out_root / nb.stem
        params = notebook_params(out, **param_args)
        if CORPORA_PARAM in declared_parameters(nb):
            params[CORPORA_PARAM] = dict(others or {})
        fp = fingerprint(nb, params, sercore_hash)
        if blocked_by:
            records[nb.stem] = {"notebook": nb.stem, "status": "blocked", "seconds": None,
                                "error": f"not run: the {blocked_by} step failed"}
        elif not force and is_up_to_date(out, nb.stem, fp):
            records[nb.stem] = dict(read_record(out), status="skipped")
            say(f"skip   {nb.stem}  (unchanged since its last successful run; --force reruns)")
        else:  # papermill itself warns when a notebook has no cell tagged 'parameters'
            jobs.append({"notebook": str(nb), "output_dir": str(out), "params": params, "fingerprint": fp,
                         **job_options})
    return jobs, records
