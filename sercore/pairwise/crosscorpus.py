"""Cross-corpus pre-training: paper A's Figure 4 question (target vs out-of-distribution data) across corpora.

Pairwise-CL is pre-trained on each other corpus of the run, and on the union of all of them ("all-but-target"),
then fine-tuned with sparse labels on the target corpus, next to pre-training on the target itself (per fold,
its training speakers only, as in :func:`sercore.pairwise.grids.sparse_label_grid`) and supervised training.

The source corpora are pooled into one manifest whose ``utt_id`` and ``speaker`` are prefixed with the source's
name (``"<source>/<utt_id>"``, so ids of two corpora never collide); features are extracted once for that pool.
Each source's utterances are split into pre-training and validation (early stopping) by speaker. A view is the
same extractor on every corpus, so a source encoder fine-tunes on the target's features of the same view; MLP
encoders keep the z-statistics of the data they were pre-trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sercore.data.splits import LeakageError
from sercore.engine import Job
from sercore.features.featureset import FeatureSet
from sercore.pairwise.grids import PairwiseGrid, PretrainJob, sparse_jobs
from sercore.pairwise.pretrain import PretrainConfig, pretrain_pairwise_cached
from sercore.training import result_table, run_rows
from sercore.training.grid import ExperimentData

TARGET, UNION, NONE = "target", "all-but-target", "none"
SOURCE = "source"  # key prefix of the pooled sources' features: (SOURCE, view)
SEP = "/"


# ---- the source pool ------------------------------------------------------------------------------------------

def union_manifest(sources: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The source manifests stacked, ``utt_id`` and ``speaker`` prefixed ``"<name>/"``, plus a ``source`` column."""
    if not sources:
        raise ValueError("union_manifest: no source corpus given")
    parts = []
    for name, manifest in sources.items():
        if SEP in name:
            raise ValueError(f"union_manifest: source name {name!r} may not contain {SEP!r}")
        part = manifest.copy()
        part["utt_id"] = name + SEP + part["utt_id"].astype(str)
        part["speaker"] = name + SEP + part["speaker"].astype(str)
        part["source"] = name
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _resolved(paths) -> set[str]:
    return {str(Path(p).expanduser().resolve()) for p in paths}


def check_excludes_target(pool: pd.DataFrame, target: pd.DataFrame, target_name: str | None = None) -> None:
    """Raise ``LeakageError`` when the pool holds the target corpus (its name) or any of its audio files."""
    if target_name is not None and (pool["source"].astype(str) == target_name).any():
        raise LeakageError(f"the pre-training sources include the target corpus {target_name!r}")
    shared = sorted(_resolved(pool["path"]) & _resolved(target["path"]))
    if shared:
        raise LeakageError(f"{len(shared)} audio file(s) of the target corpus are in the pre-training sources: "
                           f"{shared[:5]}")


def speaker_split(manifest: pd.DataFrame, *, val_fraction: float = 0.2, seed: int = 0) -> tuple[list, list]:
    """(train ids, validation ids) of one corpus, validation = ``val_fraction`` of its speakers (at least one,
    never all); a corpus of one speaker is split by utterance instead."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    ids = manifest["utt_id"].astype(str).to_numpy()
    speakers = np.array(sorted(manifest["speaker"].astype(str).unique()))
    if len(speakers) >= 2:
        n_val = min(len(speakers) - 1, max(1, int(round(val_fraction * len(speakers)))))
        held = set(rng.choice(speakers, n_val, replace=False))
        is_val = manifest["speaker"].astype(str).isin(held).to_numpy()
    else:
        if len(ids) < 2:
            raise ValueError(f"cannot split {len(ids)} utterance(s) into pre-training and validation")
        is_val = np.zeros(len(ids), bool)
        is_val[rng.choice(len(ids), max(1, int(round(val_fraction * len(ids)))), replace=False)] = True
    return ids[~is_val].tolist(), ids[is_val].tolist()


def source_pools(pool: pd.DataFrame, *, union: bool = True, val_fraction: float = 0.2,
                 seed: int = 0) -> dict[str, tuple[list, list]]:
    """``{source name: (train, val)}`` for each source of the pool, plus ``UNION`` (all of them) when ``union``
    and there are at least two sources."""
    pools = {name: speaker_split(part, val_fraction=val_fraction, seed=seed)
             for name, part in pool.groupby("source", sort=False)}
    if union and len(pools) >= 2:
        pools[UNION] = ([u for t, _ in pools.values() for u in t], [u for _, v in pools.values() for u in v])
    return pools


def load_sources(corpora: dict[str, str | None] | None, *, target: str, target_params: dict | None = None,
                 size: str = "tiny", on_error: str = "skip") -> tuple[dict[str, pd.DataFrame], str]:
    """Manifests of the corpora to pre-train on, and a sentence for the caption saying which they are.

    ``corpora`` (``{name: root}``, the other corpora of the run) minus ``target``; when none is left, the
    synthetic corpus of ``size`` with a seed other than the target's (the target's own when it is synthetic).
    """
    from sercore.data.registry import dataset_info, load_dataset

    target_name = dataset_info(target).name
    others = {dataset_info(n).name: root for n, root in (corpora or {}).items()}
    others.pop(target_name, None)
    if others:
        loaded = {name: load_dataset(name, root, **_on_error(name, on_error)) for name, root in others.items()}
        return loaded, f"out-of-corpus pre-training data: {', '.join(loaded)}"
    seed = int((target_params or {}).get("seed", 0)) + 1 if target_name == "default" else 1
    name = f"synthetic-seed{seed}"
    manifest = load_dataset("default", size=size, seed=seed)
    same = " (same synthetic voices, other sentences and draws)" if target_name == "default" else ""
    return {name: manifest}, (f"no other corpus in this run: out-of-corpus pre-training data is the synthetic "
                              f"corpus ({size}, seed {seed}){same}")


def _on_error(name: str, on_error: str) -> dict:
    import inspect

    from sercore.data.registry import dataset_info

    return {"on_error": on_error} if "on_error" in inspect.signature(dataset_info(name).loader).parameters else {}


def source_features(pool: pd.DataFrame, views: Sequence[str], *, view_params: dict | None = None,
                    on_error: str = "skip", workers: int | None = None, device: str = "cpu",
                    cache_root=None) -> dict[str, FeatureSet]:
    """Features of ``views`` for the pooled sources, from the feature cache or extracted into it once."""
    from sercore.features.cache import extract_features
    from sercore.views import accepted_parameters, get_view, view_class

    out = {}
    for name in views:
        params = dict((view_params or {}).get(name, {}))
        if "device" in accepted_parameters(view_class(name)):
            params.setdefault("device", device)
        out[name] = extract_features(pool, get_view(name, **params), workers=workers, on_error=on_error,
                                     cache_root=cache_root)
    return out


# ---- the grid -------------------------------------------------------------------------------------------------

@dataclass
class SourcePretrainJob(Job):
    """Pairwise-CL on source ids, reading the features under ``(SOURCE, view)`` → ``{view: encoder}``."""

    views: list
    train_ids: list
    val_ids: list
    config: PretrainConfig
    device: str = "cpu"

    def run(self, features) -> dict:
        chosen = {v: features[(SOURCE, v)] for v in self.views}
        return pretrain_pairwise_cached(chosen, self.train_ids, self.val_ids, config=self.config,
                                        device=self.device).encoders


def _check_views(features: dict, pool_features: dict) -> None:
    missing = sorted(set(features) - set(pool_features))
    if missing:
        raise ValueError(f"the sources have no features of view(s) {missing} (they have {sorted(pool_features)})")
    for view, fs in features.items():
        if pool_features[view].feature_shape != fs.feature_shape:
            raise ValueError(f"view {view!r}: target features {fs.feature_shape} but source features "
                             f"{pool_features[view].feature_shape}; use the same view parameters for both")


def cross_corpus_grid(data: ExperimentData, config: PairwiseGrid | None = None, *, pool: pd.DataFrame,
                      pool_features: dict[str, FeatureSet], union: bool = True,
                      val_fraction: float = 0.2) -> pd.DataFrame:
    """Sparse-label fine-tuning on the target after pre-training on each source, on their union, on the target.

    ``data``: the target (``data.dataset`` its name, checked against the sources), as for ``sparse_label_grid``;
    ``pool`` (from :func:`union_manifest`) and ``pool_features`` (its FeatureSets, same views): the sources.
    Each source (and the union, with ``union``) is pre-trained once, the target once per fold. Every
    pre-training uses every view of ``data.features``; ``config.views`` are fine-tuned. Rows as
    ``sparse_label_grid``'s; ``pretrain_data`` is ``target``, a source's name, ``all-but-target`` or ``none``
    (supervised). ``val_fraction``: each source's speakers held out for early stopping.
    """
    config = config or PairwiseGrid()
    features = data.features
    check_excludes_target(pool, data.manifest, data.dataset or None)
    _check_views(features, pool_features)
    engine, all_views, views, datas = config.job_engine(), list(features), config.views_of(data), data.fold_datas()
    pools = source_pools(pool, union=union, val_fraction=val_fraction, seed=config.pretrain.seed)
    jobs = [PretrainJob(d, config.pretrain, config.device, views=all_views) for d in datas]
    jobs += [SourcePretrainJob(all_views, train, val, config.pretrain, config.device) for train, val in pools.values()]
    shared = {**features, **{(SOURCE, v): fs for v, fs in pool_features.items() if v in features}}
    trained = engine.run(jobs, shared)
    by_source = dict(zip(pools, trained[len(datas):]))
    finetune = []
    for d, target in zip(datas, trained):  # a PretrainJob gives the whole PretrainResult
        finetune += sparse_jobs(d, {TARGET: target.encoders, **by_source}, views, config, True)
    return result_table(run_rows(engine, finetune, features), ["fraction", "frozen", "pretrain_data"])


def pretrain_order(results: pd.DataFrame) -> list[str]:
    """The ``pretrain_data`` values in display order: target, each source, all-but-target, none."""
    found = list(dict.fromkeys(results["pretrain_data"].astype(str)))
    sources = [s for s in found if s not in (TARGET, UNION, NONE)]
    return [s for s in [TARGET, *sources, UNION, NONE] if s in found]


def cross_corpus_summary(results: pd.DataFrame, value: str = "test_uar") -> pd.DataFrame:
    """Mean ``value`` per view × fraction (rows) and pre-training data (columns, in :func:`pretrain_order`),
    over folds and repetitions."""
    table = results.pivot_table(index=["view", "fraction"], columns="pretrain_data", values=value, aggfunc="mean")
    return table[pretrain_order(results)]


def cross_corpus_figure(results: pd.DataFrame, path_stem, *, caption: str, value: str = "test_uar",
                        alpha: float = 0.05, test: str = "wilcoxon") -> list[Path]:
    """``value`` against the labelled fraction, one line per pre-training data, one panel per view (mean over
    repetitions, each the mean over folds, with Student-t 95% CI). Also saves ``<stem>_stats`` (each
    out-of-corpus source against ``target`` and against ``none``, each comparison Holm-adjusted over views ×
    fractions; ``test``: ``wilcoxon`` on the runs paired by fold × repetition, or ``mannwhitney`` on repetition
    means, see :func:`sercore.analysis.figures.significance`, whose sentence on the test joins the caption) and
    ``<stem>_summary`` (CSV + Markdown). ``results``: the grid's runs. Returns all paths."""
    import seaborn as sns

    from sercore.analysis.figures import check_caption, ci_band, fraction_axis, save_figure, significance
    from sercore.analysis.stats import repetition_means
    from sercore.analysis.tables import save_table, summary_table

    check_caption(caption)
    order = pretrain_order(results)
    pairs = [(source, other) for source in order if source not in (TARGET, NONE) for other in (TARGET, NONE)
             if other in order]
    tests = None
    if pairs:
        tests, caption = significance(results, caption, test=test, alpha=alpha, pairs=pairs, by=["view", "fraction"],
                                      condition_col="pretrain_data", value=value)
    data = repetition_means(results, ["view", "pretrain_data", "fraction"], value)
    views = list(dict.fromkeys(data["view"]))
    g = sns.relplot(data=data, x="fraction", y=value, hue="pretrain_data", hue_order=order, col="view",
                    col_order=views, kind="line", marker="o", errorbar=ci_band(value), height=3.2, aspect=1.1,
                    facet_kws=dict(sharey=False))
    xs = np.sort(data["fraction"].unique()).astype(float)
    for view, ax in g.axes_dict.items():
        fraction_axis(ax, xs)
        ax.set_title(str(view))
    g.set_axis_labels("labelled fraction", value)
    g.figure.suptitle("Pre-training data: target, other corpora, none", y=1.06)
    stem = Path(path_stem)
    paths = save_figure(g.figure, stem, caption=caption)
    if tests is not None:
        paths += save_table(tests, stem.with_name(stem.name + "_stats"), caption=caption)
    summary = summary_table(data, by=["view", "pretrain_data", "fraction"], value=value)
    return paths + save_table(summary, stem.with_name(stem.name + "_summary"), caption=caption)


# ---- the notebook's one call ----------------------------------------------------------------------------------

def cross_corpus(data: ExperimentData, config: PairwiseGrid, corpora: dict[str, str | None] | None, *,
                 view_params: dict | None = None, dataset_params: dict | None = None, size: str = "tiny",
                 strict: bool = False) -> tuple[pd.DataFrame, str]:
    """Notebook 09: load the other corpora (or the synthetic fallback of ``size``), extract their features, run
    :func:`cross_corpus_grid` with ``config``.

    ``data``: the target (a notebook's ``Experiment``); ``view_params``/``dataset_params``/``strict``: the
    notebook's. Returns the result table and the caption sentence naming the pre-training sources.
    """
    on_error = "raise" if strict else "skip"
    sources, note = load_sources(corpora, target=data.dataset, target_params=dataset_params, size=size,
                                 on_error=on_error)
    pool = union_manifest(sources)
    pool_features = source_features(pool, list(data.features), view_params=view_params, on_error=on_error,
                                    workers=config.workers, device=config.device)
    kept = set.intersection(*(set(fs.ids) for fs in pool_features.values()))
    pool = pool[pool["utt_id"].isin(kept)].reset_index(drop=True)  # files a view could not read are left out
    return cross_corpus_grid(data, config, pool=pool, pool_features=pool_features), note


__all__ = ["TARGET", "UNION", "NONE", "union_manifest", "check_excludes_target", "speaker_split", "source_pools",
           "load_sources", "source_features", "SourcePretrainJob", "cross_corpus_grid", "pretrain_order",
           "cross_corpus_summary", "cross_corpus_figure", "cross_corpus"]
