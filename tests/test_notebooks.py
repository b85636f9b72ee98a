"""The notebooks: their shape (read statically) and their results when run_all.py executes them in quick mode on
the tiny default corpus; the template notebook executed on its own."""

import ast
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from golden import golden

from sercore.notebook.settings import Params

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
TEMPLATE = REPO / "templates" / "experiment.ipynb"
# the setup cell: one call, with what the notebook requires of its parameters where it needs anything
SETUP = re.compile(r'from sercore\.notebook\.experiment import setup\nexp, run = setup\(globals\(\)'
                   r'(, requires=\(("[a-z_]+", )*"[a-z_]+",?\))?\)')

# notebook → files it must write (figures as PNG + PDF, tables as CSV + Markdown)
EXPECTED = {
    "00_dataset_overview": ["overview.png", "counts.csv", "durations.csv", "folds.csv", "probes.csv",
                            "probes_per_speaker.csv", "probes_speaker_spread.csv"],
    "01_speaker_clusters": ["speaker_emotion_map.png", "clusters_per_speaker.csv", "clusters_summary.csv",
                            "clusters_global.csv"],
    "02_temperature_grid": ["temperature_table.png", "temperature_runs.csv", "frozen_vs_tuned.csv",
                            "temperature_learning_curves.png", "temperature_learning_curves_best.csv"],
    "03_sparse_labels": ["sparse_labels.png", "sparse_label_runs.csv", "sparse_labels_stats.csv",
                         "sparse_label_learning_curves.png", "sparse_label_learning_curves_best.csv",
                         "sparse_label_per_speaker.csv", "sparse_label_per_speaker_spread.csv"],
    "04_target_vs_ood": ["target_vs_ood.png", "target_vs_ood_runs.csv", "target_vs_ood_stats.csv"],
    "05_representation_maps": ["representation_maps.png", "maps.csv"],
    "06_alignment": ["alignment.png", "alignment_runs.csv"],
    "07_parameter_counts": ["parameter_counts.csv"],
    "08_cluster_contrastive": ["cluster_contrastive.png", "cluster_contrastive_runs.csv",
                               "cluster_contrastive_summary.csv", "cluster_contrastive_stats.csv"],
    "09_cross_corpus": ["cross_corpus.png", "cross_corpus_runs.csv", "cross_corpus_stats.csv",
                        "cross_corpus_means.csv"],
    "10_upstreams": ["upstreams.png", "upstream_runs.csv", "upstreams_stats.csv", "upstream_layer_weights.png",
                     "upstream_layer_weight_means.csv"],
}


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


EMODB_TEST_UAR = 0.37065972222222215  # mean test UAR of notebook 03 on the EmoDB folder (seeded)
THREE_CORPORA_NOTEBOOKS = ["00_dataset_overview", "01_speaker_clusters", "03_sparse_labels", "09_cross_corpus"]


def _run_all(*args: str, cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run_all.py"), "--size", "tiny", "--quick", "--offline", *args],
                          cwd=cwd, env=dict(os.environ), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """The two quick runs of run_all.py, into one results root, so the second reuses the first's work:

    1. ``--data default emodb=ROOT csv=CSV`` over notebooks 00, 01, 03 and 09: the tiny default corpus, an EmoDB
       folder (real file naming, synthetic speech) and a two-speaker CSV with the README's four columns;
    2. every notebook on the default corpus: 00, 01 and 03 are skipped as up to date (the same notebook,
       parameters and sercore source as in run 1); 09 runs again (its injected ``corpora`` differ), and the rest.

    Returns both processes, the root, and the benchmark page as run 1 left it."""
    from fixtures_corpora import emodb_from_corpus

    from sercore.data.synth import load_default_corpus

    base = tmp_path_factory.mktemp("quick")
    res = base / "results"
    tiny = load_default_corpus(size="tiny")
    emodb = emodb_from_corpus(base / "emodb", tiny)
    csv = _two_speaker_csv(base / "mine", tiny)
    three = _run_all("--data", "default", f"emodb={emodb}", f"csv={csv}", "--results", str(res),
                     "--notebooks", *THREE_CORPORA_NOTEBOOKS, cwd=base, timeout=2400)
    page = (res / "index.html").read_text() if (res / "index.html").is_file() else ""
    every = _run_all("--results", str(res), cwd=base, timeout=1800)
    return {"root": res, "three": three, "page_after_three": page, "every": every}


@pytest.fixture(scope="module")
def results(quick_runs):
    """The default corpus's results of run 2 (every notebook). A notebook that failed fails the tests that read
    its files; test_index_links_every_figure_and_notebook checks that every step succeeded."""
    proc = quick_runs["every"]
    summary = quick_runs["root"] / "default" / "run_summary.json"
    assert proc.returncode in (0, 1) and summary.is_file(), proc.stdout[-4000:] + proc.stderr[-4000:]
    return quick_runs["root"] / "default"


def test_every_notebook_is_covered():
    assert sorted(EXPECTED) == NOTEBOOKS


@pytest.mark.notebooks
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
    if "speaker" in params["params"]["views"]:  # notebook 10 compares speech models, without the speaker view
        assert params["models"]["speaker"]["model"] in ("ecapa", "resemblyzer")
    assert (folder / "splits.csv").is_file()


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_rendered_notebook_is_readable(results, name):
    """No progress-bar line or tqdm warning in the rendering; the findings line opens it, before any code."""
    from sercore.notebook.progress import PROGRESS_LINE
    from sercore.runner.findings import FINDINGS_ID, PREFIX

    html = (results / name / f"{name}.html").read_text()
    assert not re.search(PROGRESS_LINE, html), f"{name}: a progress-bar line in the rendered notebook"
    assert "TqdmWarning" not in html and "IProgress not found" not in html
    assert PREFIX in html and html.index(PREFIX) < html.index("jp-Cell jp-CodeCell"), f"{name}: findings not on top"
    first = json.loads((results / name / f"{name}.ipynb").read_text())["cells"][0]
    assert first["id"] == FINDINGS_ID and first["source"][0].startswith(f"**{PREFIX}")
    record = json.loads((results / name / "run.json").read_text())
    assert record["findings"].startswith(PREFIX) and "findings_error" not in record


# every results table that reports a UAR: notebook → tables (written by exp.table or by a figure function)
UAR_TABLES = {"00_dataset_overview": ["probes", "probes_per_speaker", "probes_speaker_spread"],
              "02_temperature_grid": ["temperature_runs", "frozen_vs_tuned", "temperature_table"],
              "03_sparse_labels": ["sparse_label_runs", "sparse_labels_stats", "sparse_label_per_speaker",
                                   "sparse_label_per_speaker_spread"],
              "04_target_vs_ood": ["target_vs_ood_runs", "target_vs_ood_stats"],
              "08_cluster_contrastive": ["cluster_contrastive_runs", "cluster_contrastive_summary"],
              "09_cross_corpus": ["cross_corpus_runs", "cross_corpus_stats"]}


@pytest.mark.notebooks
@pytest.mark.parametrize("name", sorted(UAR_TABLES))
def test_uar_tables_state_classes_chance_and_protocol(results, name):
    """The tiny default corpus's task has 4 classes: chance UAR 0.25, in every UAR table and its caption."""
    for table in UAR_TABLES[name]:
        df = pd.read_csv(results / name / f"{table}.csv")
        assert {"n_classes", "chance_uar"} <= set(df.columns), f"{name}/{table}"
        emotion = df[df["target"] == "emotion"] if "target" in df.columns else df
        assert set(emotion["n_classes"]) == {4} and set(emotion["chance_uar"]) == {0.25}, f"{name}/{table}"
        caption = (results / name / f"{table}.md").read_text().splitlines()[0]
        assert "classes: 4 (ang, hap, neu, sad); chance UAR 0.25" in caption, caption
        assert "protocol: 5 folds, leave-one-session-out; test speakers unseen in training" in caption, caption
    params = json.loads((results / name / "params.json").read_text())
    assert (params["classes"], params["n_classes"], params["chance_uar"]) == (["ang", "hap", "neu", "sad"], 4, 0.25)


# The seeded values of the quick run on the tiny default corpus (fold 0, fixed seeds, one thread per worker, fp32
# on a CPU without fast bf16: precision auto would pick bf16 on one that has it, and other numbers): per results
# table its number of rows and the mean of each metric column.
RUN_MEANS = {
    ("02_temperature_grid", "temperature_runs"): (9, {"val_uar": 0.5231481481481483, "val_wa": 0.5231481481481481,
                                                      "test_uar": 0.4583333333333333, "test_wa": 0.4583333333333334}),
    ("03_sparse_labels", "sparse_label_runs"): (48, {"val_uar": 0.4279513888888889, "val_wa": 0.4279513888888889,
                                                     "test_uar": 0.4036458333333333, "test_wa": 0.4036458333333333}),
    ("04_target_vs_ood", "target_vs_ood_runs"): (48, {"val_uar": 0.44184027777777785, "val_wa": 0.44184027777777785,
                                                      "test_uar": 0.4192708333333333, "test_wa": 0.4192708333333333}),
    ("08_cluster_contrastive", "cluster_contrastive_runs"): (24, {
        "val_uar": 0.5381944444444445, "val_wa": 0.5381944444444445, "test_uar": 0.49826388888888884,
        "test_wa": 0.49826388888888884}),
}
# notebook 03's quick run tests 1 fold × 2 repetitions = 2 pairs per view × fraction (paired Wilcoxon): no p below
# 0.5, so its floor and its Holm-adjusted p are 1 in each of the 12 cells; "p" itself is recomputed from the runs
SPARSE_P = {"p": None, "p_floor": [1.0] * 12, "p_holm": [1.0] * 12}
CLUSTER_MEANS = (180, {"purity": 0.36620370370370375, "nmi": 0.3951981525598234, "p_purity": 0.5145502645502645,
                       "p_nmi": 0.382010582010582, "p_ari": 0.3947089947089947})  # notebook 01, per speaker
ALIGNMENT_MEANS = (12, {"pwcca": 0.7294492504751805, "cka": 0.12443567678649697})  # notebook 06
PROBE_MEAN = (9, 0.5944444444444444)  # notebook 00's linear probes


def _paired_p(runs: pd.DataFrame, stats: pd.DataFrame) -> list[float]:
    """scipy's Wilcoxon p of each stats row, from the runs: Pairwise-CL minus its supervised twin per fold ×
    repetition (zero differences left out; none left: 1)."""
    from scipy.stats import wilcoxon

    out = []
    for view, fraction in zip(stats["view"], stats["fraction"]):
        cell = runs[(runs["view"] == view) & (runs["fraction"] == fraction)]
        pairs = cell.pivot_table(index=["fold", "repetition"], columns="condition", values="test_uar")
        d = (pairs["pairwise-cl"] - pairs["supervised"]).to_numpy()
        out.append(float(wilcoxon(d[d != 0]).pvalue) if (d != 0).any() else 1.0)
    return out


def _means(table: pd.DataFrame, columns) -> tuple[int, dict]:
    return len(table), {c: float(table[c].mean()) for c in columns}


@pytest.mark.notebooks
def test_per_speaker_tables_cover_the_test_speakers(results):
    """Fold 0 of the tiny default corpus tests session 1's two speakers: notebook 00's probes and notebook 03's
    runs have a UAR for each, and the spread tables summarise them."""
    probes = pd.read_csv(results / "00_dataset_overview" / "probes_per_speaker.csv")
    assert sorted(probes["speaker"].unique()) == ["S1F", "S1M"] and probes["uar"].between(0, 1).all()
    runs = pd.read_csv(results / "03_sparse_labels" / "sparse_label_runs.csv")
    per = pd.read_csv(results / "03_sparse_labels" / "sparse_label_per_speaker.csv")
    assert len(per) == 2 * len(runs) and set(per["speaker"]) == {"S1F", "S1M"}
    spread = pd.read_csv(results / "03_sparse_labels" / "sparse_label_per_speaker_spread.csv")
    assert len(spread) == runs.groupby(["view", "fraction", "condition"]).ngroups
    assert (spread["min"] <= spread["mean"]).all() and (spread["mean"] <= spread["max"]).all()
    assert set(spread["speakers"]) == {2}


@pytest.mark.notebooks
def test_metric_values_are_sane(results):
    for (name, table), (rows, means) in RUN_MEANS.items():
        runs = pd.read_csv(results / name / f"{table}.csv")
        assert runs[list(means)].notna().all().all(), f"{name}/{table}: a metric is missing"
        assert _means(runs, means) == (rows, golden(means)), f"{name}/{table}"
    sparse = pd.read_csv(results / "03_sparse_labels" / "sparse_label_runs.csv")
    assert set(sparse["condition"]) == {"pairwise-cl", "supervised"}
    stats = pd.read_csv(results / "03_sparse_labels" / "sparse_labels_stats.csv")
    assert [c for c in stats.columns if c.startswith("p")] == list(SPARSE_P)
    for column, values in SPARSE_P.items():
        if values is not None:
            assert stats[column].tolist() == pytest.approx(values, abs=1e-6), column
    assert stats["p"].tolist() == pytest.approx(_paired_p(sparse, stats), abs=1e-9)
    assert (stats["test"] == "wilcoxon").all() and (stats["n"] == 2).all() and (stats["m"] == 12).all()
    assert (stats["mark"] == "n/a (n too small)").all()  # never "ns" where nothing could be significant
    clusters = pd.read_csv(results / "01_speaker_clusters" / "clusters_per_speaker.csv")
    assert _means(clusters, CLUSTER_MEANS[1]) == (CLUSTER_MEANS[0], golden(CLUSTER_MEANS[1]))
    alignment = pd.read_csv(results / "06_alignment" / "alignment_runs.csv")
    assert _means(alignment, ALIGNMENT_MEANS[1]) == (ALIGNMENT_MEANS[0], golden(ALIGNMENT_MEANS[1]))
    assert {"pre-trained", "supervised", "random", "random vectors"} <= set(alignment["condition"])
    counts = pd.read_csv(results / "07_parameter_counts" / "parameter_counts.csv")
    fine = counts[counts["stage"] == "fine-tuning"]
    tuned = fine[fine["frozen"].astype(str) == "False"].set_index("view")["trainable_params"].to_dict()
    assert tuned == {"egemaps": 55_680 + 516, "mel": 59_184 + 516, "speaker": 98_688 + 516}  # offline: d-vector
    assert fine.loc[fine["frozen"].astype(str) == "True", "trainable_params"].tolist() == [516, 516, 516]
    assert counts.loc[counts["stage"] == "pre-training", "trainable_params"].tolist() == [412_848]
    probes = pd.read_csv(results / "00_dataset_overview" / "probes.csv")
    assert (len(probes), probes["value"].mean()) == (PROBE_MEAN[0], golden(PROBE_MEAN[1]))
    conditions = set(pd.read_csv(results / "08_cluster_contrastive" / "cluster_contrastive_runs.csv")["condition"])
    assert {"cluster_contrastive", "cluster_multitask", "cluster_adversarial", "supervised",
            "speaker_probe", "pairwise-cl"} <= conditions


@pytest.mark.notebooks
def test_quick_run_names_its_tests(results):
    """Every ``*_stats`` table of the quick run has the test, n and attainable p floor; with 1 fold × 2 repetitions
    none could be significant, which the tables, captions, notebook output and benchmark page say."""
    stats = sorted(results.glob("*/*_stats.csv"))
    assert {p.parent.name for p in stats} == {"03_sparse_labels", "04_target_vs_ood", "08_cluster_contrastive",
                                              "09_cross_corpus", "10_upstreams"}
    for path in stats:
        table = pd.read_csv(path)
        assert {"test", "n", "m", "p_floor"} <= set(table.columns), path
        assert set(table["mark"]) == {"n/a (n too small)"} and (table["p_floor"] >= 0.05).all(), path
        caption = path.with_suffix(".md").read_text().splitlines()[0]
        assert "test: Wilcoxon signed-rank (paired) on fold × repetition pairs, n = 2" in caption, path
        need = 10 if path.parent.name == "10_upstreams" else 9  # Holm over 16 tests there (4 views × 4 fractions)
        assert f"With 2 repetitions (1 fold) no difference can reach p < 0.05; use ≥ {need} " in caption, path
    output = (results / "03_sparse_labels" / "03_sparse_labels.ipynb").read_text()
    assert "With 2 repetitions (1 fold) no difference can reach p < 0.05" in output  # printed under the figure's cell
    page = (results.parent / "index.html").read_text()
    assert "default: Wilcoxon signed-rank (paired), n = 2, Holm over 12" in page


@pytest.mark.notebooks
def test_index_links_every_figure_and_notebook(results):
    index = (results / "index.html").read_text()
    for name in NOTEBOOKS:
        assert f"{name}/{name}.html" in index
    for png in results.glob("*/*.png"):
        assert f"{png.parent.name}/{png.name}" in index
    summary = json.loads((results / "run_summary.json").read_text())
    errors = {r["notebook"]: (r.get("error") or "")[-2000:] for r in summary["notebooks"] if r["status"] == "failed"}
    assert summary["ok"] and not summary["failed"], errors


@pytest.mark.notebooks
def test_run_all_on_three_corpora_official_layout_and_a_two_speaker_csv(quick_runs):
    """`run_all.py --data` over the tiny default corpus, an EmoDB folder (real file naming, synthetic speech)
    and a two-speaker CSV with the README's four columns: notebooks 00, 01, 03 and 09, then the page (run 1 of
    ``quick_runs``); the all-notebook run 2 reused the default corpus's 00, 01 and 03."""
    proc = quick_runs["three"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    res = quick_runs["root"]
    out = res / "emodb"
    counts = pd.read_csv(out / "00_dataset_overview" / "counts.csv", dtype={"speaker": str}).set_index("speaker")
    assert len(counts) == 11 and counts.loc["total", "total"] == 210  # 10 EmoDB speakers × its 7 emotions × 3
    assert "sur" not in counts.columns and counts.index[0] == "03"
    splits = pd.read_csv(out / "03_sparse_labels" / "splits.csv", dtype={"speaker": str})
    for _, fold in splits.groupby("fold"):  # speaker-disjoint folds
        test = set(fold.loc[fold["split"] == "test", "speaker"])
        assert test and not test & set(fold.loc[fold["split"] != "test", "speaker"])
    runs = pd.read_csv(out / "03_sparse_labels" / "sparse_label_runs.csv")
    assert (len(runs), runs["test_uar"].mean()) == (48, golden(EMODB_TEST_UAR))  # the seeded value
    assert json.loads((out / "03_sparse_labels" / "params.json").read_text())["params"]["dataset"] == "emodb"
    mine = json.loads((res / "csv" / "03_sparse_labels" / "params.json").read_text())
    assert mine["speaker_dependent_val"] is True and "leave-one-speaker-out" in mine["folds_scheme"]
    cross = pd.read_csv(out / "09_cross_corpus" / "cross_corpus_runs.csv")
    assert {"target", "none", "default", "csv", "all-but-target"} <= set(cross["pretrain_data"])
    page = quick_runs["page_after_three"]
    assert all(name in page for name in ("default", "emodb", "csv"))
    # run 2 (every notebook on the default corpus) found run 1's 00, 01 and 03 up to date: it did not run them again
    status = {r["notebook"]: r["status"] for r in json.loads((res / "default" / "run_summary.json").read_text())[
        "notebooks"]}
    assert [status.get(name) for name in THREE_CORPORA_NOTEBOOKS[:3]] == ["skipped"] * 3, status


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
    assert SETUP.fullmatch(_source(cells[1])), _source(cells[1])
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


@pytest.mark.parametrize("path", [REPO / "notebooks" / f"{n}.ipynb" for n in NOTEBOOKS] + [TEMPLATE],
                         ids=lambda p: p.stem)
def test_notebook_restates_no_default_with_another_value(path):
    """A parameters cell states ``Params``' defaults only as they are there; only ``EXPERIMENT_CHOICES`` (views,
    their options, repetitions) may differ, and they are the notebook's own choice."""
    from sercore.notebook.settings import EXPERIMENT_CHOICES

    cell = _source(_code_cells(path)[0])
    stated = {p.target.id: ast.literal_eval(p.value) for p in ast.parse(cell).body}
    other = {k: v for k, v in stated.items() if k in Params.names() and k not in EXPERIMENT_CHOICES
             and getattr(Params(**{k: v}), k) != getattr(Params(), k)}
    assert not other, f"{path.stem} restates Params defaults with other values: {other}"
    restated = [k for k in stated if k in Params.names() and k not in EXPERIMENT_CHOICES + ("dataset", "data_root")
                and k not in "\n".join(_source(c) for c in _code_cells(path)[2:])]
    assert not restated, f"{path.stem} restates defaults it neither changes nor uses: {restated}"


def test_no_code_line_repeats_across_notebooks():
    """Beyond the parameters cell and the setup call, the notebooks share no line of code (imports aside)."""
    seen = Counter()
    for name in NOTEBOOKS:
        lines = {line.strip() for c in _code_cells(REPO / "notebooks" / f"{name}.ipynb")[2:]
                 for line in _source(c).splitlines()}
        seen.update(line for line in lines if line and not line.startswith(("import ", "from ")))
    assert not [line for line, n in seen.items() if n > 1]


@pytest.mark.notebooks
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
    assert set(runs["condition"]) == {"pairwise-cl", "supervised"}
    assert (len(runs), runs["test_uar"].mean()) == (16, golden(0.44010416666666663))  # seeded
    assert set(runs["repetition"]) == {0, 1}  # the notebook's 2, kept by the quick budget
    record = json.loads((out / "params.json").read_text())
    assert record["params"]["fractions"] == [0.1, 1.0] and record["injected"] == ["size", "quick", "offline",
                                                                                   "output_dir"]


# ---- what the grid notebooks' defaults can show ----------------------------------------------------------------

def _defaults(name: str) -> dict:
    """The notebook's parameters cell, read with nbformat: ``{name: default}``."""
    import nbformat

    cell = next(c for c in nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4).cells
                if "parameters" in c.metadata.get("tags", []))
    return {p.target.id: ast.literal_eval(p.value) for p in ast.parse(cell.source).body}


def _family(name: str, p: dict) -> int:
    """Tests in one Holm family of the notebook's figure: views × fractions (03, 04; 09 per source against the
    target or none), paper B's conditions against supervised × fractions (08)."""
    if name != "08_cluster_contrastive":
        return len(p["views"]) * len(p["fractions"])
    from sercore.clusters.pretrain import VARIANTS

    others = len(VARIANTS) + 1 + ("wav2vec2" in p["views"]) + (len(p["views"]) >= 2)  # + speaker probe, Pairwise-CL
    return others * len(p["fractions"])


def _floor(test: str, folds: int, repetitions: int, m: int) -> float:
    from sercore.analysis.stats import attainable_p, holm_floor

    n = folds * repetitions if test == "wilcoxon" else repetitions  # pairs of every fold, or repetition means
    return float(holm_floor([attainable_p(test, n)] * m)[0])


@pytest.mark.parametrize("name", ["03_sparse_labels", "04_target_vs_ood", "08_cluster_contrastive", "09_cross_corpus",
                                  "10_upstreams"])
def test_default_settings_can_reach_significance(name):
    """At the default budget the notebook's default test can reach p < 0.05 after Holm, on the default corpus
    (5 speaker folds) and on any corpus with 3 folds (the fewest with unseen validation speakers); the paper
    budget's U test on 10 repetition means too; the quick budget (1 fold × 2 repetitions) cannot, and says so."""
    from sercore.data.splits import DEFAULT_FOLDS
    from sercore.notebook.settings import run_settings

    p = _defaults(name)
    m = _family(name, p)
    run = run_settings(repetitions=p["repetitions"], workers=1)
    assert run.test == "wilcoxon"
    for folds in (3, DEFAULT_FOLDS):
        assert _floor(run.test, folds, run.repetitions, m) < 0.05, (name, folds, run.repetitions, m)
    paper = run_settings(budget="paper", repetitions=p["repetitions"], workers=1)
    assert (paper.test, paper.repetitions) == ("mannwhitney", 10)
    assert _floor(paper.test, DEFAULT_FOLDS, paper.repetitions, m) < 0.05
    quick = run_settings(budget="quick", repetitions=p["repetitions"], workers=1)
    assert _floor(quick.test, 1, quick.repetitions, m) >= 0.05  # marks "n/a (n too small)", never "ns"
    # paper A's U test on the default repetition means could not (why the default test is the paired one)
    assert _floor("mannwhitney", DEFAULT_FOLDS, run.repetitions, m) >= 0.05
