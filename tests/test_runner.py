"""run_all.py / sercore.runner on tiny notebooks generated in tmp folders (kernel start-up is the cost:
six executions in all). A toy corpus is registered for the module: its loader skips (or, under
``on_error="raise"``, raises on) files named ``bad*``, and raises a ``ManifestError`` on a folder without WAVs."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from page_checks import assert_resolves

import sercore.data
from sercore import runner
from sercore.data import registry
from sercore.data.manifest import ManifestError

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("run_all", ROOT / "run_all.py")
run_all = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(run_all)

PARAMS = "dataset = 'x'\nseed = 99\nquick = False\noutput_dir = '.'\noffline = False\n"
GOOD = """\
import os, json
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sercore.core.provenance import write_params
plt.plot([0, 1], [1, 0]); plt.savefig("curve.png")
os.makedirs("tables", exist_ok=True)
open("tables/scores.csv", "w").write("fold,uar\\n0,0.5\\n")
write_params(".", {"seed": seed})
print("SEEN", dataset, seed, quick, lr, views, os.getcwd() == output_dir)
"""
FAIL = "x = 1\nraise RuntimeError('deliberate failure')\n"
STABLE = "same-sercore-source"
NOTE_BAD = ("json.dump([{'path': '/data/c.wav', 'reason': 'too short (0.1 s)', 'step': 'features'}], "
            "open('bad_files.json', 'w'))\n")


def load_toy(root, *, on_error: str = "skip") -> pd.DataFrame:
    """The toy corpus: one utterance per ``*.wav`` of ``root``; ``bad*`` files are bad."""
    bad = registry.BadFiles("toy", on_error)
    rows = []
    for path in sorted(Path(root).glob("*.wav")):
        if path.name.startswith("bad"):
            bad.add(path, "file name is not like <speaker>_<n>.wav")
        else:
            rows.append({"utt_id": path.stem, "speaker": path.stem.split("_")[0]})
    if not rows:
        raise ManifestError(f"toy: no WAV files in {root}; expected <root>/<speaker>_<n>.wav")
    return bad.attach(pd.DataFrame(rows))


@pytest.fixture(scope="module", autouse=True)
def toy_dataset():
    """``toy`` and ``toyb`` registered for this module only."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("toy", "toyb"):
            mp.setitem(registry._REGISTRY, name, registry.DatasetInfo(name, load_toy, "<root>/<speaker>_<n>.wav"))
            mp.setitem(registry._ALIASES, name, name)
        yield


def toy_root(folder: Path, bad: int = 0) -> Path:
    """A toy corpus folder: two speakers, two files each, and ``bad`` misnamed files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ["s1_1", "s1_2", "s2_1", "s2_2"] + [f"bad_{i}" for i in range(1, bad + 1)]:
        (folder / f"{name}.wav").write_bytes(b"")
    return folder


def make_notebook(path: Path, code: str, params: str = PARAMS) -> Path:
    """Write a notebook with a tagged parameters cell followed by ``code``."""
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# test"), cell,
                                         nbformat.v4.new_code_cell(code)])
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def injected_cell(executed: Path) -> str:
    nb = nbformat.read(str(executed), as_version=4)
    cells = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    return cells[0].source


def stdout_of(executed: Path) -> str:
    nb = nbformat.read(str(executed), as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.output_type == "stream")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A failing notebook (sorted first) and a good one, run once through the CLI."""
    base = tmp_path_factory.mktemp("runner")
    make_notebook(base / "nbs" / "a_fail.ipynb", FAIL)
    make_notebook(base / "nbs" / "b_good.ipynb", GOOD + NOTE_BAD)
    make_notebook(base / "nbs" / "_template.ipynb", FAIL)  # a template: never run unless named
    argv = ["--notebooks-dir", str(base / "nbs"), "--results", str(base / "res"), "--dataset", "toy",
            "--data-root", str(toy_root(base / "corpus", bad=1)), "--seed", "3", "--quick", "--views", "mel",
            "egemaps", "--param", "lr=0.5", "--n-folds", "3"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner.plan, "source_hash", lambda package_dir=None: STABLE)
        code = run_all.main(argv)
    out = base / "res" / "toy"
    return {"base": base, "argv": argv, "code": code, "out": out,
            "summary": json.loads((out / "run_summary.json").read_text()),
            "index_html": (out / "index.html").read_text(), "index_md": (out / "index.md").read_text(),
            "good_injected": injected_cell(out / "b_good" / "b_good.ipynb"),
            "good_stdout": stdout_of(out / "b_good" / "b_good.ipynb"),
            "good_record": runner.read_record(out / "b_good")}


@pytest.mark.notebooks
def test_parameters_injected_and_visible(first_run):
    src = first_run["good_injected"]
    assert "seed = 3" in src and "quick = True" in src and "dataset = \"toy\"" in src
    assert "views = [\"mel\", \"egemaps\"]" in src and "lr = 0.5" in src and "n_folds = 3" in src
    assert "epochs" not in src and "folds = " not in src.replace("n_folds", "")  # optional ones only when given
    assert "strict" not in src
    out_dir = first_run["out"] / "b_good"
    # the notebook saw the injected values and ran with its results folder as working directory
    assert "SEEN toy 3 True 0.5 ['mel', 'egemaps'] True" in first_run["good_stdout"]
    assert first_run["good_record"]["params"]["output_dir"] == str(out_dir)


@pytest.mark.notebooks
def test_outputs_html_and_index(first_run):
    out = first_run["out"]
    good = out / "b_good"
    for name in ("b_good.ipynb", "b_good.html", "curve.png", "tables/scores.csv", "params.json", "run.json"):
        assert (good / name).is_file(), name
    assert "SEEN toy 3" in (good / "b_good.html").read_text()
    assert (good / "curve.png").read_bytes()[:4] == b"\x89PNG"
    html, md = first_run["index_html"], first_run["index_md"]
    assert 'href="b_good/b_good.html"' in html and 'img src="b_good/curve.png"' in html
    assert 'href="b_good/tables/scores.csv"' in html and 'href="b_good/params.json"' in html
    assert "(b_good/curve.png)" in md and "(b_good/tables/scores.csv)" in md and "[b_good](b_good/b_good.html)" in md
    assert first_run["good_record"]["status"] == "ok" and first_run["good_record"]["seconds"] > 0
    assert not (out / "_template").exists()  # templates are not run


@pytest.mark.notebooks
def test_bad_files_csv_linked_and_findings(first_run):
    out, html = first_run["out"], first_run["index_html"]
    rows = pd.read_csv(out / "bad_files.csv")
    assert rows.to_dict("records") == [
        {"path": "/data/c.wav", "step": "features", "reason": "too short (0.1 s)"},  # written by the notebook
        {"path": str(first_run["base"] / "corpus" / "bad_1.wav"), "step": "loader",
         "reason": "file name is not like <speaker>_<n>.wav"}]
    assert 'href="bad_files.csv"' in html and "[bad_files.csv](bad_files.csv)" in first_run["index_md"]
    assert_resolves(out / "index.html", embedded=False)  # every figure, table, the CSV and ../index.html
    assert_resolves(out.parent / "index.html")  # the benchmark page written after the run
    assert first_run["summary"]["bad_files"] == 2 and first_run["summary"]["steps"][0]["utterances"] == 4
    # the findings line is computed from the run: 1 of 2 ok, the corpus size, the bad files
    assert ("<p class='findings'>1 of 2 notebook(s) ok, failed: a_fail; 4 utterances, 2 speakers; "
            "2 bad file(s) skipped.</p>") in html


@pytest.mark.notebooks
def test_failing_notebook_kept_others_run(first_run):
    assert first_run["code"] == 1
    summary = first_run["summary"]
    assert summary["failed"] == ["a_fail"] and not summary["ok"]  # the template _template did not run
    status = {r["notebook"]: r["status"] for r in summary["notebooks"]}
    assert status == {"a_fail": "failed", "b_good": "ok"}
    record = summary["notebooks"][0]
    assert "RuntimeError: deliberate failure" in record["error"]
    executed = first_run["out"] / "a_fail" / "a_fail.ipynb"
    nb = nbformat.read(str(executed), as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors and errors[0].ename == "RuntimeError" and any("deliberate" in line for line in errors[0].traceback)
    assert "deliberate failure" in (first_run["out"] / "a_fail" / "a_fail.html").read_text()
    assert 'href="a_fail/a_fail.html"' in first_run["index_html"] and "deliberate failure" in first_run["index_html"]


@pytest.mark.notebooks
def test_skip_then_rerun_on_change_or_force(first_run, monkeypatch):
    """Runs after the read-only checks above; executes b_good twice."""
    monkeypatch.setattr(runner.plan, "source_hash", lambda package_dir=None: STABLE)
    base, out = first_run["base"], first_run["out"] / "b_good"
    kwargs = dict(dataset="toy", data_root=base / "corpus", seed=3, quick=True, size="small",  # as the CLI's --quick
                  names=["b_good"], extra_params={"views": ["mel", "egemaps"], "lr": 0.5, "n_folds": 3})
    started = runner.read_record(out)["started"]
    again = runner.run(base / "nbs", base / "res", **kwargs)
    assert again["notebooks"][0]["status"] == "skipped" and runner.read_record(out)["started"] == started
    assert 'href="b_good/b_good.html"' in (first_run["out"] / "index.html").read_text()  # index still links it
    changed = runner.run(base / "nbs", base / "res", **dict(kwargs, seed=4))
    assert changed["notebooks"][0]["status"] == "ok" and "seed = 4" in injected_cell(out / "b_good.ipynb")
    started = runner.read_record(out)["started"]
    forced = runner.run(base / "nbs", base / "res", **dict(kwargs, seed=4), force=True)
    assert forced["notebooks"][0]["status"] == "ok" and forced["notebooks"][0]["fingerprint"] == \
        changed["notebooks"][0]["fingerprint"]
    assert runner.read_record(out)["started"] >= started and (out / "curve.png").is_file()


def test_fingerprint_parts(tmp_path):
    nb = make_notebook(tmp_path / "n.ipynb", "print(1)")
    params = {"seed": 0}
    fp = runner.fingerprint(nb, params, "h")
    assert fp == runner.fingerprint(nb, dict(params), "h")
    assert fp != runner.fingerprint(nb, {"seed": 1}, "h") and fp != runner.fingerprint(nb, params, "h2")
    make_notebook(nb, "print(2)")
    assert fp != runner.fingerprint(nb, params, "h")
    pkg = tmp_path / "pkg"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    h = runner.source_hash(pkg)
    (pkg / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    assert runner.source_hash(pkg) == h
    (pkg / "a.py").write_text("x = 2\n")
    assert runner.source_hash(pkg) != h
    folds = tmp_path / "folds" / "fold_1"  # an edited splits file or fold folder reruns the notebooks
    folds.mkdir(parents=True)
    (folds / "c_test_fold_1.jsonl").write_text('{"key": "a"}\n')
    with_splits = {"seed": 0, "splits": str(tmp_path / "folds")}
    before = runner.fingerprint(nb, with_splits, "h")
    (folds / "c_test_fold_1.jsonl").write_text('{"key": "b"}\n')
    assert runner.fingerprint(nb, with_splits, "h") != before


@pytest.mark.notebooks
def test_failed_run_is_not_up_to_date(first_run):
    out = first_run["out"] / "a_fail"
    record = runner.read_record(out)
    assert not runner.is_up_to_date(out, "a_fail", record["fingerprint"])


@pytest.mark.notebooks
def test_workers_two_parallel_with_corpus_step(tmp_path, monkeypatch):
    """Two notebooks wait for each other's marker: they only finish when run at the same time."""
    calls = []
    monkeypatch.setattr(sercore.data, "load_dataset", lambda name, root=None, **kw: calls.append((name, kw)) or
                        [0] * 7, raising=False)
    barrier = (tmp_path / "barrier").as_posix()
    wait = f"""\
import os, time
assert os.environ["SERCORE_OFFLINE"] == "1" and os.environ["HF_HUB_OFFLINE"] == "1"
open(os.path.join({barrier!r}, NAME), "w").close()
deadline = time.time() + 60
while len(os.listdir({barrier!r})) < 2 and time.time() < deadline:
    time.sleep(0.05)
assert len(os.listdir({barrier!r})) == 2, "the other notebook did not run at the same time"
"""
    (tmp_path / "barrier").mkdir()
    offline_before = os.environ.get("SERCORE_OFFLINE")
    for name in ("c", "d"):
        make_notebook(tmp_path / "nbs" / f"{name}.ipynb", f"NAME = {name!r}\n" + wait)
    code = run_all.main(["--notebooks-dir", str(tmp_path / "nbs"), "--results", str(tmp_path / "res"),
                         "--size", "tiny", "--offline", "--workers", "2"])
    summary = json.loads((tmp_path / "res" / "default" / "run_summary.json").read_text())
    assert code == 0, summary
    assert calls == [("default", {"size": "tiny", "on_error": "skip"})]
    assert summary["steps"][0]["utterances"] == 7
    assert [r["status"] for r in summary["notebooks"]] == ["ok", "ok"]
    assert os.environ.get("SERCORE_OFFLINE") == offline_before  # the environment is restored after the run


def test_corpus_failure_blocks_notebooks(tmp_path, monkeypatch):
    def broken(name, root=None, **kw):
        raise OSError("disk full while writing the corpus")

    monkeypatch.setattr(sercore.data, "load_dataset", broken, raising=False)
    make_notebook(tmp_path / "nbs" / "e.ipynb", "print(1)")
    code = run_all.main(["--notebooks-dir", str(tmp_path / "nbs"), "--results", str(tmp_path / "res")])
    summary = json.loads((tmp_path / "res" / "default" / "run_summary.json").read_text())
    assert code == 1 and summary["failed"] == ["corpus", "e"]
    assert "disk full" in summary["steps"][0]["error"] and summary["notebooks"][0]["status"] == "blocked"
    index = (tmp_path / "res" / "default" / "index.html").read_text()
    assert "disk full" in index and "<td>e</td><td class='blocked'>blocked" in index


MARKER = "open(os.path.join({folder!r}, 'ran'), 'w').close()\n"


@pytest.fixture()
def marked(tmp_path):
    """A notebook that leaves a marker file when it runs, a good toy corpus, and the base arguments."""
    (tmp_path / "marks").mkdir()
    make_notebook(tmp_path / "nbs" / "f.ipynb", "import os\n" + MARKER.format(folder=str(tmp_path / "marks")))
    good = toy_root(tmp_path / "good")
    return {"base": ["--notebooks-dir", str(tmp_path / "nbs"), "--results", str(tmp_path / "res")],
            "good": str(good), "empty": str((tmp_path / "empty")), "ran": tmp_path / "marks" / "ran"}


@pytest.mark.parametrize("args, message", [
    (["--data", "toy=GOOD", "toyb=/nonexistent/corpus"], "data root /nonexistent/corpus of 'toyb' does not exist"),
    (["--data", "toy=GOOD", "toyb"], "dataset 'toyb' needs a data root"),
    (["--dataset", "toyb"], "dataset 'toyb' needs a data root"),
    (["--data", "toy=GOOD", "nosuch=GOOD"], "unknown dataset 'nosuch'; known: "),
    (["--data", "toy=GOOD", "--views", "mel", "nope"], "unknown view(s) ['nope']; available views: "),
    (["--data", "toy=GOOD", "--notebooks", "nope"], "unknown notebook(s) ['nope']"),
    (["--data", "toy=GOOD", "toyb=EMPTY"], "toyb at "),  # a root with the wrong layout, found by the loader
    (["--data", "toy=GOOD", "toyb=EMPTY", "--strict"], "toyb at "),  # the same under --strict
    (["--data", "toy=GOOD", "toy=GOOD"], "given twice"),
    (["--data", "toy=GOOD", "--dataset", "toyb"], "either --data"),
    (["--data", "toy=GOOD", "--param", "output_dir=/tmp"], "'output_dir' cannot be overridden"),
    (["--data", "toy=GOOD", "--n-folds", "1"], "n_folds must be >= 2"),
    (["--data", "toy=GOOD", "--param", "dataset_params=[1]"], "dataset_params must be a JSON object"),
    (["--data", "toy=GOOD", "--splits", "/nonexistent/splits.csv"], "splits.csv: no such file or folder"),
    (["--data", "toy=GOOD", "toyb=GOOD", "--splits", "GOOD"], "one splits file cannot serve several corpora"),
])
def test_bad_arguments_exit_2_before_any_notebook(marked, capsys, args, message):
    (Path(marked["empty"])).mkdir(exist_ok=True)
    args = [a.replace("GOOD", marked["good"]).replace("EMPTY", marked["empty"]) for a in args]
    assert run_all.main(marked["base"] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("run_all.py: error: ") and message in err
    assert not marked["ran"].exists()  # no notebook started, not even for the good corpus


def test_every_problem_in_one_message(marked, capsys):
    assert run_all.main(marked["base"] + ["--data", "nosuch", "toyb", "--views", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("run_all.py: error:") == 1
    assert "unknown dataset 'nosuch'" in err and "'toyb' needs a data root" in err and "unknown view(s)" in err


def test_parse_param_and_missing_notebooks_dir(tmp_path):
    assert run_all.main(["--notebooks-dir", str(tmp_path / "missing")]) == 2
    assert run_all.parse_param("temps=[0.1, 0.5]") == ("temps", [0.1, 0.5])
    assert run_all.parse_param("name=mel") == ("name", "mel")
    with pytest.raises(SystemExit):
        run_all.main(["--param", "no-equals"])


@pytest.mark.notebooks
def test_strict_bad_file_fails_the_corpus_step_naming_it(tmp_path, marked, capsys):
    root = toy_root(tmp_path / "withbad", bad=2)
    assert run_all.main(marked["base"] + ["--dataset", "toy", "--data-root", str(root), "--strict"]) == 1
    summary = json.loads((tmp_path / "res" / "toy" / "run_summary.json").read_text())
    assert summary["failed"] == ["corpus", "f"] and summary["notebooks"][0]["status"] == "blocked"
    assert f"{root / 'bad_1.wav'}" in summary["steps"][0]["error"] and not marked["ran"].exists()
    assert "toy/corpus" in capsys.readouterr().err
    # without --strict the same corpus runs, and the bad files are listed
    assert run_all.main(marked["base"] + ["--dataset", "toy", "--data-root", str(root)]) == 0
    rows = pd.read_csv(tmp_path / "res" / "toy" / "bad_files.csv")
    assert rows["path"].tolist() == [str(root / "bad_1.wav"), str(root / "bad_2.wav")]
    assert set(rows["step"]) == {"loader"} and marked["ran"].exists()
    out = capsys.readouterr().out
    assert "toy: 2 bad file(s) skipped (loader: file name is not like <speaker>_<n>.wav x2)" in out
    assert str(root / "bad_1.wav") in out


def test_strict_and_loader_options_reach_corpus_step_and_notebooks(marked, monkeypatch):
    seen, jobs = [], []
    monkeypatch.setattr(sercore.data, "load_dataset", lambda name, root=None, **kw: seen.append(kw) or
                        load_toy(root, on_error=kw.get("on_error", "skip")))
    monkeypatch.setattr(runner.suite, "execute_all", lambda js, workers: jobs.extend(js) or {
        Path(j["notebook"]).stem: {"notebook": Path(j["notebook"]).stem, "status": "ok", "seconds": 0.0} for j in js})
    code = run_all.main(marked["base"] + ["--data", f"toy={marked['good']}", "--strict", "--n-folds", "2",
                                          "--param", 'dataset_params={"on_error": "skip", "calm": "merge"}'])
    assert code == 0
    assert seen == [{"on_error": "raise", "calm": "merge"}]  # --strict wins over the option
    params = jobs[0]["params"]
    assert params["strict"] is True and params["n_folds"] == 2 and params["dataset_params"]["calm"] == "merge"


def test_engine_budget_and_precision_flags_reach_the_notebooks(marked, monkeypatch):
    jobs = []
    monkeypatch.setattr(runner.suite, "execute_all", lambda js, workers: jobs.extend(js) or {
        Path(j["notebook"]).stem: {"notebook": Path(j["notebook"]).stem, "status": "ok", "seconds": 0.0} for j in js})
    monkeypatch.setattr(sercore.data, "load_dataset", lambda name, root=None, **kw: load_toy(root))
    code = run_all.main(marked["base"] + ["--data", f"toy={marked['good']}", "--engine", "ray", "--ray-address",
                                          "10.0.0.1:6379", "--budget", "paper", "--precision", "bf16"])
    assert code == 0
    params = jobs[0]["params"]
    assert (params["engine"], params["ray_address"], params["budget"], params["precision"]) == \
        ("ray", "10.0.0.1:6379", "paper", "bf16")
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(marked["base"] + ["--engine", "dask"])
    assert exit_info.value.code == 2


def test_splits_flag_reaches_the_notebooks_and_export_writes_emobox_folds(marked, monkeypatch, tmp_path):
    """``--splits`` is injected as an absolute path; ``--export-splits`` writes the saved splits.csv of the run as
    EmoBox fold files, which read back to the same folds."""
    from sercore.data import make_splits, read_splits, save_splits

    jobs = []
    manifest = load_toy(marked["good"]).assign(path="/x.wav", emotion="neu")
    splits = make_splits(manifest)

    def fake_execute(js, workers):
        for j in js:
            save_splits(splits, Path(j["output_dir"]) / "splits.csv")  # what prepare() saves
        jobs.extend(js)
        return {Path(j["notebook"]).stem: {"notebook": Path(j["notebook"]).stem, "status": "ok", "seconds": 0.0}
                for j in js}

    monkeypatch.setattr(runner.suite, "execute_all", fake_execute)
    monkeypatch.setattr(sercore.data, "load_dataset", lambda name, root=None, **kw: manifest)
    (tmp_path / "mine.csv").write_text("fold,utt_id,split\n")
    monkeypatch.chdir(tmp_path)
    code = run_all.main(marked["base"] + ["--data", f"toy={marked['good']}", "--splits", "mine.csv",
                                          "--export-splits", str(tmp_path / "exported")])
    assert code == 0 and jobs[0]["params"]["splits"] == str(tmp_path / "mine.csv")
    assert (tmp_path / "exported" / "toy" / "fold_1" / "toy_test_fold_1.jsonl").is_file()
    back = read_splits(tmp_path / "exported" / "toy", manifest, dataset="toy")
    assert back[["fold", "utt_id", "split"]].equals(splits[["fold", "utt_id", "split"]])


def test_bad_files_of_every_step_collected(tmp_path):
    (tmp_path / "nb1").mkdir()
    (tmp_path / "nb2").mkdir()
    skipped = {"path": "/d/u3.wav", "reason": "silent audio", "step": "features", "view": "egemaps"}
    (tmp_path / "nb1" / "params.json").write_text(json.dumps({
        "params": {}, "bad_files": [{"path": "/d/u4.wav", "reason": "too short (0.05 s)", "step": "audio"}, skipped]}))
    (tmp_path / "nb2" / "params.json").write_text(json.dumps({"params": {}, "bad_files": [skipped]}))
    loader = [{"path": "/d/x.wav", "reason": "unreadable audio (Format not recognised)", "step": "loader"}]
    records = runner.collect_bad_files(tmp_path, loader)
    assert [(r["step"], r["path"]) for r in records] == [("audio", "/d/u4.wav"), ("features", "/d/u3.wav"),
                                                         ("loader", "/d/x.wav")]  # u3 once
    path = runner.write_bad_files(tmp_path, records)
    assert path.read_text().splitlines()[0] == "path,step,reason" and len(path.read_text().splitlines()) == 4
    lines = runner.bad_files_summary("emodb", records)
    assert lines[0] == ("emodb: 3 bad file(s) skipped (audio: too short x1; features: silent audio x1; "
                        "loader: unreadable audio x1)")
    assert runner.bad_files_summary("emodb", []) == ["emodb: no bad files"]
    assert runner.notebook_bad_files(tmp_path / "missing") == []


def test_ensure_kernel_runs_this_interpreter(tmp_path, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager

    name = runner.ensure_kernel()
    argv0 = KernelSpecManager().get_kernel_spec(name).argv[0]
    assert argv0 in ("python", "python3") or Path(argv0).resolve() == Path(sys.executable).resolve()
    # a python3 kernel of another interpreter shadows ours: a kernel for this interpreter is installed
    other = tmp_path / "path" / "kernels" / "python3"
    other.mkdir(parents=True)
    (other / "kernel.json").write_text(json.dumps({"argv": ["/elsewhere/bin/python", "-m", "ipykernel_launcher",
                                                            "-f", "{connection_file}"],
                                                   "display_name": "other", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "path"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    name = runner.ensure_kernel()
    assert name.startswith("sercore-")
    installed = json.loads((tmp_path / "data" / "kernels" / name / "kernel.json").read_text())
    assert installed["argv"][0] == sys.executable


@pytest.mark.parametrize("args, size", [([], "default"), (["--quick"], "small"),
                                        (["--quick", "--size", "tiny"], "tiny")])
def test_quick_mode_defaults_to_the_small_corpus(monkeypatch, args, size):
    seen = {}
    monkeypatch.setattr(runner, "run_corpora", lambda *a, **kw: seen.update(kw, corpora=a[2]) or
                        [{"dataset": "default", "failed": []}])
    assert run_all.main(args) == 0
    assert seen["size"] == size and seen["quick"] == ("--quick" in args)
    assert seen["corpora"] == [runner.Corpus("default", None)] and seen["strict"] is False


def test_alias_names_the_results_folder(marked, monkeypatch):
    """``--data emo-db=ROOT`` runs the registered ``emodb`` into ``results/emodb/``."""
    monkeypatch.setattr(sercore.data, "load_dataset", lambda name, root=None, **kw: [0] * 3)
    monkeypatch.setattr(runner.suite, "execute_all", lambda js, workers: {
        Path(j["notebook"]).stem: {"notebook": Path(j["notebook"]).stem, "status": "ok", "seconds": 0.0,
                                   "params": j["params"]} for j in js})
    assert run_all.main(marked["base"] + ["--data", f"emo-db={marked['good']}"]) == 0
    summary = json.loads((Path(marked["base"][3]) / "emodb" / "run_summary.json").read_text())
    assert summary["dataset"] == "emodb" and summary["notebooks"][0]["params"]["dataset"] == "emodb"


def test_other_corpora_injected_only_where_declared(marked, monkeypatch, tmp_path):
    """A notebook declaring ``corpora`` gets the run's other corpora ({name: root}); the others do not."""
    make_notebook(tmp_path / "nbs" / "g.ipynb", "print(corpora)", params=PARAMS + "corpora = None\n")
    other = str(toy_root(tmp_path / "other"))
    jobs = []
    monkeypatch.setattr(runner.suite, "execute_all", lambda js, workers: jobs.extend(js) or {
        Path(j["notebook"]).stem: {"notebook": Path(j["notebook"]).stem, "status": "ok", "seconds": 0.0} for j in js})
    assert run_all.main(marked["base"] + ["--data", f"toy={marked['good']}", f"toyb={other}"]) == 0
    params = {(j["params"]["dataset"], Path(j["notebook"]).stem): j["params"] for j in jobs}
    assert params["toy", "g"]["corpora"] == {"toyb": other} and params["toyb", "g"]["corpora"] == {
        "toy": marked["good"]}
    assert "corpora" not in params["toy", "f"] and "corpora" not in params["toyb", "f"]
    assert run_all.main(marked["base"] + ["--data", f"toy={marked['good']}", "--param", "corpora={}"]) == 2


def test_papermill_warns_of_unknown_parameters_but_not_of_params_names(caplog):
    """A notebook's cell lists only its own parameters: injected ``Params`` names are expected, a typo is not."""
    from papermill.log import logger

    import sercore.runner.execute  # noqa: F401  (installs the filter on papermill's logger)

    with caplog.at_level("WARNING", logger="papermill"):
        logger.warning("Passed unknown parameter: budget")
        logger.warning("Passed unknown parameter: fractionz")
    assert [r.getMessage() for r in caplog.records] == ["Passed unknown parameter: fractionz"]
