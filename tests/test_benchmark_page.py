"""The benchmark page across corpora (``results/index.html``) from synthetic results folders laid out as the
notebooks write them (tables saved by the same functions the notebooks call), and one real multi-corpus run
of a small notebook through ``run_corpora``."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from page_checks import assert_resolves

import sercore.data
from sercore import runner
from sercore.analysis import save_table
from sercore.analysis.stats import compare_conditions
from sercore.clusters.analysis import SpeakerClusterAnalysis
from sercore.runner import results

VIEWS = ("egemaps", "mel")


def _notebook_folder(root: Path, dataset: str, stem: str, html: bool) -> Path:
    folder = root / dataset / stem
    folder.mkdir(parents=True, exist_ok=True)
    if html:
        (folder / f"{stem}.html").write_text(f"<html><body>{stem}</body></html>")
    return folder


def write_probes(root, dataset, uar: dict, *, html=True, n_folds=5, classes=None, protocol=None):
    """Notebook 00's probes; with ``classes``, the chance columns and a ``params.json`` naming the class set
    and the ``protocol`` (as the notebooks now write them; without: a table of an earlier version)."""
    folder = _notebook_folder(root, dataset, "00_dataset_overview", html)
    rows = [dict(view=v, fold=f, target="emotion", metric=m, value=u + (0.01 if f % 2 else -0.01) * (f < 4))
            for v, u in uar.items() for f in range(n_folds) for m in ("test_uar", "test_wa")]
    rows += [dict(view=v, fold=np.nan, target="speaker", metric="cv_accuracy", value=0.9) for v in uar]
    table = pd.DataFrame(rows)
    if classes:
        table = table.assign(n_classes=len(classes), chance_uar=1 / len(classes))
        (folder / "params.json").write_text(json.dumps({"classes": list(classes), "n_classes": len(classes),
                                                        "chance_uar": 1 / len(classes), "folds_scheme": protocol}))
    save_table(table, folder / "probes")
    speakers = [f"s{i}" for i in range(2 * n_folds)]
    splits = pd.DataFrame([dict(utt_id=f"{s}_{k}", speaker=s, fold=f, split="test", group=s)
                           for f in range(n_folds) for s in speakers for k in range(3)])
    splits.to_csv(folder / "splits.csv", index=False)


def write_clusters(root, dataset, strength: dict, *, html=True, seed=0):
    """Cluster summaries of ``SpeakerClusterAnalysis`` on embeddings whose emotion signal is ``strength``."""
    folder = _notebook_folder(root, dataset, "01_speaker_clusters", html)
    rng = np.random.default_rng(seed)
    speakers = np.repeat([f"s{i}" for i in range(4)], 18)
    emotions = np.tile(np.repeat(["ang", "hap", "sad"], 6), 4)
    centres = rng.normal(size=(3, 8))
    parts = []
    for view, s in strength.items():
        X = s * centres[pd.factorize(emotions, sort=True)[0]] + rng.normal(size=(len(emotions), 8))
        model = SpeakerClusterAnalysis(n_permutations=40, k_grid=(), seed=seed).fit(X, speakers, emotions)
        parts.append(model.summary_.assign(view=view))
    save_table(pd.concat(parts, ignore_index=True), folder / "clusters_summary")


def write_sparse(root, dataset, shift: dict, *, html=True):
    """``sparse_labels_stats`` as notebook 03 saves it: per view and fraction, each Pairwise-CL run of 5 folds ×
    3 repetitions against its supervised twin, shifted by ``shift`` ± 0.05 (alternately); a shift of ±0.1 puts
    every pair on one side, one of ±0.02 or less does not (signed ranks 8 × up, 7 × down: p ≈ 0.08)."""
    folder = _notebook_folder(root, dataset, "03_sparse_labels", html)
    rows = []
    for (view, fraction), d in shift.items():
        for fold in range(5):
            for rep in range(3):
                base, wobble = 0.5 + 0.01 * rep + 0.02 * fold, 0.05 * (-1) ** (3 * fold + rep)
                key = dict(view=view, fraction=fraction, fold=fold, repetition=rep)
                rows.append(dict(key, condition="supervised", test_uar=base))
                rows.append(dict(key, condition="pairwise-cl", test_uar=base + d + wobble))
    stats = compare_conditions(pd.DataFrame(rows), by=["view", "fraction"], a="pairwise-cl", b="supervised")
    save_table(stats, folder / "sparse_labels_stats")
    return stats


def write_summary(root, dataset, *, utterances, speakers, bad, failed=()):
    folder = root / dataset
    folder.mkdir(parents=True, exist_ok=True)
    summary = {"dataset": dataset, "steps": [{"notebook": "corpus", "status": "ok", "utterances": utterances,
                                              "speakers": speakers, "bad_files": bad}],
               "notebooks": [], "failed": list(failed)}
    (folder / "run_summary.json").write_text(json.dumps(summary))
    pd.DataFrame({"path": [f"/d/{i}.wav" for i in range(bad)], "step": "loader", "reason": "unreadable"}) \
        .to_csv(folder / "bad_files.csv", index=False)


EMODB_CLASSES = ("ang", "bor", "dis", "fea", "hap", "neu", "sad")
EMODB_PROTOCOL = ("5 folds, 5 speaker-disjoint groups; test speakers unseen in training; validation speakers are "
                  "unseen in training")


@pytest.fixture(scope="module")
def three_corpora(tmp_path_factory):
    """emodb: every table; ravdess: every table, notebook 03 without HTML; tess: only the probes."""
    root = tmp_path_factory.mktemp("results")
    write_summary(root, "emodb", utterances=535, speakers=10, bad=0)
    write_probes(root, "emodb", {"egemaps": 0.65, "mel": 0.55}, classes=EMODB_CLASSES, protocol=EMODB_PROTOCOL)
    write_clusters(root, "emodb", {"egemaps": 3.0, "mel": 0.0})
    emodb = write_sparse(root, "emodb", {("egemaps", 0.1): 0.1, ("egemaps", 0.25): 0.015,
                                         ("mel", 0.1): -0.1, ("mel", 0.25): 0.0})
    write_summary(root, "ravdess", utterances=1440, speakers=24, bad=2, failed=["02_temperature_grid"])
    write_probes(root, "ravdess", {"egemaps": 0.45, "mel": 0.48})
    write_clusters(root, "ravdess", {"egemaps": 3.0, "mel": 2.5}, seed=1)
    ravdess = write_sparse(root, "ravdess", {("egemaps", 0.1): 0.1, ("egemaps", 0.25): -0.02,
                                             ("mel", 0.1): -0.015, ("mel", 0.25): 0.02}, html=False)
    write_summary(root, "tess", utterances=2800, speakers=2, bad=0)
    write_probes(root, "tess", {"egemaps": 0.80, "mel": 0.70}, n_folds=2)
    (root / "not_a_corpus").mkdir()  # a folder without run_summary.json is no corpus
    page = runner.write_benchmark_page(root)
    return {"root": root, "page": page, "parsed": assert_resolves(page), "html": page.read_text(),
            "stats": pd.concat([emodb.assign(dataset="emodb"), ravdess.assign(dataset="ravdess")])}


def test_every_link_and_image_resolves(three_corpora):
    parsed = three_corpora["parsed"]
    assert len(parsed.images) == 4  # one heat map per comparison, the probes' critical-difference diagram
    assert "emodb/index.html" not in parsed.links  # no index page was written for these fixtures
    assert "ravdess/bad_files.csv" in parsed.links and "not_a_corpus" not in three_corpora["html"]


def test_each_number_links_to_its_notebook(three_corpora):
    anchors = {text.strip(): href for href, text in three_corpora["parsed"].anchors}
    assert anchors["0.650"] == "emodb/00_dataset_overview/00_dataset_overview.html"  # mean over folds
    assert anchors["0.800"] == "tess/00_dataset_overview/00_dataset_overview.html"
    stats = three_corpora["stats"]
    row = stats[(stats["dataset"] == "ravdess") & (stats["view"] == "egemaps") & (stats["fraction"] == 0.1)].iloc[0]
    text = f"{row['mean_a'] - row['mean_b']:+.3f} {row['mark']}"
    assert anchors[text] == "ravdess/03_sparse_labels/sparse_labels_stats.csv"  # no HTML: the CSV itself
    nmi = [href for href, _ in three_corpora["parsed"].anchors if "01_speaker_clusters" in href]
    assert len(nmi) == 4 and all(h.endswith("01_speaker_clusters.html") for h in nmi)


def test_findings_computed_from_the_numbers(three_corpora):
    findings = three_corpora["parsed"].findings
    assert len(findings) == 6  # the page, each of the three tables, then the two rank comparisons
    stats = three_corpora["stats"]
    gain = stats["mean_a"] - stats["mean_b"]
    ge, better = int((gain >= 0).sum()), int(((stats["mark"] == "*") & (gain > 0)).sum())
    worse = int(((stats["mark"] == "*") & (gain < 0)).sum())
    assert (ge, len(stats), better, worse) == (5, 8, 2, 1)  # what the fixture was built to show
    assert findings[3] == ("Pairwise-CL ≥ supervised in 5 of 8 settings, significantly better in 2, "
                           "significantly worse in 1.")
    assert findings[1] == ("Linear-probe emotion UAR 0.45–0.80 over 6 corpus × view setting(s); egemaps is best "
                           "on 2 of 3 corpora.")
    clusters = results.gather(three_corpora["root"])["clusters"]
    sig = int(clusters["significant"].sum())
    assert findings[2].startswith(f"Per-speaker emotion clusters significant (pooled permutation p < 0.05) in "
                                  f"{sig} of 4 corpus × view setting(s)")
    assert 1 <= sig <= 3  # the strong-signal views are significant, emodb's random mel view is not
    assert findings[0] == (f"3 corpora, 4,775 utterances; Pairwise-CL ≥ supervised in 5 of 8 settings "
                           f"(2 significantly better); significant per-speaker emotion clusters in {sig} of 4 "
                           f"settings; 1 failed step(s).")


def test_sparse_section_names_the_test(three_corpora):
    html = three_corpora["html"]
    assert ("Tests: emodb: Wilcoxon signed-rank (paired), n = 15, Holm over 4; ravdess: Wilcoxon signed-rank "
            "(paired), n = 15, Holm over 4.") in html
    assert "n/a (n too small) = no difference could have reached p &lt; 0.05" in html
    assert set(three_corpora["stats"]["mark"]) == {"*", "ns"}


def test_corpus_facts_and_missing_tables(three_corpora):
    facts = results.gather(three_corpora["root"])["facts"].set_index("dataset")
    assert facts.loc["tess", "folds"] == 2 and facts.loc["emodb", "folds"] == 5
    assert facts.loc["ravdess", "bad_files"] == 2 and list(facts.index) == ["emodb", "ravdess", "tess"]
    html = three_corpora["html"]
    assert "<td class='text'>tess</td><td class='na'>–</td>" in html  # tess has no per-speaker cluster results
    assert "<td class='text'>tess</td><td class='text'></td><td class='na'>–</td>" in html  # nor sparse-label ones
    assert html.count("<td class='text'>emodb</td><td class='text'>") == 2  # one row per view of notebook 03


def test_page_shows_class_set_chance_level_and_protocol(three_corpora):
    html = three_corpora["html"]
    facts = results.gather(three_corpora["root"])["facts"].set_index("dataset")
    assert facts.loc["emodb", "classes"] == ", ".join(EMODB_CLASSES) and facts.loc["emodb", "chance_uar"] == 1 / 7
    assert "<td class='text'>7 (ang, bor, dis, fea, hap, neu, sad)</td><td>0.143</td>" in html
    assert f"<td class='text'>{EMODB_PROTOCOL}</td>" in html
    assert pd.isna(facts.loc["tess", "chance_uar"])  # tables of an earlier version: no chance level, shown as –
    assert "<td class='text'>–</td><td>–</td><td class='text'>–</td>" in html
    above = 0.65 - 1 / 7  # emodb egemaps: mean over folds minus chance, beside the UAR and on the heat map
    assert f"0.650</a> <small>({above:+.3f})</small>" in html
    probes = results.gather(three_corpora["root"])["probes"]
    assert probes.loc[probes["dataset"] == "emodb", "chance_uar"].tolist() == [1 / 7, 1 / 7]
    assert "UAR above chance" in html
    from sercore.runner.index_page import index_findings  # the corpus's own index page says it too

    assert "best linear-probe UAR 0.65 (egemaps; chance 0.14)" in index_findings(three_corpora["root"] / "emodb",
                                                                                 {"notebooks": []})


def test_ranks_need_three_corpora_with_every_view(three_corpora):
    """The fixture's probes cover three corpora (views ranked); its sparse-label tables only two (not ranked)."""
    html = three_corpora["html"]
    # egemaps ranks 1, 2, 1 and mel 2, 1, 2 on emodb, ravdess, tess: average ranks 4/3 and 5/3,
    # χ² = 12·3/(2·3)·((4/3)² + (5/3)² − 2·3²/4) = 1/3 with 1 degree of freedom
    assert ("Views by linear-probe UAR: egemaps ranks best (average rank 1.33 of 2) over 3 block(s) from 3 corpora; "
            "Friedman χ²(1) = 0.33, p = 0.564: no difference in ranks") in html
    assert ("Pairwise-CL and supervised per view, by UAR over corpora × labelled fractions: not ranked (needs 3 "
            "corpora with every treatment; this page has 3 corpora)") in html


def test_friedman_and_critical_difference_diagram_over_three_corpora(tmp_path):
    from sercore.runner import ranks

    for name, base in (("a", 0.5), ("b", 0.6), ("c", 0.4)):
        write_summary(tmp_path, name, utterances=100, speakers=10, bad=0)
        write_probes(tmp_path, name, {"egemaps": base + 0.2, "mel": base + 0.1, "speaker": base},
                     classes=("ang", "hap", "neu", "sad"), protocol="5 folds")
        write_sparse(tmp_path, name, {("egemaps", 0.1): 0.1, ("egemaps", 0.25): 0.1, ("mel", 0.1): -0.1,
                                      ("mel", 0.25): -0.1})
    tables = results.gather(tmp_path)
    probes = ranks.probe_ranks(tables["probes"])
    assert probes.ranks.to_dict() == {"egemaps": 1.0, "mel": 2.0, "speaker": 3.0}  # the same order in each corpus
    assert (probes.n_blocks, round(probes.chi2, 12)) == (3, 6.0)  # 12·3/(3·4)·(1 + 4 + 9 − 3·4²/4)
    assert probes.p == pytest.approx(np.exp(-3))  # χ²(2) survival at 6
    assert probes.cd == pytest.approx(2.343 * np.sqrt(3 * 4 / (6 * 3)))
    sparse = ranks.sparse_ranks(tables["sparse"])
    assert sparse.n_blocks == 6 and sparse.ranks.index[0] == "Pairwise-CL egemaps"
    assert sparse.ranks.index[-1] == "Pairwise-CL mel" and set(sparse.pairs.columns) == set(sparse.ranks.index)
    page = runner.write_benchmark_page(tmp_path)
    parsed = assert_resolves(page)
    html = page.read_text()
    assert "Views by linear-probe UAR: egemaps ranks best (average rank 1.00 of 3)" in html
    assert "Friedman χ²(2) = 6.00, p = 0.0498: the ranks differ at α = 0.05" in html
    assert "Pairwise-CL and supervised per view, by UAR over corpora × labelled fractions: Pairwise-CL egemaps" in html
    assert len(parsed.images) == 4  # heat maps of probes and sparse labels (no cluster table here), 2 diagrams
    assert html.count('alt="critical-difference diagram') == 2


def test_ranks_with_ties_and_too_few_corpora():
    from sercore.runner import ranks

    even = pd.DataFrame([dict(dataset=d, view=v, uar=0.5) for d in "abc" for v in ("x", "y")])
    result = ranks.probe_ranks(even)
    assert result.chi2 == 0 and result.p == 1 and result.line("Views").startswith(
        "Views: x and y tie for best (average rank 1.50 of 2) over 3 block(s) from 3 corpora")
    assert ranks.probe_ranks(even[even["dataset"] != "c"]) is None  # two corpora: not ranked
    assert ranks.probe_ranks(even[~((even["dataset"] == "c") & (even["view"] == "y"))]) is None  # c lacks y


def test_findings_of_small_tables():
    sparse = pd.DataFrame({"view": ["a"] * 4, "fraction": [0.1] * 4, "gain": [0.02, -0.01, 0.0, 0.05],
                           "mark": ["*", "*", "ns", "ns"], "link": "x", "dataset": ["d1", "d1", "d2", "d2"]})
    assert results.sparse_findings(sparse) == ("Pairwise-CL ≥ supervised in 3 of 4 settings, significantly "
                                               "better in 1, significantly worse in 1.")
    assert results.sparse_findings(sparse.iloc[[3]]) == ("Pairwise-CL ≥ supervised in 1 of 1 settings, "
                                                         "significantly better in 0.")
    probes = pd.DataFrame({"dataset": ["d1", "d1", "d2", "d2"], "view": ["x", "y", "x", "y"],
                           "uar": [0.3, 0.4, 0.6, 0.5]})
    assert results.probe_findings(probes) == ("Linear-probe emotion UAR 0.30–0.60 over 4 corpus × view "
                                              "setting(s); x and y are each best on 1 of 2 corpora.")
    assert results.probe_findings(probes.assign(uar=[0.3, 0.4, 0.6, 0.7])).endswith("y is best on 2 of 2 corpora.")
    assert results.probe_findings(probes.iloc[:0]) == "No linear-probe results (notebook 00) yet."


def test_empty_results_root(tmp_path):
    page = runner.write_benchmark_page(tmp_path)
    parsed = assert_resolves(page)
    assert parsed.findings[0] == "No corpus has been run yet." and not parsed.images


OVERVIEW = """\
import pandas as pd
uar = {"default": 0.62, "emodb": 0.41}[dataset]
pd.DataFrame([dict(view=v, fold=0, target="emotion", metric="test_uar", value=uar + d)
              for v, d in (("egemaps", 0.0), ("mel", -0.1))]).to_csv("probes.csv", index=False)
pd.DataFrame([dict(utt_id=f"u{i}", speaker=f"s{i % 4}", fold=i % 2, split="test", group="g") for i in range(8)]
             ).to_csv("splits.csv", index=False)
"""


@pytest.mark.notebooks
def test_multi_corpus_run_writes_benchmark_page(tmp_path, monkeypatch):
    """Two corpora (the generated one and an EmoDB folder, both loaders faked) through ``run_corpora``: each gets
    its results folder and index page, and the benchmark page links both (two kernel executions)."""
    monkeypatch.setattr(sercore.data, "load_dataset", lambda name, root=None, **kw: [0] * {"default": 8}.get(name, 6))
    cell = nbformat.v4.new_code_cell("dataset = 'x'\noutput_dir = '.'\n")
    cell.metadata["tags"] = ["parameters"]
    (tmp_path / "nbs").mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell(OVERVIEW)]),
                   str(tmp_path / "nbs" / "00_overview.ipynb"))
    (tmp_path / "emodb").mkdir()
    summaries = runner.run_corpora(tmp_path / "nbs", tmp_path / "res",
                                   [runner.parse_corpus("default"), runner.parse_corpus(f"emodb={tmp_path / 'emodb'}")],
                                   size="tiny")
    assert [s["dataset"] for s in summaries] == ["default", "emodb"] and all(s["ok"] for s in summaries)
    for name in ("default", "emodb"):
        assert (tmp_path / "res" / name / "index.html").is_file()
        assert (tmp_path / "res" / name / "bad_files.csv").is_file()
    parsed = assert_resolves(tmp_path / "res" / "index.html")
    anchors = {text.strip(): href for href, text in parsed.anchors}
    assert anchors["0.620"] == "default/00_overview/00_overview.html" and anchors["0.410"] == \
        "emodb/00_overview/00_overview.html"
    assert anchors["default"] == "default/index.html" and anchors["emodb"] == "emodb/index.html"
    assert parsed.findings[0].startswith("2 corpora, 14 utterances")
    index = (tmp_path / "res" / "emodb" / "index.html").read_text()
    assert_resolves(tmp_path / "res" / "emodb" / "index.html", embedded=False)  # its files, and ../index.html
    assert "6 utterances, 4 speakers, 2 folds; 0 bad file(s) skipped; best linear-probe UAR 0.41 (egemaps)" in index
