"""Each rendered notebook opens with its findings line, computed from the tables the notebook wrote.

:func:`notebook_findings` reads the notebook's own folder (the same tables and wording as the index and benchmark
pages, :mod:`sercore.runner.results`); :func:`add_findings` puts the line as the first cell of the executed
notebook before it is rendered to HTML, so a reader sees the result before the code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sercore.runner import results

FINDINGS_ID = "sercore-findings"
PREFIX = "Findings:"


def _chance(table: pd.DataFrame) -> str:
    """`` (chance 0.25, 4 classes)`` from a table's ``chance_uar``/``n_classes`` columns, or ``""``."""
    if not {"chance_uar", "n_classes"} <= set(table.columns) or table["chance_uar"].isna().all():
        return ""
    k = pd.to_numeric(table["n_classes"], errors="coerce").dropna()
    return f" (chance UAR {table['chance_uar'].max():.2f}, {int(k.max())} classes)" if len(k) else ""


def _runs_line(folder: Path) -> str | None:
    """Mean test UAR per condition of the notebook's ``*_runs.csv`` (the first one that has both columns)."""
    for path in sorted(folder.glob("*_runs.csv")):
        try:
            runs = pd.read_csv(path)
        except (OSError, ValueError, pd.errors.EmptyDataError):
            continue
        if not {"condition", "test_uar"} <= set(runs.columns) or runs.empty:
            continue
        means = runs.groupby("condition", sort=False)["test_uar"].mean().sort_values(ascending=False)
        shown = ", ".join(f"{c} {v:.2f}" for c, v in means.items())
        return f"Mean test UAR by condition ({path.stem}): {shown}{_chance(runs)}."
    return None


def notebook_findings(folder: str | Path, record: dict | None = None) -> str:
    """One line from the notebook's folder: its probe, cluster or sparse-label finding, else the mean test UAR
    per condition of its runs table, else what it wrote; a failed run says so first."""
    folder = Path(folder)
    record = record or {}
    parts = []
    if record.get("status") == "failed":
        parts.append(f"the run failed ({record.get('error') or 'see the last cell'})")
    base = folder.parent
    tag = {"dataset": base.name}
    probes = results.probe_uar(base, base) if (folder / results.PROBES).is_file() else None
    if probes is not None and len(probes.dropna(subset=["uar"])):
        table = pd.read_csv(folder / results.PROBES)
        best = probes.loc[probes["uar"].idxmax()]
        shown = ", ".join(f"{v} {u:.2f}" for v, u in zip(probes["view"], probes["uar"]))
        parts.append(f"linear-probe emotion UAR {shown}{_chance(table[table['target'] == 'emotion'])}; "
                     f"best {best['view']}")
    elif (folder / results.CLUSTERS).is_file():
        parts.append(results.cluster_findings(results.cluster_nmi(base, base).assign(**tag)).rstrip("."))
    elif (folder / results.SPARSE).is_file():
        parts.append(results.sparse_findings(results.sparse_gain(base, base).assign(**tag)).rstrip("."))
    else:
        line = _runs_line(folder)
        if line:
            parts.append(line.rstrip("."))
    if not parts or record.get("status") == "failed" and len(parts) == 1:
        tables, figures = len(list(folder.glob("*.csv"))), len(list(folder.glob("*.png")))
        parts.append(f"wrote {tables} table(s) and {figures} figure(s)")
    text = "; ".join(parts)
    return f"{PREFIX} {text[0].upper()}{text[1:]}."


def add_findings(executed: str | Path, line: str) -> None:
    """Put ``line`` as the first (markdown) cell of the executed notebook, replacing an earlier one."""
    executed = Path(executed)
    nb = json.loads(executed.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c.get("id") != FINDINGS_ID]
    cell = {"cell_type": "markdown", "id": FINDINGS_ID, "metadata": {"tags": ["findings"]},
            "source": [f"**{line}**"]}
    nb["cells"] = [cell] + cells
    tmp = executed.with_name(executed.name + ".tmp")
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(executed)
