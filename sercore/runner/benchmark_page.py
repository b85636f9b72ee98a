"""The benchmark page across corpora: ``results/index.html``, one self-contained HTML file.

Per corpus: its size and folds, the linear-probe UAR per view (notebook 00), the per-speaker cluster NMI with
its significance (notebook 01), and Pairwise-CL minus supervised UAR at each labelled fraction with its
significance mark and the test, n and correction behind it (notebook 03). Each number links to the notebook that
produced it; each comparison has a seaborn heat map (corpora × views) embedded as a base64 PNG; the page and every
table are headed by a findings line computed from the numbers (:mod:`sercore.runner.results`).
"""

from __future__ import annotations

import base64
import io
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from sercore.runner import results
from sercore.runner.corpus import BAD_FILES_CSV

PAGE = "index.html"
_CSS = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}"
        "h1{margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}"
        "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}"
        "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}a{color:#1a55a8;text-decoration:none}"
        "a:hover{text-decoration:underline}.findings{font-size:1.05em;background:#f4f8ff;border-left:4px solid #4a7fd0;"
        "padding:.4em .8em}.sig{font-weight:bold}.na{color:#999}img{max-width:100%;height:auto;display:block}"
        ".note{color:#666;font-size:.9em}.row{display:flex;gap:2em;align-items:flex-start;flex-wrap:wrap}"
        ".row img{max-width:36em}.text{text-align:left}")


def _num_link(value: float, link: str, fmt: str, mark: str = "") -> str:
    text = format(value, fmt) + (f" {mark}" if mark else "")
    cls = " class='sig'" if mark == "*" else ""
    return f'<a href="{quote(link)}"{cls}>{escape(text)}</a>'


def heatmap_png(panels: list[tuple[str, pd.DataFrame, pd.DataFrame]], *, title: str, cmap: str, center=None,
                vmin=None, vmax=None, per_row: int = 2) -> str:
    """Seaborn heat maps, one per ``(panel title, values, annotations)`` (rows corpora, columns views), up to
    ``per_row`` side by side, on one colour scale; returns the figure as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    n_rows, n_cols = panels[0][1].shape
    grid_cols = min(per_row, len(panels))
    grid_rows = -(-len(panels) // grid_cols)
    fig, axes = plt.subplots(grid_rows, grid_cols, squeeze=False, layout="constrained",
                             figsize=(1.8 + grid_cols * (1.0 + 0.9 * n_cols), 0.5 + grid_rows * (0.9 + 0.45 * n_rows)))
    for ax, (name, values, annot) in zip(axes.flat, panels):
        sns.heatmap(values.astype(float), annot=annot.to_numpy(), fmt="", cmap=cmap, center=center, vmin=vmin,
                    vmax=vmax, linewidths=0.5, linecolor="white", cbar=False, ax=ax)
        ax.set_title(name, fontsize=10)
        ax.set(xlabel="", ylabel="")
        ax.tick_params(axis="x", rotation=30 if n_cols > 4 else 0)
        ax.tick_params(axis="y", rotation=0)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.colorbar(axes.flat[0].collections[0], ax=axes, shrink=0.8)
    fig.suptitle(title, fontsize=11, x=0.02, ha="left")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _row(*parts: str) -> str:
    return f"<div class='row'>{''.join(f'<div>{p}</div>' for p in parts)}</div>"


def _figure(png: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{png}" alt="{escape(alt)}">'


def _table(df: pd.DataFrame, rows: list[tuple], row_names: list[str], cell) -> str:
    """HTML table: one row per key of ``rows`` (matched against ``df["_row"]``, ``–`` where there is no
    value), one column per ``df["_col"]``; ``cell(record)`` renders a value."""
    columns = list(dict.fromkeys(df["_col"]))
    head = "".join(f"<th class='text'>{escape(n)}</th>" for n in row_names)
    head += "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    found = {(r["_row"], r["_col"]): r for r in df.to_dict("records")}
    body = []
    for key in rows:
        cells = "".join(f"<td>{cell(found[key, c])}</td>" if (key, c) in found else "<td class='na'>–</td>"
                        for c in columns)
        body.append("<tr>" + "".join(f"<td class='text'>{escape(str(k))}</td>" for k in key) + cells + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _pivot(df: pd.DataFrame, value: str, text) -> tuple[pd.DataFrame, pd.DataFrame]:
    values = df.pivot_table(index="dataset", columns="_col", values=value, aggfunc="first", sort=False)
    columns = list(dict.fromkeys(df["_col"]))
    values = values.reindex(index=sorted(set(df["dataset"])), columns=columns)  # a row of NaN stays (blank)
    annot = pd.DataFrame("", index=values.index, columns=columns)
    for _, row in df.iterrows():
        annot.loc[row["dataset"], row["_col"]] = text(row)
    return values, annot


def _probe_section(probes: pd.DataFrame, datasets: list[str]) -> str:
    head = (f"<h2>Linear-probe emotion UAR per view</h2>"
            f"<p class='findings'>{escape(results.probe_findings(probes))}</p>"
            "<p class='note'>Standardised logistic regression on each view's features, mean test UAR over folds "
            "(notebook 00); in brackets, UAR above chance (1/K for K classes: see each corpus's class set and "
            "protocol above). The heat map's colour is the UAR above chance: 0 = guessing.</p>")
    if probes.empty:
        return head
    df = probes.sort_values("view", kind="stable")
    if "chance_uar" not in df.columns:
        df = df.assign(chance_uar=float("nan"))
    df = df.assign(_col=df["view"], _row=[(d,) for d in df["dataset"]],
                   above=pd.to_numeric(df["uar"], errors="coerce") - pd.to_numeric(df["chance_uar"], errors="coerce"))
    table = _table(df, [(d,) for d in datasets], ["corpus"],
                   lambda r: _num_link(r["uar"], r["link"], ".3f") + _above(r["above"]))
    if df["above"].notna().any():
        values, annot = _pivot(df, "above", lambda r: f"{r['uar']:.2f}\n({r['above']:+.2f})"
                               if pd.notna(r["above"]) else f"{r['uar']:.2f}")
        limit = max(float(df["above"].abs().max()), 0.05)
        png = heatmap_png([("", values, annot)], title="linear-probe emotion UAR (above chance)", cmap="RdBu",
                          center=0, vmin=-limit, vmax=limit)
    else:  # tables written before the chance level was recorded
        values, annot = _pivot(df, "uar", lambda r: f"{r['uar']:.2f}")
        png = heatmap_png([("", values, annot)], title="linear-probe emotion UAR", cmap="viridis", vmin=0, vmax=1)
    return head + _row(table, _figure(png, "heat map of linear-probe UAR above chance, corpora × views"))


def _above(value) -> str:
    return "" if pd.isna(value) else f" <small>({value:+.3f})</small>"


def _cluster_section(clusters: pd.DataFrame, datasets: list[str]) -> str:
    head = (f"<h2>Emotional clusters in speaker embeddings</h2>"
            f"<p class='findings'>{escape(results.cluster_findings(clusters))}</p>"
            "<p class='note'>Per-speaker k-means (k = the speaker's number of emotions) against emotion labels: mean "
            f"NMI over speakers; * = pooled permutation p &lt; {results.ALPHA:g} (notebook 01).</p>")
    if clusters.empty:
        return head
    df = clusters.sort_values("view", kind="stable")
    df = df.assign(_col=df["view"], _row=[(d,) for d in df["dataset"]])

    def mark(r):
        return "*" if r["significant"] is True or r["significant"] == 1 else ""

    table = _table(df, [(d,) for d in datasets], ["corpus"],
                   lambda r: _num_link(r["nmi"], r["link"], ".3f", mark(r))
                   + (f" <small>(p={r['p']:.3f})</small>" if pd.notna(r["p"]) else ""))
    values, annot = _pivot(df, "nmi", lambda r: f"{r['nmi']:.2f}{mark(r)}")
    png = heatmap_png([("", values, annot)], title="per-speaker cluster NMI (* significant)", cmap="magma",
                      vmin=0, vmax=1)
    return head + _row(table, _figure(png, "heat map of per-speaker cluster NMI, corpora × views"))


def _sparse_section(sparse: pd.DataFrame, datasets: list[str]) -> str:
    head = (f"<h2>Pairwise-CL minus supervised UAR with sparse labels</h2>"
            f"<p class='findings'>{escape(results.sparse_findings(sparse))}</p>"
            "<p class='note'>Mean test UAR of Pairwise-CL pre-training + fine-tuning minus supervised training, per "
            f"view and labelled fraction; * = Holm-corrected p &lt; {results.ALPHA:g}, ns = not significant, "
            f"n/a (n too small) = no difference could have reached p &lt; {results.ALPHA:g} with that n "
            f"(notebook 03). {escape(_tests_used(sparse))}</p>")
    if sparse.empty:
        return head
    df = sparse.assign(_row=list(zip(sparse["dataset"], sparse["view"])),
                       _col=(100 * sparse["fraction"]).map("{:g}%".format)).sort_values("fraction")
    views = sorted(dict.fromkeys(sparse["view"]))
    present, rows = set(df["_row"]), []
    for d in datasets:  # a corpus without results keeps one row of dashes
        rows += [(d, v) for v in views if (d, v) in present] or [(d, "")]
    table = _table(df, rows, ["corpus", "view"], lambda r: _num_link(r["gain"], r["link"], "+.3f", r["mark"]))
    limit = max(float(df["gain"].abs().max()), 0.01)
    panels = []
    for fraction, part in df.groupby("fraction", sort=True):
        values, annot = _pivot(part.assign(_col=part["view"]), "gain",
                               lambda r: f"{r['gain']:+.2f}{'*' if r['mark'] == '*' else ''}")
        panels.append((f"{100 * fraction:g}% labelled", values.reindex(columns=views), annot.reindex(columns=views)))
    panels = _same_rows(panels)
    png = heatmap_png(panels, title="Pairwise-CL − supervised UAR (* significant)", cmap="RdBu", center=0,
                      vmin=-limit, vmax=limit)
    return head + table + _figure(png, "heat maps of Pairwise-CL minus supervised UAR, corpora × views, "
                                       "one per labelled fraction")


def _tests_used(sparse: pd.DataFrame) -> str:
    """``Tests: emodb: Wilcoxon signed-rank (paired), n = 15, Holm over 12; ...``: each corpus's test, n and
    correction, as its stats table records them."""
    from sercore.analysis.stats import TEST_NAMES

    if sparse.empty or "test" not in sparse.columns:
        return ""
    parts = []
    for dataset, d in sparse.groupby("dataset", sort=True):
        d = d.dropna(subset=["test"])
        if d.empty:
            parts.append(f"{dataset}: test not recorded")
            continue
        names = ", ".join(TEST_NAMES.get(t, t) for t in dict.fromkeys(d["test"]))
        n = "–".join(f"{v:g}" for v in sorted({d["n"].min(), d["n"].max()}))
        m = "–".join(f"{v:g}" for v in sorted({d["m"].min(), d["m"].max()}))
        parts.append(f"{dataset}: {names}, n = {n}, Holm over {m}")
    return "Tests: " + "; ".join(parts) + "."


def _ranks_section(tables: dict) -> str:
    """Friedman tests and critical-difference diagrams across corpora (``sercore.runner.ranks``)."""
    from sercore.runner import ranks

    n = tables["facts"]["dataset"].nunique()
    head = ("<h2>Ranks across corpora</h2><p class='note'>Within each corpus (and labelled fraction) the "
            "treatments are ranked by UAR, 1 = best; Friedman test on the ranks, Nemenyi post-hoc test, "
            "critical-difference diagram (a bar joins treatments that do not differ at α = 0.05). Only corpora "
            f"with every treatment count; at least {ranks.MIN_CORPORA} corpora are needed.</p>")
    parts = [head]
    for what, rank in (("Views by linear-probe UAR", ranks.probe_ranks),
                       ("Pairwise-CL and supervised per view, by UAR over corpora × labelled fractions",
                        ranks.sparse_ranks)):
        try:
            result = rank(tables["probes" if rank is ranks.probe_ranks else "sparse"])
            png = None if result is None else ranks.cd_diagram_png(result, what)
        except Exception as exc:  # a degenerate table must not cost the page
            parts.append(f"<p class='findings'>{escape(what)}: not ranked ({escape(type(exc).__name__)}: "
                         f"{escape(str(exc))}).</p>")
            continue
        if result is None:
            parts.append(f"<p class='findings'>{escape(what)}: not ranked (needs {ranks.MIN_CORPORA} corpora with "
                         f"every treatment; this page has {n} corpora).</p>")
            continue
        parts.append(f"<p class='findings'>{escape(result.line(what))}</p>")
        parts.append(_figure(png, f"critical-difference diagram: {what}"))
    return "".join(parts)


def _same_rows(panels):
    """Panels reindexed to the union of their corpora, so the heat maps line up."""
    index = sorted(set().union(*(set(v.index) for _, v, _ in panels)))
    return [(name, v.reindex(index), a.reindex(index).fillna("")) for name, v, a in panels]


def _facts_section(facts: pd.DataFrame, root: Path) -> str:
    rows = []
    for _, f in facts.iterrows():
        name = f["dataset"]
        index = f"{name}/index.html"
        cell = _a(index, name) if (root / index).is_file() else escape(name)
        bad = "–" if pd.isna(f["bad_files"]) else str(int(f["bad_files"]))
        if (root / name / BAD_FILES_CSV).is_file():
            bad = _a(f"{name}/{BAD_FILES_CSV}", bad)
        nums = "".join(f"<td>{'–' if pd.isna(f[k]) else f'{int(f[k]):,}'}</td>"
                       for k in ("utterances", "speakers", "folds"))
        failed = ", ".join(f["failed"]) or "none"
        known = isinstance(f.get("classes"), str)
        classes = f"{len(f['classes'].split(', '))} ({f['classes']})" if known else "–"
        chance = "–" if pd.isna(f.get("chance_uar")) else f"{float(f['chance_uar']):.3f}"
        protocol = f.get("protocol") if isinstance(f.get("protocol"), str) else "–"
        rows.append(f"<tr><td>{cell}</td>{nums}<td>{bad}</td><td>{f['notebooks']}</td>"
                    f"<td class='text'>{escape(failed)}</td><td class='text'>{escape(classes)}</td><td>{chance}</td>"
                    f"<td class='text'>{escape(protocol)}</td></tr>")
    return ("<h2>Corpora</h2><p class='note'>Classes: the task's class set; chance UAR = 1/K (the UAR of any guess); "
            "protocol: the folds, and whether test and validation speakers are unseen in training.</p>"
            "<table><tr><th>corpus</th><th>utterances</th><th>speakers</th><th>folds</th>"
            "<th>bad files</th><th>notebooks</th><th class='text'>failed</th><th class='text'>classes</th>"
            "<th>chance UAR</th><th class='text'>protocol</th></tr>" + "".join(rows) + "</table>")


def _a(href: str, text: str) -> str:
    return f'<a href="{quote(href)}">{escape(text)}</a>'


def write_benchmark_page(results_root: str | Path, folders: list[Path] | None = None) -> Path:
    """Write ``results_root/index.html`` across every corpus run under ``results_root`` (or ``folders``)."""
    root = Path(results_root).resolve()
    tables = results.gather(root, folders)
    datasets = list(tables["facts"]["dataset"])
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    body = [f"<!doctype html><html><head><meta charset='utf-8'><title>sercore benchmark</title>"
            f"<style>{_CSS}</style></head><body><h1>sercore benchmark across corpora</h1>",
            f"<p class='findings'>{escape(results.overall_findings(tables))}</p>",
            _facts_section(tables["facts"], root), _probe_section(tables["probes"], datasets),
            _cluster_section(tables["clusters"], datasets), _sparse_section(tables["sparse"], datasets),
            _ranks_section(tables),
            f"<p class='note'>Written {stamp} by run_all.py from the tables the notebooks saved; every number links "
            "to its notebook.</p></body></html>"]
    path = root / PAGE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(body), encoding="utf-8")
    tmp.replace(path)
    return path
