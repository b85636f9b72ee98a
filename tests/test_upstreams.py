"""Notebook 10's grid (``sercore.pairwise.upstreams``): two upstream models in one quick run, each its own rows,
the linear probe and Pairwise-CL conditions, and the learnt layer weights; then the notebook itself on the tiny
corpus with tiny HuBERT and WavLM checkpoints loaded from folders."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures_grids import make_grid_corpus

from sercore.features.featureset import FeatureSet
from sercore.pairwise.grids import PairwiseGrid
from sercore.pairwise.pretrain import PretrainConfig
from sercore.pairwise.upstreams import LinearProbe, layer_weight_table, layer_weights_figure, upstream_grid
from sercore.training import FinetuneConfig
from sercore.training.grid import ExperimentData

REPO = Path(__file__).resolve().parents[1]
MODELS = ("hubert_base", "wavlm_base_plus")


def _layered(manifest, seed, kept="all"):
    """A ``[T, 3, 8]`` view (three "layers", ``kept`` of the model's) carrying the emotion in its middle layer."""
    rng = np.random.default_rng(seed)
    label = manifest["emotion"].astype("category").cat.codes.to_numpy()
    centres = 2 * rng.normal(size=(label.max() + 1, 8))
    lengths = rng.integers(4, 10, size=len(manifest))
    frames = [np.stack([rng.normal(size=(n, 8)), centres[y] + rng.normal(size=(n, 8)), rng.normal(size=(n, 8))],
                       axis=1) for y, n in zip(label, lengths)]
    return FeatureSet(manifest["utt_id"], np.concatenate(frames).astype(np.float32), lengths,
                      meta={"encoder": "wav2vec2", "provenance": {"layers_kept": kept}})


@pytest.fixture(scope="module")
def runs():
    manifest, task, splits, feats = make_grid_corpus()
    features = {"egemaps": feats["fixed"], "mel": feats["seq"],
                "hubert_base": _layered(manifest, 0), "wavlm_base_plus": _layered(manifest, 1, kept=[0, 6, 12])}
    config = PairwiseGrid(fractions=(0.5, 1.0), repetitions=2,
                          pretrain=PretrainConfig(max_epochs=2, batch_size=32, patience=2),
                          finetune=FinetuneConfig(max_epochs=3, patience=None, batch_size=16))
    table = upstream_grid(ExperimentData(manifest, task, splits, features, folds=[0]), config)
    return table


def test_two_models_in_one_run_are_separate_rows(runs):
    assert set(runs["view"]) == {"egemaps", "mel", *MODELS}
    counts = runs.groupby(["view", "condition"]).size()
    assert (counts == 2 * 2).all() and len(counts) == 4 * 2  # 2 fractions x 2 repetitions per view x condition
    assert set(runs["condition"]) == {"probe", "pairwise-cl"}
    pre = runs[runs["condition"] == "pairwise-cl"].drop_duplicates("view").set_index("view")["pretrain_views"]
    assert pre.to_dict() == {"hubert_base": "hubert_base+egemaps+mel", "wavlm_base_plus": "wavlm_base_plus+egemaps+mel",
                             "egemaps": "egemaps+mel", "mel": "egemaps+mel"}
    assert runs["test_uar"].between(0, 1).all() and runs["n_labels"].gt(0).all()


def test_layer_weights_are_kept_for_the_models_only(runs):
    weights = runs.set_index(["view", "condition"])["layer_weights"]
    for model in MODELS:
        for w in weights.loc[model]:
            assert len(w) == 3 and abs(sum(w) - 1) < 1e-4
    assert weights.loc["egemaps"].isna().all() and weights.loc["mel"].isna().all()
    table = layer_weight_table(runs)
    assert set(table["view"]) == set(MODELS)
    layers = table.groupby("view")["layer"].unique()
    assert set(layers["hubert_base"]) == {0, 1, 2} and set(layers["wavlm_base_plus"]) == {0, 6, 12}
    assert np.allclose(table.groupby(["view", "condition"])["weight"].sum(), 1, atol=1e-4)


def test_layer_weights_figure_is_saved(runs, tmp_path):
    paths = layer_weights_figure(layer_weight_table(runs), tmp_path / "lw", caption="test caption")
    assert [p.name for p in paths] == ["lw.png", "lw.pdf"] and all(p.stat().st_size > 0 for p in paths)


@torch.no_grad()
def test_linear_probe_inputs():
    layered = LinearProbe((3, 4), True)
    x = torch.randn(2, 5, 3, 4)
    np.testing.assert_allclose(layered(x, torch.tensor([5, 2])), torch.stack([x[0].mean((0, 1)),
                                                                            x[1, :2].mean((0, 1))]), atol=1e-6)
    frames = LinearProbe((6,), True)
    assert frames(torch.ones(2, 4, 6), torch.tensor([4, 1])).shape == (2, 6) and frames.layer_logits is None
    fixed = LinearProbe((3,), False).set_normalization([1, 1, 1], [2, 2, 0])
    np.testing.assert_allclose(fixed(torch.tensor([[3.0, 1.0, 2.0]])), [[1.0, 0.0, 1.0]])


@pytest.mark.notebooks
def test_notebook_10_quick_run_with_two_tiny_models(tmp_path):
    """run_all.py --quick on notebook 10 with tiny HuBERT and WavLM folders named through view_params."""
    from tiny_models import make_tiny_ssl

    sources = {"hubert_base": str(make_tiny_ssl(tmp_path / "hubert", "hubert")),
               "wavlm_base_plus": str(make_tiny_ssl(tmp_path / "wavlm", "wavlm"))}
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(REPO / "run_all.py"), "--size", "tiny", "--quick", "--offline",
                           "--notebooks", "10_upstreams", "--results", str(out), "--views", "egemaps", "mel",
                           *sources, "--param", "view_params=" + json.dumps({k: {"source": v}
                                                                            for k, v in sources.items()})],
                          cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    folder = out / "default" / "10_upstreams"
    runs = pd.read_csv(folder / "upstream_runs.csv")
    assert set(runs["view"]) == {"egemaps", "mel", *sources}
    assert (folder / "upstream_layer_weights.png").is_file() and (folder / "upstreams.png").is_file()
    caption = (folder / "upstreams_summary.md").read_text().splitlines()[0]
    assert all(f"{name}=" in caption for name in sources), caption  # each model's provenance in the caption
    page = (folder / "10_upstreams.html").read_text()  # the rendered notebook a reader gets
    assert all(name in page for name in sources)
    index = (out / "default" / "index.html").read_text()
    assert "10_upstreams/upstreams.png" in index and "10_upstreams/upstream_layer_weights.png" in index
