"""Reading the notebooks' saved tables, per corpus and across corpora, and the findings computed from them.

The benchmark page and the index pages use three tables the notebooks save (found by file name in any
notebook folder of ``results/<dataset>/``, so a renamed notebook keeps working; a missing table is left out):

- ``probes.csv`` (notebook 00): ``view, fold, target, metric, value``: the linear-probe emotion UAR per view;
- ``clusters_summary.csv`` (notebook 01): per view and setting, ``nmi_mean`` and the pooled permutation
  p-value ``p_mean_nmi`` of the per-speaker clusters (setting ``n_emotions``);
- ``sparse_labels_stats.csv`` (notebook 03): per view and labelled fraction, ``mean_a`` (Pairwise-CL),
  ``mean_b`` (supervised), the Holm-corrected mark ``*``/``ns``/``n/a (n too small)`` and the test behind it
  (``test``, ``n``, ``m``: see :func:`sercore.analysis.stats.compare_conditions`).

Every value carries ``link``: its notebook's HTML (or the CSV when there is no HTML), relative to the
folder the tables were gathered from. Findings lines are computed here, never written by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

PROBES, CLUSTERS, SPARSE = "probes.csv", "clusters_summary.csv", "sparse_labels_stats.csv"
ALPHA = 0.05
PAIRWISE, SUPERVISED = "pairwise-cl", "supervised"


def _find(folder: Path, name: str) -> Path | None:
    hits = sorted(folder.glob(f"*/{name}"))
    return hits[0] if hits else None


def _link(csv_path: Path, base: Path) -> str:
    """The notebook HTML beside ``csv_path`` (``<stem>/<stem>.html``) or the CSV itself, relative to ``base``."""
    html = csv_path.parent / f"{csv_path.parent.name}.html"
    return (html if html.is_file() else csv_path).relative_to(base).as_posix()


def _read(folder: Path, name: str) -> tuple[pd.DataFrame | None, Path | None]:
    path = _find(folder, name)
    if path is None:
        return None, None
    try:
        return pd.read_csv(path), path
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None, None


def probe_uar(folder: Path, base: Path) -> pd.DataFrame:
    """``view, uar, chance_uar, link``: mean linear-probe emotion test UAR over folds (notebook 00) and its chance
    level (1/K; NaN for tables written before it was recorded)."""
    df, path = _read(folder, PROBES)
    cols = ["view", "uar", "chance_uar", "link"]
    if df is None or not {"view", "target", "metric", "value"} <= set(df.columns):
        return pd.DataFrame(columns=cols)
    df = df[(df["target"] == "emotion") & (df["metric"] == "test_uar")]
    if "chance_uar" not in df.columns:
        df = df.assign(chance_uar=float("nan"))
    out = df.groupby("view", sort=False).agg(uar=("value", "mean"), chance_uar=("chance_uar", "max")).reset_index()
    return out.assign(link=_link(path, base))[cols]


def cluster_nmi(folder: Path, base: Path) -> pd.DataFrame:
    """``view, nmi, p, significant, link``: per-speaker cluster NMI and its pooled permutation p (notebook 01)."""
    df, path = _read(folder, CLUSTERS)
    cols = ["view", "nmi", "p", "significant", "link"]
    if df is None or not {"view", "nmi_mean"} <= set(df.columns):
        return pd.DataFrame(columns=cols)
    if "setting" in df.columns:
        main = "n_emotions" if (df["setting"] == "n_emotions").any() else df["setting"].iloc[0]
        df = df[df["setting"] == main]
    p = df["p_mean_nmi"] if "p_mean_nmi" in df.columns else pd.Series(float("nan"), index=df.index)
    out = pd.DataFrame({"view": df["view"], "nmi": df["nmi_mean"], "p": p, "significant": p < ALPHA})
    return out.assign(link=_link(path, base))[cols].reset_index(drop=True)


def sparse_gain(folder: Path, base: Path) -> pd.DataFrame:
    """``view, fraction, gain, mark, test, n, m, pairwise, supervised, link``: Pairwise-CL minus supervised mean
    UAR per labelled fraction, the significance mark and the test behind it (name, n, Holm family; NaN in tables
    saved before they were recorded), and the two mean UARs (notebook 03)."""
    df, path = _read(folder, SPARSE)
    cols = ["view", "fraction", "gain", "mark", "test", "n", "m", "pairwise", "supervised", "link"]
    if df is None or not {"view", "fraction", "mean_a", "mean_b"} <= set(df.columns):
        return pd.DataFrame(columns=cols)
    if {"a", "b"} <= set(df.columns):
        df = df[(df["a"] == PAIRWISE) & (df["b"] == SUPERVISED)]
    mark = df["mark"].fillna("n/a") if "mark" in df.columns else "n/a"
    out = pd.DataFrame({"view": df["view"], "fraction": df["fraction"].astype(float),
                        "gain": df["mean_a"] - df["mean_b"], "mark": mark, "pairwise": df["mean_a"],
                        "supervised": df["mean_b"]})
    for col in ("test", "n", "m"):
        out[col] = df[col] if col in df.columns else float("nan")
    return out.dropna(subset=["gain"]).assign(link=_link(path, base))[cols].reset_index(drop=True)


def corpus_facts(folder: Path) -> dict:
    """Size of one corpus's run: utterances, speakers, folds, bad files, notebooks ok/failed (what is known)."""
    facts = {"dataset": folder.name, "utterances": None, "speakers": None, "folds": None, "bad_files": None,
             "notebooks": 0, "failed": [], "classes": None, "chance_uar": None, "protocol": None}
    facts.update(protocol_facts(folder))
    try:
        summary = json.loads((folder / "run_summary.json").read_text())
    except (OSError, ValueError):
        summary = {}
    for step in summary.get("steps", []):
        if step.get("notebook") == "corpus":
            facts.update({k: step.get(k) for k in ("utterances", "speakers", "bad_files") if step.get(k) is not None})
    facts["notebooks"] = len(summary.get("notebooks", []))
    facts["failed"] = list(summary.get("failed", []))
    splits = _find(folder, "splits.csv")
    if splits is not None:
        try:
            s = pd.read_csv(splits, usecols=lambda c: c in ("fold", "speaker", "utt_id"))
            facts["folds"] = int(s["fold"].nunique()) if "fold" in s else None
            if facts["speakers"] is None and "speaker" in s:
                facts["speakers"] = int(s["speaker"].nunique())
            if facts["utterances"] is None and "utt_id" in s:
                facts["utterances"] = int(s["utt_id"].nunique())
        except (OSError, ValueError):
            pass
    return facts


def protocol_facts(folder: Path) -> dict:
    """``classes`` (e.g. ``"ang, hap, neu, sad"``), ``chance_uar`` and ``protocol`` (the fold scheme and whether
    test and validation speakers are unseen) of a corpus's run, from the first notebook ``params.json`` that has
    them; {} when none does."""
    for path in sorted(folder.glob("*/params.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        extra = record.get("extra", record)
        if extra.get("classes") and extra.get("folds_scheme"):
            return {"classes": ", ".join(map(str, extra["classes"])), "chance_uar": extra.get("chance_uar"),
                    "protocol": extra["folds_scheme"]}
    return {}


def corpus_folders(results_root: str | Path) -> list[Path]:
    """Folders of ``results_root`` that hold a corpus's run (``run_summary.json``), sorted by name."""
    root = Path(results_root)
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "run_summary.json").is_file()) \
        if root.is_dir() else []


def gather(results_root: str | Path, folders: list[Path] | None = None) -> dict[str, pd.DataFrame]:
    """The tables of every corpus under ``results_root`` (``facts``, ``probes``, ``clusters``, ``sparse``),
    each with a ``dataset`` column; links relative to ``results_root``."""
    root = Path(results_root).resolve()
    folders = corpus_folders(root) if folders is None else folders
    parts = {"probes": [], "clusters": [], "sparse": []}
    for folder in folders:
        for key, read in (("probes", probe_uar), ("clusters", cluster_nmi), ("sparse", sparse_gain)):
            parts[key].append(read(folder, root).assign(dataset=folder.name))
    tables = {k: pd.concat(v, ignore_index=True) if v else pd.DataFrame(columns=["dataset"]) for k, v in parts.items()}
    tables["facts"] = pd.DataFrame([corpus_facts(f) for f in folders],
                                   columns=["dataset", "utterances", "speakers", "folds", "bad_files", "notebooks",
                                            "failed", "classes", "chance_uar", "protocol"])
    return tables


# ----------------------------------------------------------------------------------------------- findings


def _best_views(df: pd.DataFrame, value: str, verb: str) -> str:
    """``"<view> is <verb> on k of n corpora"``: the view(s) with the highest ``value`` on most corpora."""
    wins = df.loc[df.groupby("dataset")[value].idxmax(), "view"].astype(str).value_counts()
    top = sorted(wins[wins == wins.max()].index)
    who = top[0] + " is" if len(top) == 1 else " and ".join(top) + " are each"
    return f"{who} {verb} on {int(wins.max())} of {df['dataset'].nunique()} corpora"


def probe_findings(probes: pd.DataFrame) -> str:
    """One line on the linear probes: UAR range and the view best on most corpora."""
    probes = probes.dropna(subset=["uar"]) if len(probes) else probes
    if probes.empty:
        return "No linear-probe results (notebook 00) yet."
    return (f"Linear-probe emotion UAR {probes['uar'].min():.2f}–{probes['uar'].max():.2f} over "
            f"{len(probes)} corpus × view setting(s); {_best_views(probes, 'uar', 'best')}.")


def cluster_findings(clusters: pd.DataFrame) -> str:
    """One line on the per-speaker clusters: how many settings are significant, NMI range, best view."""
    clusters = clusters.dropna(subset=["nmi"]) if len(clusters) else clusters
    if clusters.empty:
        return "No per-speaker cluster results (notebook 01) yet."
    sig = int(clusters["significant"].fillna(False).astype(bool).sum())
    return (f"Per-speaker emotion clusters significant (pooled permutation p < {ALPHA:g}) in {sig} of "
            f"{len(clusters)} corpus × view setting(s); "
            f"NMI {clusters['nmi'].min():.2f}–{clusters['nmi'].max():.2f}, "
            f"{_best_views(clusters, 'nmi', 'highest')}.")


def sparse_findings(sparse: pd.DataFrame) -> str:
    """One line on Pairwise-CL against supervised: how often at least as good, and significantly so."""
    if sparse.empty:
        return "No sparse-label results (notebook 03) yet."
    ge = int((sparse["gain"] >= 0).sum())
    sig = sparse["mark"] == "*"
    better, worse = int((sig & (sparse["gain"] > 0)).sum()), int((sig & (sparse["gain"] < 0)).sum())
    line = f"Pairwise-CL ≥ supervised in {ge} of {len(sparse)} settings, significantly better in {better}"
    return line + (f", significantly worse in {worse}." if worse else ".")


def overall_findings(tables: dict[str, pd.DataFrame]) -> str:
    """The page's headline: corpora, utterances, and the count-based parts of the three findings."""
    facts = tables["facts"]
    if facts.empty:
        return "No corpus has been run yet."
    utts = int(pd.to_numeric(facts["utterances"], errors="coerce").fillna(0).sum())
    parts = [f"{len(facts)} {'corpus' if len(facts) == 1 else 'corpora'}, {utts:,} utterances"]
    sparse, clusters = tables["sparse"], tables["clusters"]
    if len(sparse):
        parts.append(f"Pairwise-CL ≥ supervised in {int((sparse['gain'] >= 0).sum())} of {len(sparse)} settings "
                     f"({int(((sparse['mark'] == '*') & (sparse['gain'] > 0)).sum())} significantly better)")
    if len(clusters):
        parts.append(f"significant per-speaker emotion clusters in "
                     f"{int(clusters['significant'].fillna(False).astype(bool).sum())} of {len(clusters)} settings")
    failed = sum(len(f) for f in facts["failed"])
    if failed:
        parts.append(f"{failed} failed step(s)")
    return "; ".join(parts) + "."
