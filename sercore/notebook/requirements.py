"""What a notebook needs from its parameters, checked before any work: by ``run_all.py`` for every selected
notebook before the first one starts, and by ``setup(globals(), requires=...)`` in the notebook's first cell.

A notebook declares its needs in its setup call, ``setup(globals(), requires=("pairwise",))``; ``run_all.py``
reads that call from the notebook's source (:func:`declared_requirements`), so the declaration lives in one place.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

SIZES = ("tiny", "small", "default")


class BadParameters(ValueError):
    """A notebook's parameters cannot work: the message names each problem and how to fix it."""


@dataclass(frozen=True)
class Requirement:
    """One need: ``problem(params)`` → what is wrong with ``params`` and how to fix it, or None."""

    name: str
    what: str
    problem: Callable[[dict], str | None]


def _views(params: dict) -> list:
    return list(params.get("views") or [])


def _two_views(params):
    views = _views(params)
    if len(views) < 2:
        return (f"Pairwise-CL contrasts every pair of views, so it needs at least two views; got {views}. "
                "Give two or more, e.g. --views egemaps mel")
    return None


def _named_view(key: str, default: str):
    def problem(params):
        view = params.get(key, default)
        if view not in _views(params):
            return (f"{key} {view!r} is not among the views {_views(params)}: add it "
                    f"(--views {' '.join(_views(params) + [view])}) or set --param {key}=\"...\" to one of them")
        return None
    return problem


def _source_size(params):
    size = params.get("source_size")
    if size is not None and size not in SIZES:
        return f"source_size must be one of {SIZES} or null, got {size!r}"
    return None


REQUIREMENTS = {r.name: r for r in (
    Requirement("pairwise", "at least two views (Pairwise-CL pre-training)", _two_views),
    Requirement("speaker_view", "the speaker view among the views (paper B)", _named_view("speaker_view", "speaker")),
    Requirement("encoder_view", "the pre-trained encoder's view among the views", _named_view("encoder_view",
                                                                                                "egemaps")),
    Requirement("cross_corpus", "a valid synthetic source size when no other corpus is given", _source_size),
)}


def check_requirements(requires: Iterable[str], params: dict) -> list[str]:
    """The problems of ``params`` against the needs ``requires`` (names of :data:`REQUIREMENTS`)."""
    problems = []
    for name in requires:
        if name not in REQUIREMENTS:
            raise KeyError(f"unknown notebook requirement {name!r}; known: {sorted(REQUIREMENTS)}")
        found = REQUIREMENTS[name].problem(params)
        if found:
            problems.append(found)
    return problems


def require(requires: Iterable[str], params: dict) -> None:
    """Raise :class:`BadParameters` listing every problem of ``params`` against ``requires``."""
    problems = check_requirements(requires, params)
    if problems:
        raise BadParameters("\n".join(problems))


def _code_cells(notebook: str | Path):
    import nbformat

    return [c for c in nbformat.read(str(notebook), as_version=4).cells if c.cell_type == "code"]


def declared_requirements(notebook: str | Path) -> tuple[str, ...]:
    """The ``requires=`` of the notebook's ``setup(...)`` call (a literal tuple or list of names), or ()."""
    for cell in _code_cells(notebook):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "setup":
                for kw in node.keywords:
                    if kw.arg == "requires":
                        return tuple(ast.literal_eval(kw.value))
    return ()


def default_parameters(notebook: str | Path) -> dict:
    """The literal values assigned in the notebook's cell tagged ``parameters`` (others are left out)."""
    values = {}
    for cell in _code_cells(notebook):
        if "parameters" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
                if isinstance(target, ast.Name) and getattr(node, "value", None) is not None:
                    try:
                        values[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        pass
    return values


def notebook_problems(notebook: str | Path, injected: dict) -> list[str]:
    """What is wrong with running ``notebook`` with the parameters ``injected`` over its defaults (its parameters
    cell over ``Params``' defaults)."""
    from dataclasses import asdict

    from sercore.notebook.settings import Params

    params = {**asdict(Params()), **default_parameters(notebook), **injected}
    return [f"notebook {Path(notebook).stem}: {p}" for p in check_requirements(declared_requirements(notebook),
                                                                                 params)]
