"""A notebook's needs are checked before any work: by run_all.py before the first kernel starts (exit 2), and by
the notebook's setup cell with the same message."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from sercore.notebook.requirements import (
    REQUIREMENTS,
    BadParameters,
    check_requirements,
    declared_requirements,
    default_parameters,
    notebook_problems,
)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb")) + [REPO / "templates" / "experiment.ipynb"]
ONE_VIEW = ("Pairwise-CL contrasts every pair of views, so it needs at least two views; got ['egemaps']. "
            "Give two or more, e.g. --views egemaps mel")


def test_every_notebook_declares_known_requirements():
    declared = {nb.stem: declared_requirements(nb) for nb in NOTEBOOKS}
    assert all(set(r) <= set(REQUIREMENTS) for r in declared.values()), declared
    pairwise = {"02_temperature_grid", "03_sparse_labels", "04_target_vs_ood", "05_representation_maps",
                "06_alignment", "08_cluster_contrastive", "09_cross_corpus", "10_upstreams", "experiment"}
    assert {stem for stem, r in declared.items() if "pairwise" in r} == pairwise
    assert {"speaker_view"} <= set(declared["01_speaker_clusters"]) & set(declared["08_cluster_contrastive"])
    assert not [nb.stem for nb in NOTEBOOKS if notebook_problems(nb, {})]  # every default works


def test_the_checks_name_the_problem_and_the_fix():
    assert check_requirements(["pairwise"], {"views": ["egemaps"]}) == [ONE_VIEW]
    assert check_requirements(["pairwise"], {"views": ["egemaps", "mel"]}) == []
    problem, = check_requirements(["speaker_view"], {"views": ["egemaps", "mel"]})
    assert "speaker_view 'speaker' is not among the views ['egemaps', 'mel']" in problem
    assert "--views egemaps mel speaker" in problem
    assert check_requirements(["encoder_view"], {"views": ["mel"], "encoder_view": "mel"}) == []
    assert "source_size" in check_requirements(["cross_corpus"], {"source_size": "huge"})[0]
    with pytest.raises(KeyError, match="unknown notebook requirement 'three_views'; known"):
        check_requirements(["three_views"], {})
    nb = REPO / "notebooks" / "03_sparse_labels.ipynb"
    assert default_parameters(nb)["views"] == ["egemaps", "mel", "speaker"]
    assert notebook_problems(nb, {"views": ["egemaps"]}) == [f"notebook 03_sparse_labels: {ONE_VIEW}"]


def test_run_all_refuses_one_view_for_pairwise_cl_before_any_kernel(tmp_path):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(REPO / "run_all.py"), "--size", "tiny", "--quick", "--offline",
                           "--views", "egemaps", "--notebooks", "03_sparse_labels", "01_speaker_clusters",
                           "--results", str(tmp_path / "results")], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert time.perf_counter() - start < 60  # the checks load no corpus and start no kernel
    assert f"notebook 03_sparse_labels: {ONE_VIEW}" in proc.stderr
    assert "notebook 01_speaker_clusters: speaker_view 'speaker' is not among the views ['egemaps']" in proc.stderr
    assert "start" not in proc.stdout and not (tmp_path / "results").exists()  # nothing ran, nothing written


def test_the_notebook_fails_in_its_setup_cell_with_the_same_message(tmp_path):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from sercore.runner.execute import ensure_kernel

    params = dict(size="tiny", quick=True, offline=True, views=["egemaps"], output_dir=str(tmp_path))
    with pytest.raises(PapermillExecutionError) as failed:
        papermill.execute_notebook(str(REPO / "notebooks" / "03_sparse_labels.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters=params, kernel_name=ensure_kernel(), progress_bar=False,
                                   cwd=str(tmp_path))
    assert failed.value.ename == "BadParameters" and failed.value.evalue == ONE_VIEW
    assert not (tmp_path / "params.json").exists()  # it failed before loading anything


def test_setup_raises_before_loading_data(tmp_path):
    from sercore.notebook.experiment import setup

    namespace = dict(dataset="no-such-corpus", views=["egemaps"], output_dir=str(tmp_path))
    with pytest.raises(BadParameters, match="at least two views"):
        setup(namespace, requires=("pairwise",))
