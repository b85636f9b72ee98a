"""Figures both papers use, and the tools of every figure (seaborn); each saves PNG + PDF and returns the paths.
Paper A's own figures are in :mod:`sercore.pairwise.figures`.

Figures are drawn with the Agg backend (kept as is inside a notebook whose kernel set the inline backend) and
closed after saving. Every figure takes a ``caption`` that states what was actually used (see
:func:`describe`); it is printed under the figure. Functions that summarise a table also save that table
(CSV + Markdown) next to the figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

# Agg everywhere except inside a notebook kernel that already chose its inline backend.
if "inline" not in str(getattr(matplotlib.rcParams, "_get_backend_or_none", lambda: None)() or ""):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

from sercore.analysis.stats import (  # noqa: E402
    TOO_FEW,
    compare_runs,
    mean_ci_t,
    metric_bounds,
    power_note,
    repetition_means,
    sampling_unit,
)
from sercore.analysis.tables import require_columns, save_table, summary_table  # noqa: E402

__all__ = ["describe", "save_figure", "check_caption", "ci_band", "fraction_axis", "significance", "condition_figure",
           "condition_bars", "scatter_grid", "speaker_emotion_map", "confusion_figure", "learning_curves"]


def describe(*, dataset: str, views: Sequence[str] | str, models: Sequence[str] | str | dict | None = None,
             repetitions: int | None = None, **extra) -> str:
    """One provenance line for a caption: ``dataset: X | views: a, b | models: ... | repetitions: n | k: v``."""
    def join(v):
        if isinstance(v, dict):
            return ", ".join(f"{k}={val}" for k, val in v.items())
        return v if isinstance(v, str) else ", ".join(map(str, v))
    parts = [f"dataset: {dataset}", f"views: {join(views)}"]
    if models is not None:
        parts.append(f"models: {join(models)}")
    if repetitions is not None:
        parts.append(f"repetitions: {repetitions}")
    parts += [f"{k}: {join(v) if isinstance(v, (list, tuple, dict)) else v}" for k, v in extra.items()]
    return " | ".join(parts)


def check_caption(caption: str) -> str:
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError("caption must state the dataset, views, models and repetitions (see describe())")
    return caption


def save_figure(fig, path_stem, *, caption: str | None = None) -> list[Path]:
    """Save ``fig`` as ``<path_stem>.png`` and ``.pdf`` (caption line underneath), close it, return the paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if caption:  # placed under everything already drawn (tick labels may reach below the axes)
        bottom = fig.get_tightbbox(fig.canvas.get_renderer()).y0 / fig.get_figheight()
        fig.text(0.01, bottom - 0.02, caption, ha="left", va="top", fontsize=8, wrap=True)
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    for p in paths:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def ci_band(value: str):
    """seaborn ``errorbar``: the Student-t 95% CI of the mean, cut to [0, 1] for bounded metrics."""
    bounds = metric_bounds(value)
    return lambda v: mean_ci_t(v, bounds=bounds)[1:]


def fraction_axis(ax, xs: np.ndarray) -> None:
    """Log scale with a tick at every measured fraction (shown in % when all are ≤ 1)."""
    if len(xs) > 1 and xs.min() > 0 and xs.max() / xs.min() >= 4:
        ax.set_xscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{100 * x:g}%" if xs.max() <= 1 else f"{x:g}" for x in xs])
    ax.minorticks_off()


def significance(runs: pd.DataFrame, caption: str, *, test: str, alpha: float, pairs: Sequence[tuple[str, str]],
                 **compare) -> tuple[pd.DataFrame, str]:
    """The tests of ``pairs`` (``(a, b)``, each a Holm family: :func:`sercore.analysis.stats.compare_runs`) and
    ``caption`` extended with the test, n, the correction and the smallest attainable p; when no test could
    reach ``alpha`` that sentence is also printed."""
    tests = pd.concat([compare_runs(runs, a=a, b=b, alpha=alpha, test=test, **compare) for a, b in pairs],
                      ignore_index=True)
    unit, per_repetition = sampling_unit(runs, test)
    note = power_note(tests, alpha=alpha, unit=unit, per_repetition=per_repetition)
    if (tests["mark"] == TOO_FEW).any():
        print(note)
    return tests, f"{caption} | {note}"


def condition_figure(results: pd.DataFrame, path_stem, *, caption: str, a: str, b: str,
                     value: str = "test_uar", x: str = "fraction", condition_col: str = "condition",
                     view_col: str = "view", alpha: float = 0.05, test: str = "wilcoxon",
                     title: str | None = None) -> list[Path]:
    """``value`` against ``x`` for conditions ``a`` and ``b``, one panel per view: mean over repetitions (each the
    mean over folds) with Student-t 95% CI bands (cut to [0, 1] for bounded metrics), and a significance mark
    above each x (``*``, ``ns``, or ``n/a (n too small)`` where no result could reach ``alpha``), Holm-adjusted
    over all panels and x values.

    ``results``: a grid's runs ``view, condition, fraction, fold, repetition, test_uar`` (or one row per
    repetition, without ``fold``). ``test``: ``wilcoxon`` (each run against its twin of the same fold and
    repetition) or ``mannwhitney`` (paper A: repetition means); the caption names the test, n, the correction and
    the smallest p it could reach. Also saves the test table ``<stem>_stats`` and the summary ``<stem>_summary``
    (CSV + Markdown). Returns all paths.
    """
    check_caption(caption)
    require_columns(results, [view_col, condition_col, x, value], "condition_figure")
    runs = results[results[condition_col].isin([a, b])]
    tests, caption = significance(runs, caption, test=test, alpha=alpha, pairs=[(a, b)], by=[view_col, x],
                                  condition_col=condition_col, value=value)
    data = repetition_means(runs, [view_col, condition_col, x], value)
    views = list(dict.fromkeys(data[view_col]))
    xs = np.sort(data[x].unique()).astype(float)
    g = sns.relplot(data=data, x=x, y=value, hue=condition_col, hue_order=[a, b], col=view_col, col_order=views,
                    kind="line", marker="o", errorbar=ci_band(value), height=3.2, aspect=1.1,
                    facet_kws=dict(sharey=False))
    for view, ax in g.axes_dict.items():
        fraction_axis(ax, xs)
        for _, r in tests[tests[view_col] == view].iterrows():
            ax.annotate("n/a" if r["mark"] == TOO_FEW else r["mark"], xy=(r[x], 1.0),
                        xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=9)
        ax.set_title(str(view), pad=14)
    g.set_axis_labels("labelled fraction" if x == "fraction" else x, value)
    if title:
        g.figure.suptitle(title, y=1.1)
    stem = Path(path_stem)
    paths = save_figure(g.figure, stem, caption=caption)
    paths += save_table(tests, stem.with_name(stem.name + "_stats"), caption=caption)
    summary = summary_table(data, by=[view_col, condition_col, x], value=value)
    return paths + save_table(summary, stem.with_name(stem.name + "_summary"), caption=caption)


def condition_bars(results: pd.DataFrame, path_stem, *, caption: str, value: str = "test_uar",
                   condition_col: str = "condition", col: str | None = "fraction", order: Sequence[str] | None = None,
                   title: str | None = None, baseline: str | None = None, test: str = "wilcoxon",
                   alpha: float = 0.05) -> list[Path]:
    """Mean ``value`` per condition as bars with Student-t 95% CIs, cut to [0, 1] for bounded metrics (one panel
    per ``col`` value, e.g. the labelled fraction): paper B's comparison of pre-training variants against their
    baselines.

    ``results``: a grid's runs (bars over repetition means, each the mean over folds) or one row per repetition.
    ``baseline`` (e.g. ``"supervised"``): every other condition is tested against it in each panel, one Holm
    family (``test`` as in :func:`condition_figure`), its mark is written right of the bar, the test table is
    saved as ``<stem>_stats`` and the caption names the test, n and correction.
    """
    check_caption(caption)
    cols = [col] if col else []
    require_columns(results, [condition_col, value] + cols, "condition_bars")
    paths, tests = [], None
    if baseline is not None:
        others = [c for c in dict.fromkeys(results[condition_col]) if c != baseline]
        tests, caption = significance(results, caption, test=test, alpha=alpha, pairs=[(others, baseline)], by=cols,
                                      condition_col=condition_col, value=value)
    data = repetition_means(results, [condition_col] + cols, value)
    order = list(order or data.groupby(condition_col)[value].mean().sort_values(ascending=False).index)
    g = sns.catplot(data=data, x=value, y=condition_col, order=order, col=col, kind="bar", height=3.0,
                    aspect=1.3, errorbar=ci_band(value), color="tab:blue", sharex=True)
    g.set_axis_labels(value, "")
    if col:
        g.set_titles(col_template=f"{col} = {{col_name}}")
    if tests is not None:
        for key, ax in (g.axes_dict.items() if col else [(None, g.ax)]):
            shown = tests if key is None else tests[tests[col] == key]
            for _, r in shown.iterrows():
                ax.text(0.99, order.index(r["a"]), "n/a" if r["mark"] == TOO_FEW else r["mark"], ha="right",
                        va="center", fontsize=9, bbox=dict(facecolor="white", edgecolor="none", pad=1),
                        transform=blended_transform_factory(ax.transAxes, ax.transData))
    if title:
        g.figure.suptitle(title, y=1.04)
    stem = Path(path_stem)
    if tests is not None:
        paths = save_table(tests, stem.with_name(stem.name + "_stats"), caption=caption)
    return save_figure(g.figure, stem, caption=caption) + paths


def scatter_grid(maps, *, hue, row, col, row_order, col_order, hue_order, palette, caption, path_stem, title):
    g = sns.relplot(data=maps, x="x", y="y", hue=hue, hue_order=hue_order, row=row, col=col,
                    row_order=row_order, col_order=col_order, kind="scatter", s=14, linewidth=0, alpha=0.8,
                    palette=palette, height=2.8, facet_kws=dict(sharex=False, sharey=False))
    g.set(xticks=[], yticks=[], xlabel="", ylabel="")
    if g.legend is not None and len(hue_order) > 12:  # dozens of speaker_emotion labels: columns of 12
        sns.move_legend(g, "center left", bbox_to_anchor=(1.0, 0.5), ncol=int(np.ceil(len(hue_order) / 12)),
                        fontsize=7, title_fontsize=8, frameon=False)
    if row is not None or col is not None:
        g.set_titles(row_template="{row_name}", col_template="{col_name}")
    if title:
        g.figure.suptitle(title, y=1.03)
    return save_figure(g.figure, path_stem, caption=caption)


def _speaker_palette(maps: pd.DataFrame) -> dict:
    """One colour family per speaker (blues, reds, ...), one shade per emotion: speakers and their emotion
    clusters both stay readable with dozens of ``speaker_emotion`` labels."""
    families = ["Blues", "Reds", "Greens", "Purples", "Oranges", "Greys", "YlOrBr", "PuRd"]
    speakers = sorted(maps["speaker"].astype(str).unique())
    emotions = sorted(maps["emotion"].astype(str).unique())
    palette = {}
    for i, speaker in enumerate(speakers):
        shades = sns.color_palette(families[i % len(families)], len(emotions) + 2)[2:]
        palette.update({f"{speaker}_{e}": shades[j] for j, e in enumerate(emotions)})
    return palette


def speaker_emotion_map(maps: pd.DataFrame, path_stem, *, caption: str, col: str | None = None,
                        title: str | None = "Speaker embeddings coloured by speaker_emotion") -> list[Path]:
    """Paper B: 2-D map of speaker embeddings coloured ``{speaker}_{emotion}``.

    ``maps``: tidy ``[x, y, speaker, emotion]`` (+ ``col``, e.g. ``method`` for t-SNE and UMAP side by side).
    """
    check_caption(caption)
    require_columns(maps, ["x", "y", "speaker", "emotion"] + ([col] if col else []), "speaker_emotion_map")
    maps = maps.assign(speaker_emotion=maps["speaker"].astype(str) + "_" + maps["emotion"].astype(str))
    order = sorted(maps["speaker_emotion"].unique())
    palette = _speaker_palette(maps)
    return scatter_grid(maps, hue="speaker_emotion", row=None, col=col, row_order=None,
                         col_order=list(dict.fromkeys(maps[col])) if col else None, hue_order=order,
                         palette=palette, caption=caption, path_stem=path_stem, title=title)


def confusion_figure(matrix: pd.DataFrame, path_stem, *, caption: str, normalize: bool = True) -> list[Path]:
    """Confusion matrix (from :func:`sercore.analysis.confusion`) as a heat map, rows normalised to recall."""
    check_caption(caption)
    m = matrix.div(matrix.sum(axis=1).replace(0, np.nan), axis=0) if normalize else matrix
    fig, ax = plt.subplots(figsize=(0.7 * len(m.columns) + 2, 0.6 * len(m) + 1.5))
    sns.heatmap(m, annot=True, fmt=".2f" if normalize else "d", cmap="Blues", ax=ax, cbar=False)
    return save_figure(fig, path_stem, caption=caption)


def _histories(histories, required: Sequence[str], where: str) -> pd.DataFrame:
    """One tidy frame with a ``run`` column from a history, a list of histories or ``{run name: history}``."""
    if isinstance(histories, pd.DataFrame):
        histories = {0: histories} if "run" not in histories.columns else dict(tuple(histories.groupby("run")))
    elif not isinstance(histories, dict):
        histories = dict(enumerate(histories))
    if not histories:
        raise ValueError(f"{where}: no history given")
    frames = []
    for run, h in histories.items():
        require_columns(h, list(required), f"{where} (run {run})")
        if h.empty:
            raise ValueError(f"{where}: the history of run {run} is empty")
        frames.append(h.drop(columns="run", errors="ignore").assign(run=str(run)))
    return pd.concat(frames, ignore_index=True)


def learning_curves(path_stem, *, caption: str, pretrain=None, finetune=None,
                    title: str | None = "Learning curves") -> list[Path]:
    """Pre-training loss on the training and validation sets, and fine-tuning validation UAR, per epoch.

    ``pretrain``: ``PretrainResult.history`` (columns ``epoch, train_loss, val_loss``), a list of them, or
    ``{run name: history}`` (e.g. one per fold); ``finetune``: ``FinetuneResult.history`` (``epoch, val_uar``)
    in the same forms (with a ``condition`` column, one line per condition, e.g. the ``histories`` a grid of
    ``sercore.pairwise.grids`` fills). At least one is needed; each makes one panel. Several runs are drawn as the
    mean per
    epoch with its Student-t 95% CI (UAR cut to [0, 1]); a run that stopped early simply ends. The best epoch
    of each run (lowest validation loss, highest validation UAR) is listed in the saved table
    ``<stem>_best`` (CSV + Markdown). Returns all paths.
    """
    check_caption(caption)
    if pretrain is None and finetune is None:
        raise ValueError("learning_curves: give pretrain and/or finetune histories")
    panels, best = [], []
    if pretrain is not None:
        h = _histories(pretrain, ["epoch", "train_loss", "val_loss"], "learning_curves(pretrain)")
        long = h.melt(id_vars=["run", "epoch"], value_vars=["train_loss", "val_loss"], var_name="set",
                      value_name="loss")
        long["set"] = long["set"].map({"train_loss": "train", "val_loss": "validation"})
        panels.append(("pre-training", long, "loss", None))
        best.append(_best_epochs(h, "val_loss", "pre-training", np.argmin))
    if finetune is not None:
        h = _histories(finetune, ["epoch", "val_uar"], "learning_curves(finetune)")
        panels.append(("fine-tuning", h.assign(set=h["condition"] if "condition" in h else "validation"),
                       "val_uar", (0.0, 1.0)))
        best.append(_best_epochs(h, "val_uar", "fine-tuning", np.argmax))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), squeeze=False)
    for ax, (name, data, y, bounds) in zip(axes[0], panels):
        sns.lineplot(data=data, x="epoch", y=y, hue="set", marker="o", markersize=3, ax=ax,
                     errorbar=(lambda v, b=bounds: mean_ci_t(v, bounds=b)[1:]) if data["run"].nunique() > 1
                     else None)
        ax.set_title(f"{name} ({data['run'].nunique()} run(s))")
        ax.set_ylabel("validation UAR" if y == "val_uar" else y)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(title="", fontsize=8)
        if bounds:
            ax.set_ylim(*bounds)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    stem = Path(path_stem)
    return save_figure(fig, stem, caption=caption) + save_table(pd.concat(best, ignore_index=True),
                                                                stem.with_name(stem.name + "_best"), caption=caption)


def _best_epochs(h: pd.DataFrame, column: str, stage: str, pick) -> pd.DataFrame:
    """Per run: epochs run, the best epoch by ``column`` (``pick`` = ``np.argmin``/``np.argmax``), its value."""
    rows = []
    for run, g in h.groupby("run", sort=False):
        i = int(pick(g[column].to_numpy()))
        rows.append(dict(stage=stage, run=run, epochs=len(g), best_epoch=int(g["epoch"].iloc[i]), metric=column,
                         best=float(g[column].iloc[i])))
    return pd.DataFrame(rows)
