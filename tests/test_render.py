"""Rendered notebooks a reader can read (issue 33): progress bars on the console, not in the notebook; each
executed notebook opens with its findings line; probe tables as DataFrames with their chance level."""

from __future__ import annotations

import io
import re
import sys

import nbformat
import pandas as pd
import pytest

from sercore.features import cache
from sercore.notebook.progress import PROGRESS_LINE, extraction_line, routed_progress
from sercore.runner.execute import render_html
from sercore.runner.findings import FINDINGS_ID, add_findings, notebook_findings


def _bar_output(mode: str, monkeypatch) -> tuple[str, str]:
    """What a feature-cache bar of 30 steps writes to (the notebook's stderr, the console) under ``mode``."""
    notebook, console = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", notebook)
    monkeypatch.setattr(sys, "__stderr__", console)
    with routed_progress(mode):
        with cache.tqdm(total=30, desc="features mel", unit="utt", mininterval=0) as bar:
            for _ in range(30):
                bar.update()
    return notebook.getvalue(), console.getvalue()


def test_console_mode_draws_bars_on_the_console_only(monkeypatch):
    in_notebook, on_console = _bar_output("console", monkeypatch)
    assert re.search(PROGRESS_LINE, on_console) and "30/30" in on_console
    assert in_notebook == ""
    in_notebook, on_console = _bar_output("off", monkeypatch)
    assert in_notebook == on_console == ""
    assert cache.tqdm.__module__.startswith("tqdm")  # restored after the block


def test_progress_mode_comes_from_the_environment(monkeypatch):
    from sercore.notebook.progress import progress_mode

    monkeypatch.setenv("SERCORE_PROGRESS", "console")
    assert progress_mode() == "console"
    monkeypatch.setenv("SERCORE_PROGRESS", "loud")
    with pytest.raises(ValueError, match="SERCORE_PROGRESS"):
        progress_mode()
    assert extraction_line("mel", 1200, 3.21) == "features mel: 1,200 utterances in 3.2 s"


def _probe_folder(root):
    """A corpus folder with notebook 00's probes table and an executed notebook that printed bar lines."""
    folder = root / "default" / "00_dataset_overview"
    folder.mkdir(parents=True)
    pd.DataFrame([dict(view=v, fold=0, target="emotion", metric="test_uar", value=u, n_classes=4, chance_uar=0.25)
                  for v, u in (("mel", 0.4), ("egemaps", 0.6))]).to_csv(folder / "probes.csv", index=False)
    cell = nbformat.v4.new_code_cell("x = 1", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="features mel: 240 utterances in 1.0 s\n")]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Dataset overview"), cell])
    nbformat.write(nb, str(folder / "00_dataset_overview.ipynb"))
    return folder


def test_executed_notebook_opens_with_its_findings_line(tmp_path):
    folder = _probe_folder(tmp_path)
    line = notebook_findings(folder, {"status": "ok"})
    assert line == ("Findings: Linear-probe emotion UAR mel 0.40, egemaps 0.60 (chance UAR 0.25, 4 classes); "
                    "best egemaps.")
    executed = folder / "00_dataset_overview.ipynb"
    add_findings(executed, line)
    add_findings(executed, line)  # a rerun replaces the line, never stacks it
    cells = nbformat.read(str(executed), as_version=4).cells
    assert [c.get("id") for c in cells].count(FINDINGS_ID) == 1 and cells[0].get("id") == FINDINGS_ID
    html = render_html(executed).read_text()
    assert html.index("Findings: Linear-probe") < html.index("Dataset overview<a") < html.index("240 utterances")


def test_findings_of_a_runs_table_and_of_a_failure(tmp_path):
    folder = tmp_path / "default" / "02_grid"
    folder.mkdir(parents=True)
    pd.DataFrame({"condition": ["a", "a", "b"], "test_uar": [0.5, 0.7, 0.3], "n_classes": 4,
                  "chance_uar": 0.25}).to_csv(folder / "grid_runs.csv", index=False)
    assert notebook_findings(folder) == ("Findings: Mean test UAR by condition (grid_runs): a 0.60, b 0.30 "
                                         "(chance UAR 0.25, 4 classes).")
    empty = tmp_path / "default" / "07_counts"
    empty.mkdir()
    assert notebook_findings(empty, {"status": "failed", "error": "cell 3: ValueError: x"}) == \
        "Findings: The run failed (cell 3: ValueError: x); wrote 0 table(s) and 0 figure(s)."


def test_probe_summary_is_a_dataframe_with_chance_and_speaker_spread():
    from sercore.analysis.overview import probe_summary, speaker_spread, speaker_uar

    probes = pd.DataFrame([dict(view="mel", fold=f, target="emotion", metric=m, value=v, n_classes=4, chance_uar=0.25)
                           for f, m, v in ((0, "test_uar", 0.5), (1, "test_uar", 0.3), (0, "test_wa", 0.6),
                                           (1, "test_wa", 0.4))]
                          + [dict(view="mel", fold=None, target="speaker", metric="cv_accuracy", value=0.9,
                                  n_classes=10, chance_uar=0.1)])
    rows = speaker_uar(["a", "b", "a", "b"], ["a", "b", "b", "b"], ["s1", "s1", "s2", "s2"], view="mel", fold=0)
    assert [(r["speaker"], r["uar"], r["chance_uar"]) for r in rows] == [("s1", 1.0, 0.5), ("s2", 0.5, 0.5)]
    spread = speaker_spread(pd.DataFrame(rows))
    assert spread.loc[0, ["min", "max", "worst", "best"]].tolist() == [0.5, 1.0, "s2", "s1"]
    table = probe_summary(probes, spread)
    assert isinstance(table, pd.DataFrame)
    assert table.loc["mel", ["test_uar", "chance_uar", "uar_above_chance", "speaker_chance"]].tolist() == \
        [0.4, 0.25, 0.15, 0.1]
    assert table.loc["mel", "n_classes"] == 4 and table.loc["mel", "speaker_uar_min"] == 0.5
