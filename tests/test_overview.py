"""Notebook 00's tables and figure on users' manifests: optional columns missing or empty, two speakers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sercore.analysis import overview  # noqa: E402
from sercore.data import make_manifest, make_splits  # noqa: E402


def _bare(durations=None) -> pd.DataFrame:
    """Only the required columns (a hand-made frame), two speakers; ``durations`` adds that column."""
    rows = [dict(utt_id=f"{s}{e}{i}", path=f"/x/{s}{e}{i}.wav", speaker=s, emotion=e, dataset="mine")
            for s in ("OAF", "YAF") for e in ("neu", "hap", "sad", "ang") for i in range(3)]
    df = pd.DataFrame(rows)
    if durations is not None:
        df["duration"] = durations[: len(df)]
    return df


@pytest.mark.parametrize("frame", ["bare", "manifest_without_values", "some_durations"])
def test_overview_copes_with_missing_optional_columns(tmp_path, frame):
    manifest = {"bare": _bare(), "manifest_without_values": make_manifest(_bare().to_dict("records")),
                "some_durations": _bare([np.nan, 1.5, "", 2.0] * 6)}[frame]
    counts = overview.counts_table(manifest)
    assert counts.loc["total", "total"] == 24 and counts.index.names == ["speaker"]
    durations = overview.duration_table(manifest)
    assert list(durations.index) == ["ang", "hap", "neu", "sad"]
    known = 0 if frame != "some_durations" else 12
    assert durations["count"].sum() == known
    genders = overview.gender_table(manifest)
    assert genders.to_dict("index") == {"unknown": {"speakers": 2, "utterances": 24}}
    assert overview.bad_files_table(manifest).empty
    splits = make_splits(manifest)
    assert set(overview.fold_table(splits, manifest)["split"]) == {"train", "val", "test"}
    paths = overview.overview_figure(manifest, tmp_path / "overview", caption="two speakers")
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)


def test_counts_by_session_when_known_and_bad_files_listed():
    manifest = make_manifest(_bare().to_dict("records"))
    manifest["session"] = ["S1"] * 12 + [None] * 12
    manifest.attrs["bad_files"] = [{"path": "/x/recording_1.wav", "reason": "file name", "step": "loader"}]
    counts = overview.counts_table(manifest)
    assert counts.index.names == ["session", "speaker"] and ("-", "YAF") in counts.index
    assert overview.bad_files_table(manifest).to_dict("records") == manifest.attrs["bad_files"]
