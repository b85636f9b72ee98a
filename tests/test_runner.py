"""run_all.py / sercore.runner on tiny notebooks generated in tmp folders (kernel start-up is the cost:
six executions in all)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

import sercore.data
from sercore import runner

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
from sercore.provenance import write_params
plt.plot([0, 1], [1, 0]); plt.savefig("curve.png")
os.makedirs("tables", exist_ok=True)
open("tables/scores.csv", "w").write("fold,uar\\n0,0.5\\n")
write_params(".", {"seed": seed})
print("SEEN", dataset, seed, quick, lr, views, os.getcwd() == output_dir)
"""
FAIL = "x = 1\nraise RuntimeError('deliberate failure')\n"
STABLE = "same-sercore-source"


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
    make_notebook(base / "nbs" / "b_good.ipynb", GOOD)
    argv = ["--notebooks-dir", str(base / "nbs"), "--results", str(base / "res"), "--dataset", "toy",
            "--seed", "3", "--quick", "--views", "mel", "egemaps", "--param", "lr=0.5"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "source_hash", lambda package_dir=None: STABLE)
        code = run_all.main(argv)
    out = base / "res" / "toy"
    return {"base": base, "argv": argv, "code": code, "out": out,
            "summary": json.loads((out / "run_summary.json").read_text()),
            "index_html": (out / "index.html").read_text(), "index_md": (out / "index.md").read_text(),
            "good_injected": injected_cell(out / "b_good" / "b_good.ipynb"),
            "good_stdout": stdout_of(out / "b_good" / "b_good.ipynb"),
            "good_record": runner.read_record(out / "b_good")}


def test_parameters_injected_and_visible(first_run):
    src = first_run["good_injected"]
    assert "seed = 3" in src and "quick = True" in src and "dataset = \"toy\"" in src
    assert "views = [\"mel\", \"egemaps\"]" in src and "lr = 0.5" in src
    assert "epochs" not in src and "folds" not in src  # optional parameters only when given
    out_dir = first_run["out"] / "b_good"
    # the notebook saw the injected values and ran with its results folder as working directory
    assert f"SEEN toy 3 True 0.5 ['mel', 'egemaps'] True" in first_run["good_stdout"]
    assert first_run["good_record"]["params"]["output_dir"] == str(out_dir)


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


def test_failing_notebook_kept_others_run(first_run):
    assert first_run["code"] == 1
    summary = first_run["summary"]
    assert summary["failed"] == ["a_fail"] and not summary["ok"]
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


def test_skip_then_rerun_on_change_or_force(first_run, monkeypatch):
    """Runs after the read-only checks above; executes b_good twice."""
    monkeypatch.setattr(runner, "source_hash", lambda package_dir=None: STABLE)
    base, out = first_run["base"], first_run["out"] / "b_good"
    kwargs = dict(dataset="toy", seed=3, quick=True, size="small",  # what the CLI's --quick injects
                  names=["b_good"], extra_params={"views": ["mel", "egemaps"], "lr": 0.5})
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


def test_failed_run_is_not_up_to_date(first_run):
    out = first_run["out"] / "a_fail"
    record = runner.read_record(out)
    assert not runner.is_up_to_date(out, "a_fail", record["fingerprint"])


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
    assert calls == [("default", {"size": "tiny"})]
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


def test_bad_arguments(tmp_path, capsys):
    make_notebook(tmp_path / "nbs" / "f.ipynb", "print(1)")
    base = ["--notebooks-dir", str(tmp_path / "nbs"), "--results", str(tmp_path / "res"), "--dataset", "toy"]
    assert run_all.main(base + ["--notebooks", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown notebook(s) ['nope']" in err and "available: ['f']" in err
    assert run_all.main(base + ["--param", "output_dir=/tmp"]) == 2
    assert run_all.main(["--notebooks-dir", str(tmp_path / "missing")]) == 2
    assert run_all.parse_param("temps=[0.1, 0.5]") == ("temps", [0.1, 0.5])
    assert run_all.parse_param("name=mel") == ("name", "mel")
    with pytest.raises(SystemExit):
        run_all.main(base + ["--param", "no-equals"])


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
    monkeypatch.setattr(runner, "run", lambda *a, **kw: seen.update(kw) or {"failed": []})
    assert run_all.main(args) == 0
    assert seen["size"] == size and seen["quick"] == ("--quick" in args)
