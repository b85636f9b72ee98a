"""Dataset overview: counts, durations, folds, and how separable emotions and speakers are in each view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sercore.analysis.chance import chance_columns
from sercore.features.featureset import FeatureSet


def pooled(features: FeatureSet, ids) -> np.ndarray:
    """``(n_samples, n_features)`` for ``ids``: fixed views as they are, frame sequences as mean ‖ std over frames."""
    pos = features.positions(list(ids))
    if not features.variable:
        return features.numpy_fixed(pos).reshape(len(pos), -1)
    rows = []
    for p in pos:
        frames = np.asarray(features.frames(p), dtype=np.float32)
        frames = frames.reshape(len(frames), -1)
        rows.append(np.concatenate([frames.mean(0), frames.std(0)]))
    return np.stack(rows)


def _column(manifest: pd.DataFrame, name: str, numeric: bool = False) -> pd.Series:
    """``manifest[name]``, or all-missing when the column is absent (optional columns may be)."""
    col = manifest[name] if name in manifest.columns else pd.Series(None, index=manifest.index, dtype=object)
    return pd.to_numeric(col, errors="coerce").astype(float) if numeric else col


def counts_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Utterances per speaker (rows, with session when known) × emotion (columns), with totals."""
    sessions = _column(manifest, "session")
    index = [sessions.fillna("-").rename("session"), manifest["speaker"]] if sessions.notna().any() \
        else [manifest["speaker"]]
    return pd.crosstab(index, manifest["emotion"], margins=True, margins_name="total")


def duration_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Duration statistics (seconds) per emotion: count (of known durations), mean, std, min, median, max,
    total minutes. Unknown durations are left out (all-NaN rows when none is known)."""
    d = pd.DataFrame({"emotion": manifest["emotion"].values, "duration": _column(manifest, "duration", True).values})
    table = d.groupby("emotion")["duration"].describe()[["count", "mean", "std", "min", "50%", "max"]]
    table["total_min"] = d.groupby("emotion")["duration"].sum(min_count=1) / 60
    return table.rename(columns={"50%": "median"})


def gender_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Speakers and utterances per gender (``unknown`` where the corpus does not give it)."""
    d = pd.DataFrame({"gender": _column(manifest, "gender").fillna("unknown").values,
                      "speaker": manifest["speaker"].values})
    return d.groupby("gender").agg(speakers=("speaker", "nunique"), utterances=("speaker", "size"))


def bad_files_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """The files the loader or audio scan skipped (``manifest.attrs["bad_files"]``): path, reason, step."""
    return pd.DataFrame(list(manifest.attrs.get("bad_files", [])), columns=["path", "reason", "step"])


def fold_table(splits: pd.DataFrame, task: pd.DataFrame) -> pd.DataFrame:
    """Per fold and split: utterances of the pool, labelled task utterances, speakers, and the groups."""
    labelled = set(task["utt_id"].astype(str))
    rows = []
    for (fold, split), part in splits.groupby(["fold", "split"], sort=True):
        rows.append(dict(fold=fold, split=split, utterances=len(part),
                         labelled=int(part["utt_id"].isin(labelled).sum()), speakers=part["speaker"].nunique(),
                         groups=", ".join(sorted(map(str, part["group"].unique())))))
    return pd.DataFrame(rows)


def probe_table(features: dict[str, FeatureSet], task: pd.DataFrame, splits: pd.DataFrame, *,
                folds=None, seed: int = 0, per_speaker: list | None = None) -> pd.DataFrame:
    """Linear probes (standardised logistic regression) per view and fold: emotion UAR/WA on the test group,
    and speaker-identification accuracy (5-fold stratified CV over the task). A quick check of how hard
    the corpus is and how speaker-specific each view is; paper A's encoders should beat the emotion probe.
    Every row has ``n_classes`` and ``chance_uar`` (1/K: the UAR of guessing; for speaker identification, K
    speakers). ``per_speaker`` (a list) receives the emotion UAR per test speaker (:func:`speaker_uar` rows).
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    rows = []
    folds = sorted(splits["fold"].unique()) if folds is None else folds
    label = task.set_index("utt_id")["emotion"].astype(str)
    chance = chance_columns(label.nunique())
    splits_speakers = task.set_index("utt_id")["speaker"].astype(str)
    for view, fs in features.items():
        for fold in folds:
            part = splits[(splits["fold"] == fold) & splits["utt_id"].isin(label.index)]
            train = part.loc[part["split"] != "test", "utt_id"].tolist()
            test = part.loc[part["split"] == "test", "utt_id"].tolist()
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5, random_state=seed))
            model.fit(pooled(fs, train), label[train])
            pred = model.predict(pooled(fs, test))
            rows.append(dict(view=view, fold=fold, target="emotion", metric="test_uar",
                             value=balanced_accuracy_score(label[test], pred), **chance))
            rows.append(dict(view=view, fold=fold, target="emotion", metric="test_wa",
                             value=accuracy_score(label[test], pred), **chance))
            if per_speaker is not None:
                per_speaker += speaker_uar(label[test], pred, splits_speakers[test], view=view, fold=fold)
        ids = task["utt_id"].astype(str).tolist()
        speakers = task["speaker"].astype(str).to_numpy()
        n_splits = int(min(5, pd.Series(speakers).value_counts().min()))
        if n_splits >= 2:
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
            cv = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
            acc = cross_val_score(model, pooled(fs, ids), speakers, cv=cv).mean()
            rows.append(dict(view=view, fold=np.nan, target="speaker", metric="cv_accuracy", value=acc,
                             **chance_columns(pd.Series(speakers).nunique())))
    return pd.DataFrame(rows)


def speaker_uar(truth, pred, speakers, **keys) -> list[dict]:
    """Rows ``**keys, speaker, n_test, uar, n_classes, chance_uar`` for each test speaker: the UAR over that
    speaker's utterances (over the classes the speaker has; ``n_classes`` counts them, chance is 1/that)."""
    frame = pd.DataFrame({"truth": np.asarray(truth, dtype=str), "pred": np.asarray(pred, dtype=str),
                          "speaker": np.asarray(speakers, dtype=str)})
    rows = []
    for speaker, part in frame.groupby("speaker", sort=True):
        rows.append(dict(keys, speaker=speaker, n_test=len(part),
                         uar=balanced_accuracy_score(part["truth"], part["pred"]),
                         **chance_columns(part["truth"].nunique())))
    return rows


def speaker_spread(per_speaker: pd.DataFrame, by=("view",), value: str = "uar") -> pd.DataFrame:
    """Spread of the per-speaker UAR for each group of ``by``: speakers, mean, std, min, median, max, and the
    worst and best speaker."""
    rows = []
    for key, part in per_speaker.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        means = part.groupby("speaker")[value].mean()
        rows.append(dict(zip(by, key), speakers=len(means), mean=means.mean(), std=means.std(ddof=1),
                         min=means.min(), median=means.median(), max=means.max(),
                         worst=means.idxmin(), best=means.idxmax(), chance_uar=part["chance_uar"].max()))
    return pd.DataFrame(rows)


def probe_tables(features: dict[str, FeatureSet], task: pd.DataFrame, splits: pd.DataFrame, *, folds=None,
                 seed: int = 0) -> dict[str, pd.DataFrame]:
    """Notebook 00's probe tables: ``probes`` (:func:`probe_table`), ``probes_per_speaker`` (emotion UAR per view,
    fold and test speaker) and ``probes_speaker_spread`` (its spread over speakers per view)."""
    per_speaker: list[dict] = []
    probes = probe_table(features, task, splits, folds=folds, seed=seed, per_speaker=per_speaker)
    per_speaker = pd.DataFrame(per_speaker)
    return {"probes": probes, "probes_per_speaker": per_speaker,
            "probes_speaker_spread": speaker_spread(per_speaker, by=("view",))}


def probe_summary(probes: pd.DataFrame, spread: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per view: mean emotion UAR and WA over folds, chance (1/K with K classes), UAR above chance,
    the speaker-identification accuracy with its chance, and (``spread`` given) the lowest and highest
    per-speaker UAR: the table notebook 00 displays."""
    emotion = probes[probes["target"] == "emotion"]
    table = emotion.pivot_table(index="view", columns="metric", values="value", aggfunc="mean", sort=False)
    table["n_classes"] = emotion.groupby("view", sort=False)["n_classes"].first()
    table["chance_uar"] = emotion.groupby("view", sort=False)["chance_uar"].first()
    table["uar_above_chance"] = table["test_uar"] - table["chance_uar"]
    speaker = probes[probes["target"] == "speaker"].set_index("view")
    if len(speaker):
        table["speaker_accuracy"] = speaker["value"]
        table["speaker_chance"] = speaker["chance_uar"]
    if spread is not None and len(spread):
        per = spread.set_index("view")
        table["speaker_uar_min"], table["speaker_uar_max"] = per["min"], per["max"]
    return table.round(3)


def overview_figure(manifest: pd.DataFrame, path_stem, *, caption: str) -> list[Path]:
    """Counts per speaker × emotion (heat map) and duration distributions per emotion."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from sercore.analysis.figures import save_figure

    counts = pd.crosstab(manifest["speaker"], manifest["emotion"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.3 * len(counts) + 2.5))
    sns.heatmap(counts, annot=len(counts) <= 30, fmt="d", cmap="Blues", cbar=False, ax=axes[0])
    axes[0].set_title("utterances per speaker × emotion")
    durations = pd.DataFrame({"emotion": manifest["emotion"].values,
                              "duration": _column(manifest, "duration", True).values}).dropna()
    if durations.empty:
        axes[1].text(0.5, 0.5, "no durations known", ha="center", va="center", transform=axes[1].transAxes)
        axes[1].set_axis_off()
    else:
        order = sorted(manifest["emotion"].astype(str).unique())
        sns.boxplot(data=durations, x="emotion", y="duration", order=order, ax=axes[1], color="#9ecae1")
    axes[1].set_title("duration (s) per emotion")
    fig.tight_layout()
    return save_figure(fig, path_stem, caption=caption)
