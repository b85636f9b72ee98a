"""The notebooks: their shape (read statically) and their results when run_all.py executes them in quick mode on
the tiny default corpus; the template notebook executed on its own."""

import ast
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from sercore.notebook.settings import Params

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
TEMPLATE = REPO / "templates" / "experiment.ipynb"
SETUP = "from sercore.notebook.experiment import setup\nexp, run = setup(globals())"

# notebook → files it must write (figures as PNG + PDF, tables as CSV + Markdown)
EXPECTED = {
    "00_dataset_overview": ["overview.png", "counts.csv", "durations.csv", "folds.csv", "probes.csv"],
    "01_speaker_clusters": ["speaker_emotion_map.png", "clusters_per_speaker.csv", "clusters_summary.csv",
                            "clusters_global.csv"],
    "02_temperature_grid": ["temperature_table.png", "temperature_runs.csv", "frozen_vs_tuned.csv",
                            "temperature_learning_curves.png", "temperature_learning_curves_best.csv"],
    "03_sparse_labels": ["sparse_labels.png", "sparse_label_runs.csv", "sparse_labels_stats.csv",
                         "sparse_label_learning_curves.png", "sparse_label_learning_curves_best.csv"],
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
    assert params["seed"] == 0 and params["params"]["quick"] is True and params["params"]["size"] == "tiny"
    injected = {"dataset", "data_root", "size", "quick", "device", "seed", "offline", "output_dir"}
    assert injected <= set(params["injected"]) and set(params["injected"]) <= set(params["params"])
    assert params["run"]["budget"] == "quick" and params["folds"] == [0]
    assert params["models"]["speaker"]["model"] in ("ecapa", "resemblyzer")
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
    fine = counts[counts["stage"] == "fine-tuning"]
    tuned = fine[fine["frozen"].astype(str) == "False"].set_index("view")["trainable_params"].to_dict()
    assert tuned == {"egemaps": 55_680 + 516, "mel": 59_184 + 516, "speaker": 98_688 + 516}  # offline: d-vector
    assert fine.loc[fine["frozen"].astype(str) == "True", "trainable_params"].tolist() == [516, 516, 516]
    assert counts.loc[counts["stage"] == "pre-training", "trainable_params"].tolist() == [412_848]
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


def _two_speaker_csv(folder: Path, manifest) -> Path:
    """A user's own corpus as the README describes it: two speakers, the four documented columns only, audio
    copied beside the CSV and named by relative paths."""
    import shutil

    (folder / "audio").mkdir(parents=True)
    keep = manifest[manifest["speaker"].isin(sorted(manifest["speaker"].unique())[:2])]
    rows = []
    for row in keep.itertuples():
        shutil.copy(row.path, folder / "audio" / f"{row.utt_id}.wav")
        rows.append({"utt_id": row.utt_id, "path": f"audio/{row.utt_id}.wav", "speaker": row.speaker,
                     "emotion": row.emotion})
    pd.DataFrame(rows).to_csv(folder / "mine.csv", index=False)
    return folder / "mine.csv"


def test_run_all_on_three_corpora_official_layout_and_a_two_speaker_csv(tmp_path):
    """`run_all.py --data` over the tiny default corpus, an EmoDB folder (real file naming, synthetic speech)
    and a two-speaker CSV with the README's four columns: notebooks 00, 01, 03 and 09, then the page."""
    from fixtures_corpora import emodb_from_corpus
    from sercore.data.synth import load_default_corpus

    tiny = load_default_corpus(size="tiny")
    root = emodb_from_corpus(tmp_path / "emodb", tiny)
    csv = _two_speaker_csv(tmp_path / "mine", tiny)
    proc = subprocess.run([sys.executable, str(REPO / "run_all.py"), "--data", "default", f"emodb={root}",
                           f"csv={csv}", "--size", "tiny", "--quick", "--offline", "--views", "egemaps", "mel",
                           "--results", str(tmp_path / "res"), "--notebooks", "00_dataset_overview",
                           "01_speaker_clusters", "03_sparse_labels", "09_cross_corpus"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=2400)
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
    mine = json.loads((tmp_path / "res" / "csv" / "03_sparse_labels" / "params.json").read_text())
    assert mine["speaker_dependent_val"] is True and "leave-one-speaker-out" in mine["folds_scheme"]
    cross = pd.read_csv(out / "09_cross_corpus" / "cross_corpus_runs.csv")
    assert {"target", "none", "default", "csv", "all-but-target"} <= set(cross["pretrain_data"])
    page = (tmp_path / "res" / "index.html").read_text()
    assert all(name in page for name in ("default", "emodb", "csv"))


# ---- the notebooks' shape ------------------------------------------------------------------------------------

def _code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("path", [REPO / "notebooks" / f"{n}.ipynb" for n in NOTEBOOKS] + [TEMPLATE],
                         ids=lambda p: p.stem)
def test_notebook_is_parameters_setup_and_a_few_calls(path):
    cells = _code_cells(path)
    assert "parameters" in cells[0]["metadata"].get("tags", []), "the first code cell is the tagged parameters"
    assert _source(cells[1]) == SETUP
    assert all(not c["outputs"] and c["execution_count"] is None for c in cells), "commit notebooks without outputs"
    params = ast.parse(_source(cells[0])).body
    lines = _source(cells[0]).splitlines()
    assert len(params) == len(lines) and all(isinstance(p, ast.AnnAssign) for p in params), "typed lines only"
    assert all("  # " in line for line in lines), "a comment on every parameter line"
    names = [p.target.id for p in params]
    code = "\n".join(_source(c) for c in cells[2:])
    unused = [n for n in names if n not in Params.names() and n not in code]
    assert not unused, f"{path.stem} declares parameters it does not use: {unused}"
    assert len(cells) <= 6


def test_no_code_line_repeats_across_notebooks():
    """Beyond the parameters cell and the setup call, the notebooks share no line of code (imports aside)."""
    seen = Counter()
    for name in NOTEBOOKS:
        lines = {line.strip() for c in _code_cells(REPO / "notebooks" / f"{name}.ipynb")[2:]
                 for line in _source(c).splitlines()}
        seen.update(line for line in lines if line and not line.startswith(("import ", "from ")))
    assert not [line for line, n in seen.items() if n > 1]


def test_template_notebook_runs_in_quick_mode(tmp_path, monkeypatch):
    """The template executes as a user's copy would, through papermill, on the tiny default corpus."""
    import papermill as pm

    out = tmp_path / "out"
    monkeypatch.setenv("SERCORE_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    pm.execute_notebook(str(TEMPLATE), str(tmp_path / "experiment.ipynb"), cwd=str(tmp_path), progress_bar=False,
                        parameters=dict(size="tiny", quick=True, offline=True, output_dir=str(out)))
    assert (out / "figure.png").stat().st_size > 0 and (out / "runs.csv").is_file()
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["condition"]) == {"pairwise-cl", "supervised"} and _between(runs["test_uar"])
    assert set(runs["repetition"]) == {0, 1}  # the notebook's 2, kept by the quick budget
    record = json.loads((out / "params.json").read_text())
    assert record["params"]["fractions"] == [0.1, 1.0] and record["injected"] == ["size", "quick", "offline",
                                                                                   "output_dir"]
