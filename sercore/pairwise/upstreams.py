"""Notebook 10: upstream speech models with few labels.

For every view of the run (each SSL speech model — ``wav2vec2``, ``hubert_base``, ``wavlm_base_plus``, ... —,
and eGeMAPS and mel), UAR against the labelled fraction under two conditions:

- ``probe``: the upstream frozen, a linear probe on its features (``LinearProbe``: for ``[T, L, D]`` hidden
  states the learnt softmax layer weights and a mean over frames, for mel the mean over frames, for eGeMAPS the
  z-normalised functionals), trained with the labelled subset only;
- ``pairwise-cl``: Pairwise-CL pre-training of the model's view with mel and eGeMAPS (one pre-training per
  model and fold; eGeMAPS and mel alone are pre-trained together), then fine-tuning of its encoder.

The labelled subsets are paper A's sparse-label draws (``sparse_subset``, seed ``config.finetune.seed + r``,
shared by all views and conditions, so comparisons are paired). Rows of SSL views keep the learnt layer weights
(``layer_weights``, a list), which ``layer_weight_table`` and ``layer_weights_figure`` show per model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from sercore.engine import Job
from sercore.features.featureset import FeatureSet
from sercore.models import learnt_layer_weights
from sercore.pairwise.grids import PRETRAINED, PairwiseGrid, PretrainJob, pretrain_many
from sercore.training import finetune, normalize_if_needed
from sercore.training.folds import sparse_subset
from sercore.training.grid import ExperimentData, result_table, run_rows

PROBE = "probe"
COMPANIONS = ("egemaps", "mel")  # the views every model is pre-trained with


class LinearProbe(nn.Module):
    """The input of a linear probe on frozen features: ``[B, T, L, D]`` → softmax-weighted layers, mean over
    frames → ``[B, D]``; ``[B, T, F]`` → mean over frames; ``[B, F]`` → z-normalised (``set_normalization``)."""

    def __init__(self, feature_shape: Sequence[int], variable: bool):
        super().__init__()
        shape = tuple(int(s) for s in feature_shape)
        self.layered = variable and len(shape) == 2
        self.variable = variable
        self.out_dim = shape[-1]
        self.layer_logits = nn.Parameter(torch.zeros(shape[0])) if self.layered else None
        self.register_buffer("mean", torch.zeros(self.out_dim))
        self.register_buffer("std", torch.ones(self.out_dim))
        self.register_buffer("normalized", torch.tensor(variable))  # frame views need no z-statistics

    def layer_weights(self) -> torch.Tensor:
        """The softmax weights of the layers ``[L]`` (layered features only)."""
        return torch.softmax(self.layer_logits, dim=0)

    def set_normalization(self, mean, std, eps: float = 1e-6) -> "LinearProbe":
        """z-statistics of fixed-length features (training-fold ``mean``/``std``; ``std`` < eps → 1)."""
        self.mean.copy_(torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        std = torch.as_tensor(np.asarray(std, dtype=np.float32))
        self.std.copy_(torch.where(std < eps, torch.ones_like(std), std))
        self.normalized.fill_(True)
        return self

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, out_dim]`` (mean over real frames for frame sequences)."""
        from sercore.models.encoders import frame_mask, masked_mean

        if not self.variable:
            return (x - self.mean) / self.std
        if self.layered:
            x = torch.einsum("btld,l->btd", x, self.layer_weights().to(x.dtype))
        return masked_mean(x, frame_mask(lengths, x.shape[0], x.shape[1], x.device))


@dataclass
class UpstreamJob(Job):
    """One fine-tuning run of the upstream grid → a result row with ``layer_weights`` where the model has them.
    ``encoder`` is a ``LinearProbe`` (condition ``probe``, z-statistics from the fold's pre-training pool) or a
    pre-trained encoder; ``subset``: positions in ``data.train_ids`` of the labelled subset."""

    view: str
    data: Any  # FoldData
    config: Any  # FinetuneConfig
    encoder: Any
    subset: Sequence[int]
    device: str = "cpu"
    row: dict = field(default_factory=dict)

    def cost(self) -> float:
        """The number of labelled training utterances."""
        return float(len(self.subset))

    def run(self, features) -> dict:
        from sercore.training.jobs import HISTORY, METRICS

        fs, data = features[self.view], self.data
        encoder = copy.deepcopy(self.encoder)
        normalize_if_needed(encoder, fs, data.pool_train)  # fixed-length probes: all training-fold utterances
        ids, labels = [data.train_ids[i] for i in self.subset], [data.train_labels[i] for i in self.subset]
        result = finetune(encoder, fs, ids, labels, data.val_ids, data.val_labels, config=self.config,
                          device=self.device, test_ids=data.test_ids, test_labels=data.test_labels)
        weights = learnt_layer_weights(result.model)
        row = dict(self.row, view=self.view, n_labels=len(ids))
        row.update({k: result.metrics[k] for k in (*METRICS, "best_epoch", "epochs_run", "steps")})
        row["layer_weights"] = None if weights is None else [round(float(w), 6) for w in weights]
        kept = (fs.meta.get("provenance") or {}).get("layers_kept")  # the model's layer numbers, when a subset
        row["layers"] = None if weights is None else (list(kept) if isinstance(kept, (list, tuple))
                                                      else list(range(len(weights))))
        row[HISTORY] = result.history["val_uar"].tolist()
        return row


def _pretrain_sets(features: dict[str, FeatureSet], views: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Pre-training view sets: each model's view with the companions; the companions alone together."""
    companions = tuple(c for c in COMPANIONS if c in features)
    sets = {v: (v, *companions) for v in views if v not in COMPANIONS}
    if any(v in companions for v in views):
        sets["+".join(companions)] = companions
    return sets


def _owner(view: str, sets: dict) -> str:
    """The pre-training whose encoder of ``view`` is fine-tuned: the model's own, or the companions'."""
    return view if view in sets else "+".join(COMPANIONS)


def upstream_grid(data: ExperimentData, config: PairwiseGrid | None = None, *,
                  histories: dict | None = None) -> pd.DataFrame:
    """Each view's linear probe (``probe``) and Pairwise-CL fine-tuning (``pairwise-cl``) with p% of the labels
    (``config.fractions``, ``config.repetitions`` draws each).

    ``data.features`` must hold eGeMAPS and mel (the companions every model is pre-trained with) besides the models.
    Grid columns ``fraction``, ``pretrain_views`` (the views pre-trained together, ``none`` for probes); also
    ``layer_weights`` and ``layers`` (the weights and the model's layer numbers, lists, for rows of an SSL view,
    else None), ``n_labels``, ``best_epoch``, ``node``. ``histories`` as in
    :func:`sercore.pairwise.grids.sparse_label_grid`.
    """
    config = config or PairwiseGrid()
    features = data.features
    missing = [c for c in COMPANIONS if c not in features]
    if missing:
        raise ValueError(f"upstream_grid: Pairwise-CL pre-trains each model with {' and '.join(COMPANIONS)}; "
                         f"missing view(s) {missing} (add them to views)")
    engine, views, datas = config.job_engine(), config.views_of(data), data.fold_datas()
    sets = _pretrain_sets(features, views)
    keys = [(d.fold, name) for d in datas for name in sets]
    trained = pretrain_many(features, [PretrainJob(d, config.pretrain, config.device, views=list(members),
                                                   row=dict(pretrain_views="+".join(members)))
                                       for d in datas for members in sets.values()], engine, histories)
    encoders = dict(zip(keys, trained))
    owner = {v: _owner(v, sets) for v in views}
    jobs = []
    for d in datas:
        for fraction in config.fractions:
            for rep in range(config.repetitions):
                seed = config.finetune.seed + rep
                finetune_config = replace(config.finetune, seed=seed)
                subset = sparse_subset(d.train_ids, d.train_labels, fraction, seed)
                row = dict(fold=d.fold, repetition=rep, seed=seed, fraction=fraction)
                for view in views:
                    fs = features[view]
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(seed)
                        probe = LinearProbe(fs.feature_shape, fs.variable)
                    jobs.append(UpstreamJob(view, d, replace(finetune_config, frozen=False), probe, subset,
                                            config.device, dict(row, condition=PROBE, pretrain_views="none",
                                                                frozen=True)))
                    pre = dict(row, condition=PRETRAINED, pretrain_views="+".join(sets[owner[view]]),
                               frozen=finetune_config.frozen)
                    jobs.append(UpstreamJob(view, d, finetune_config, encoders[d.fold, owner[view]][view], subset,
                                            config.device, pre))
    rows = run_rows(engine, jobs, features, histories)
    return result_table(rows, ["fraction", "pretrain_views"])


def layer_weight_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean learnt layer weight per view × condition × layer (rows with ``layer_weights`` only; ``layer`` is the
    model's layer number, 0 the transformer's input, also when the view kept a subset of layers)."""
    rows = [dict(view=r.view, condition=r.condition, layer=int(i), weight=float(w))
            for r in runs.itertuples() if isinstance(r.layer_weights, (list, tuple, np.ndarray))
            for i, w in zip(_layer_numbers(r), r.layer_weights)]
    if not rows:
        return pd.DataFrame(columns=["view", "condition", "layer", "weight"])
    return pd.DataFrame(rows).groupby(["view", "condition", "layer"], as_index=False)["weight"].mean()


def _layer_numbers(row) -> list[int]:
    """The model's layer numbers of a row's weights (``layers``, e.g. [0, 4, 8, 12]), else 0..L-1."""
    layers = getattr(row, "layers", None)
    return list(layers) if isinstance(layers, (list, tuple, np.ndarray)) else list(range(len(row.layer_weights)))


def layer_weights_figure(table: pd.DataFrame, path_stem, *, caption: str) -> list:
    """Learnt layer weights (mean over runs) against the layer, one panel per model, one line per condition."""
    import seaborn as sns

    from sercore.analysis.figures import check_caption, save_figure

    check_caption(caption)
    if table.empty:
        raise ValueError("layer_weights_figure: no layer weights (no SSL speech-model view in the run)")
    g = sns.relplot(data=table, x="layer", y="weight", hue="condition", col="view", kind="line", marker="o",
                    height=3.0, aspect=1.1, facet_kws=dict(sharex=False))
    g.set_axis_labels("layer (0: transformer input)", "softmax weight")
    g.figure.suptitle("Learnt layer weights per upstream model", y=1.06)
    return save_figure(g.figure, path_stem, caption=caption)
