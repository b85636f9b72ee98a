"""The index page of one corpus's results: ``results/<dataset>/index.html`` and ``index.md``.

One row per results sub-folder (notebook or not) with its status, time, figures, tables and ``params.json``;
a link to ``bad_files.csv`` and to the benchmark page ``../index.html`` (written after every run); and a
findings line computed from the run and the notebooks' tables.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from sercore.runner import results
from sercore.runner.corpus import BAD_FILES_CSV
from sercore.runner.plan import read_record

_INDEX_FILES = {"index.html", "index.md", "run_summary.json", "run.json", BAD_FILES_CSV}
_NO_FILES = {"figures": [], "tables": [], "params": []}
_CSS = ("body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.ok{color:#070}.failed,.blocked{color:#b00}"
        "img{max-width:220px;max-height:160px;border:1px solid #ddd;margin:.2em}figure{display:inline-block}"
        ".findings{font-size:1.1em;background:#f4f8ff;border-left:4px solid #4a7fd0;padding:.4em .8em}")


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


def index_findings(out_root: Path, summary: dict) -> str:
    """One line computed from the run and the saved tables: notebooks ok, corpus size, bad files, best
    probe, significant clusters, Pairwise-CL against supervised."""
    notebooks = summary.get("notebooks", [])
    ok = sum(r["status"] in ("ok", "skipped") for r in notebooks)
    parts = [f"{ok} of {len(notebooks)} notebook(s) ok" + (f", failed: {', '.join(summary['failed'])}"
                                                           if summary.get("failed") else "")]
    facts = results.corpus_facts(out_root)
    size = [f"{facts[k]:,} {k}" for k in ("utterances", "speakers", "folds") if facts.get(k) is not None]
    if size:
        parts.append(", ".join(size))
    n_bad = summary.get("bad_files")
    if n_bad is not None:
        parts.append(f"{n_bad} bad file(s) skipped")
    probes = results.probe_uar(out_root, out_root).dropna(subset=["uar"])
    if len(probes):
        best = probes.loc[probes["uar"].idxmax()]
        chance = best.get("chance_uar")
        parts.append(f"best linear-probe UAR {best['uar']:.2f} ({best['view']}"
                     + (f"; chance {chance:.2f})" if pd.notna(chance) else ")"))
    clusters = results.cluster_nmi(out_root, out_root)
    if len(clusters):
        parts.append(f"per-speaker clusters significant in {int(clusters['significant'].sum())} of "
                     f"{len(clusters)} view(s)")
    sparse = results.sparse_gain(out_root, out_root)
    if len(sparse):
        parts.append(f"Pairwise-CL ≥ supervised in {int((sparse['gain'] >= 0).sum())} of {len(sparse)} settings, "
                     f"significantly better in {int(((sparse['mark'] == '*') & (sparse['gain'] > 0)).sum())}")
    return "; ".join(parts) + "."


def write_index(out_root: str | Path, summary: dict) -> tuple[Path, Path]:
    """Write ``index.html`` and ``index.md`` in ``out_root`` linking every notebook and result file."""
    out_root = Path(out_root)
    sections = _sections(out_root, summary)
    steps = [s for s in summary.get("steps", []) if s["status"] != "ok"]
    findings = index_findings(out_root, summary)
    bad = BAD_FILES_CSV if (out_root / BAD_FILES_CSV).is_file() else None
    html_path, md_path = out_root / "index.html", out_root / "index.md"
    html_path.write_text(_index_html(summary, sections, steps, findings, bad), encoding="utf-8")
    md_path.write_text(_index_md(summary, sections, steps, findings, bad), encoding="utf-8")
    return html_path, md_path


def _link(rel: str, text: str | None = None) -> str:
    return f'<a href="{quote(rel)}">{escape(text or rel)}</a>'


def _bad_line(summary: dict) -> str:
    n = summary.get("bad_files")
    return f"Bad files skipped: {'?' if n is None else n}, listed with their reasons in "


def _index_html(summary: dict, sections: list[dict], steps: list[dict], findings: str, bad: str | None) -> str:
    failed = ", ".join(summary["failed"]) or "none"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>sercore results: "
             f"{escape(summary['dataset'])}</title><style>{_CSS}</style></head><body>",
             f"<h1>Results: {escape(summary['dataset'])}</h1><p class='findings'>{escape(findings)}</p>",
             f"<p>Run started {summary['started']}, {summary['seconds']:.1f} s; failed: {escape(failed)}. "
             f"All corpora: <a href='../index.html'>benchmark page</a>.</p>"]
    if bad:
        parts.append(f"<p>{escape(_bad_line(summary))}{_link(bad)}.</p>")
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


def _index_md(summary: dict, sections: list[dict], steps: list[dict], findings: str, bad: str | None) -> str:
    lines = [f"# Results: {summary['dataset']}", "", findings, "",
             f"Run started {summary['started']}, {summary['seconds']:.1f} s; failed: "
             f"{', '.join(summary['failed']) or 'none'}.", ""]
    if bad:
        lines += [f"{_bad_line(summary)}[{bad}]({quote(bad)}).", ""]
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
