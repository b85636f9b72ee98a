"""Every notebook, executed through run_all.py in quick mode on the tiny default corpus, writes sane results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))

# notebook → files it must write (figures as PNG + PDF, tables as CSV + Markdown)
EXPECTED = {
    "00_dataset_overview": ["overview.png", "counts.csv", "durations.csv", "folds.csv", "probes.csv"],
    "01_speaker_clusters": ["speaker_emotion_map.png", "clusters_per_speaker.csv", "clusters_summary.csv",
                            "clusters_global.csv"],
    "02_temperature_grid": ["temperature_table.png", "temperature_runs.csv", "frozen_vs_tuned.csv"],
    "03_sparse_labels": ["sparse_labels.png", "sparse_label_runs.csv", "sparse_labels_stats.csv"],
    "04_target_vs_ood": ["target_vs_ood.png", "target_vs_ood_runs.csv", "target_vs_ood_stats.csv"],
    "05_representation_maps": ["representation_maps.png", "maps.csv"],
    "06_alignment": ["alignment.png", "alignment_runs.csv"],
    "07_parameter_counts": ["parameter_counts.csv"],
    "08_cluster_contrastive": ["cluster_contrastive.png", "cluster_contrastive_runs.csv",
                               "cluster_contrastive_summary.csv"],
    "09_cross_corpus": ["cross_corpus.png", "cross_corpus_runs.csv", "cross_corpus_stats.csv",
                        "cross_corpus_means.csv"],
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, str(REPO / "run_all.py"), "--size", "tiny", "--quick", "--offline",
                           "--results", str(out)], cwd=tmp_path_factory.mktemp("cwd"), env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out / "default"


def test_every_notebook_is_covered():
    assert sorted(EXPECTED) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_outputs(results, name):
    folder = results / name
    assert (folder / f"{name}.ipynb").is_file() and (folder / f"{name}.html").stat().st_size > 0
    for file in EXPECTED[name]:
        path = folder / file
        assert path.is_file() and path.stat().st_size > 0, f"{name} did not write {file}"
        if file.endswith(".png"):
            assert path.with_suffix(".pdf").stat().st_size > 0
        if file.endswith(".csv"):
            assert path.with_suffix(".md").is_file()
    params = json.loads((folder / "params.json").read_text())
    assert params["seed"] == 0 and params["params"].get("quick", True) is True
    assert "speaker" not in params["models"] or params["models"]["speaker"]["model"] in ("ecapa", "resemblyzer")
    assert (folder / "splits.csv").is_file()


def _between(values, low=0.0, high=1.0):
    values = pd.Series(values).dropna()
    return len(values) > 0 and values.between(low, high).all()


def test_metric_values_are_sane(results):
    for name, table in [("02_temperature_grid", "temperature_runs"), ("03_sparse_labels", "sparse_label_runs"),
                        ("04_target_vs_ood", "target_vs_ood_runs"),
                        ("08_cluster_contrastive", "cluster_contrastive_runs")]:
        runs = pd.read_csv(results / name / f"{table}.csv")
        for col in ("val_uar", "val_wa", "test_uar", "test_wa"):
            assert _between(runs[col]), f"{name}/{table}.{col} outside [0, 1]"
    sparse = pd.read_csv(results / "03_sparse_labels" / "sparse_label_runs.csv")
    assert set(sparse["condition"]) == {"pairwise-cl", "supervised"}
    stats = pd.read_csv(results / "03_sparse_labels" / "sparse_labels_stats.csv")
    p_cols = [c for c in stats.columns if c.startswith("p")]
    assert p_cols and all(_between(stats[c]) for c in p_cols)
    clusters = pd.read_csv(results / "01_speaker_clusters" / "clusters_per_speaker.csv")
    for col in ("purity", "nmi", "p_purity", "p_nmi", "p_ari"):
        assert _between(clusters[col]), col
    alignment = pd.read_csv(results / "06_alignment" / "alignment_runs.csv")
    assert _between(alignment["pwcca"]) and _between(alignment["cka"])
    assert {"pre-trained", "supervised", "random", "random vectors"} <= set(alignment["condition"])
    counts = pd.read_csv(results / "07_parameter_counts" / "parameter_counts.csv")
    assert (counts["trainable_params"] > 0).all()
    probes = pd.read_csv(results / "00_dataset_overview" / "probes.csv")
    assert _between(probes["value"])
    conditions = set(pd.read_csv(results / "08_cluster_contrastive" / "cluster_contrastive_runs.csv")["condition"])
    assert {"cluster_contrastive", "cluster_multitask", "cluster_adversarial", "supervised",
            "speaker_probe", "pairwise-cl"} <= conditions


def test_index_links_every_figure_and_notebook(results):
    index = (results / "index.html").read_text()
    for name in NOTEBOOKS:
        assert f"{name}/{name}.html" in index
    for png in results.glob("*/*.png"):
        assert f"{png.parent.name}/{png.name}" in index
    summary = json.loads((results / "run_summary.json").read_text())
    assert summary["ok"] and not summary["failed"]


def test_run_all_on_a_corpus_folder_of_the_official_layout(tmp_path):
    """`run_all.py --dataset emodb --data-root PATH` on an EmoDB folder (real file naming, synthetic speech)."""
    from fixtures_corpora import emodb_from_corpus
    from sercore.data.synth import load_default_corpus

    root = emodb_from_corpus(tmp_path / "emodb", load_default_corpus(size="tiny"))
    proc = subprocess.run([sys.executable, str(REPO / "run_all.py"), "--dataset", "emodb", "--data-root", str(root),
                           "--quick", "--offline", "--results", str(tmp_path / "res"), "--notebooks",
                           "00_dataset_overview", "03_sparse_labels"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = tmp_path / "res" / "emodb"
    counts = pd.read_csv(out / "00_dataset_overview" / "counts.csv", dtype={"speaker": str}).set_index("speaker")
    assert len(counts) == 11 and counts.loc["total", "total"] == 210  # 10 EmoDB speakers × its 7 emotions × 3
    assert "sur" not in counts.columns and counts.index[0] == "03"
    splits = pd.read_csv(out / "03_sparse_labels" / "splits.csv", dtype={"speaker": str})
    for _, fold in splits.groupby("fold"):  # speaker-disjoint folds
        test = set(fold.loc[fold["split"] == "test", "speaker"])
        assert test and not test & set(fold.loc[fold["split"] != "test", "speaker"])
    runs = pd.read_csv(out / "03_sparse_labels" / "sparse_label_runs.csv")
    assert _between(runs["test_uar"]) and json.loads((out / "03_sparse_labels" / "params.json").read_text())[
        "params"]["dataset"] == "emodb"
