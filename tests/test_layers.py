"""The package's import graph: no cycle, and no import from a lower layer into a higher one.

Every import counts, also those inside functions: importing lazily hides a cycle without removing it.
"""

import ast
import re
from pathlib import Path

import sercore

PACKAGE = Path(sercore.__file__).parent
# Lowest first; a package may import from its own layer's other packages only where the graph stays acyclic.
LAYERS = [
    ("core",),
    ("engine",),
    ("data",),
    ("features", "views", "models"),
    ("analysis",),
    ("training",),
    ("pairwise",),
    ("clusters",),
    ("notebook",),
    ("runner", "cache"),
]
RANK = {pkg: i for i, names in enumerate(LAYERS) for pkg in names}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("sercore"):
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and not parts[1].startswith("_") else None


def test_every_package_has_a_layer():
    packages = {_package(m) for m in _graph()} - {None}
    assert packages <= set(RANK), f"packages without a layer in this test: {sorted(packages - set(RANK))}"
    assert not [m for m in _graph() if m.count(".") == 1 and (PACKAGE / f"{m.split('.')[1]}.py").is_file()
                and not m.split(".")[1].startswith("_")], "a flat module outside the packages"


def test_no_upward_import():
    upward = []
    for module, targets in _graph().items():
        here = _package(module)
        for target in targets:
            there = _package(target)
            if here and there and RANK[there] > RANK[here]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports from a lower layer into a higher one:\n" + "\n".join(sorted(upward))


def test_no_import_cycle():
    graph, state, cycles = _graph(), {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checks_can_fail(tmp_path):
    """The graph builder sees a lazy import inside a function (the way cycles used to hide)."""
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from sercore.training import finetune\n")
    assert _imports("sercore.engine.m", path, {"sercore.training"}) == {"sercore.training"}


def test_engine_imports_nothing_of_training():
    for module, targets in _graph().items():
        if _package(module) == "engine":
            assert all(_package(t) in ("core", "engine") for t in targets), (module, targets)


def test_the_architecture_page_draws_these_layers():
    """docs/architecture.md stays short (≤ 12 KB), names every package, and its picture has the layers above."""
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    assert len(page.encode()) <= 12_000
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(RANK), "LAYERS must list every package"
    for name in packages:
        assert f"**`{name}`**" in page, name
    picture = page.split("```")[1]
    columns = [re.split(r"\s{3,}", line.strip())[0].split() for line in picture.splitlines() if line.strip()]
    drawn = {word: int(words[0]) for words in columns for word in words[1:]}  # "layer  pkg  pkg   description"
    assert drawn == {pkg: RANK[pkg] + 1 for pkg in packages}


def _private_imports(name: str, path: Path) -> list[str]:
    """``from <other sercore module> import _name`` in the module: a private name crossing a module boundary. Inside
    one package, its ``__init__`` and the package's private modules (``views/_ssl_*.py``) may share them."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        source = node.module or "" if isinstance(node, ast.ImportFrom) else ""
        package = source.rpartition(".")[0]
        inside = name == package or (name.startswith(package + ".") and source.rpartition(".")[2].startswith("_"))
        if source.startswith("sercore") and source != name and not inside:
            found += [f"{name}: from {node.module} import {a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_no_private_name_crosses_a_module(tmp_path):
    """A name one module keeps private is not imported by another: what modules share is public, with a docstring."""
    crossing = [line for name, path in _modules().items() for line in _private_imports(name, path)]
    assert not crossing, "\n".join(crossing)
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from sercore.training.loops import _x\n")
    assert _private_imports("sercore.engine.m", path) == ["sercore.engine.m: from sercore.training.loops import _x"]
