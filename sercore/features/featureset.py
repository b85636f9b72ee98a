"""FeatureSet: the features of one view for a list of utterances, as training code reads them.

Fixed-length views (eGeMAPS, speaker embeddings) hold ``data: [N, *shape]``. Variable-length views (mel,
wav2vec2 layers) hold all frames back to back, ``data: [sum(lengths), *shape]``, plus ``offsets``/``lengths``,
so nothing is padded on disk; ``batch`` pads only to the longest item of the batch. ``data`` may be a
``numpy.memmap`` (float16 in the cache), or ``Frames``: the items' frames where the feature store keeps them,
in several memory-mapped shards. Only the rows a batch needs are read and cast to float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch


class Frames:
    """Frames of variable-length items spread over several arrays (the feature store's shards), read as one
    ``[sum(lengths), *frame]`` array: item ``i`` is ``parts[part[i]][start[i]:start[i] + lengths[i]]``."""

    def __init__(self, parts: Sequence[np.ndarray], part, start, lengths):
        # plain ndarray views of the memory maps: slicing one skips np.memmap's per-slice bookkeeping
        self.parts = [np.asarray(p) for p in parts]
        self._part, self._start = [int(i) for i in part], [int(s) for s in start]
        self._lengths = np.asarray(lengths, dtype=np.int64)
        frame = self.parts[0].shape[1:] if self.parts else ()
        self.shape = (int(self._lengths.sum()), *frame)
        self.dtype = np.result_type(*[p.dtype for p in self.parts]) if self.parts else np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def item(self, i: int, n: int) -> np.ndarray:
        """The first ``n`` frames of item ``i``."""
        start = self._start[i]
        return self.parts[self._part[i]][start:start + n]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        items = [self.item(i, int(n)) for i, n in enumerate(self._lengths)]
        out = np.concatenate(items) if items else np.zeros((0, *self.shape[1:]), self.dtype)
        return out.astype(dtype or self.dtype, copy=False)

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self)[key]


@dataclass
class FeatureSet:
    """Features of one view, aligned with ``ids`` (utterance ids of the manifest)."""

    ids: np.ndarray
    data: Any  # np.ndarray / np.memmap, or Frames (variable views read from the feature store)
    lengths: np.ndarray | None = None  # frames per utterance; None for fixed-length views
    meta: dict = field(default_factory=dict)  # view name, params, provenance of the model used
    source: Any = None  # where it was read from, reopened by workers (``sercore.features.store.StoredFeatures``)

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids).astype(str)
        if self.lengths is None:
            if len(self.data) != len(self.ids):
                raise ValueError(f"FeatureSet: {len(self.ids)} ids but {len(self.data)} feature rows")
            self.offsets = None
        else:
            self.lengths = np.asarray(self.lengths, dtype=np.int64)
            if len(self.lengths) != len(self.ids):
                raise ValueError(f"FeatureSet: {len(self.ids)} ids but {len(self.lengths)} lengths")
            self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
            if self.offsets[-1] != len(self.data):
                raise ValueError(f"FeatureSet: lengths sum to {self.offsets[-1]} but data has {len(self.data)} frames")
        self._pos = {u: i for i, u in enumerate(self.ids)}

    @property
    def variable(self) -> bool:
        """True for variable-length (frame sequence) views."""
        return self.lengths is not None

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one vector (fixed views) or one frame (variable views), e.g. ``(88,)`` or ``(13, 768)``."""
        return tuple(self.data.shape[1:])

    def engine_ref(self):
        """What the job engine sends to workers instead of the data: ``source`` (the feature store's reference,
        which a worker reopens memory-mapped), or None for in-memory features (the set is pickled)."""
        return self.source if callable(getattr(self.source, "reopen", None)) else None

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, utt_ids: Sequence[str]) -> np.ndarray:
        """Row positions of ``utt_ids``; a missing id raises ``KeyError`` naming it."""
        missing = [u for u in utt_ids if u not in self._pos]
        if missing:
            raise KeyError(f"{len(missing)} utterances have no features in view "
                           f"{self.meta.get('view', '?')}: {missing[:5]}")
        return np.array([self._pos[u] for u in utt_ids], dtype=np.int64)

    def frames(self, position: int, n: int | None = None) -> np.ndarray:
        """The first ``n`` (default: all) frames of the item at ``position`` (variable views), as stored."""
        n = int(self.lengths[position]) if n is None else n
        if isinstance(self.data, Frames):
            return self.data.item(position, n)
        start = self.offsets[position]
        return self.data[start:start + n]

    def subset(self, utt_ids: Sequence[str]) -> "FeatureSet":
        """A FeatureSet over ``utt_ids`` only (materialised in memory)."""
        pos = self.positions(list(utt_ids))
        if not self.variable:
            return FeatureSet(self.ids[pos], np.asarray(self.data[pos]), None, dict(self.meta))
        chunks = [np.asarray(self.frames(i)) for i in pos]
        data = np.concatenate(chunks) if chunks else np.zeros((0, *self.feature_shape), self.data.dtype)
        return FeatureSet(self.ids[pos], data, self.lengths[pos], dict(self.meta))

    def numpy_fixed(self, positions: np.ndarray | None = None) -> np.ndarray:
        """Fixed-length features as float32 ``[N, *shape]`` (all rows, or ``positions``)."""
        if self.variable:
            raise ValueError("numpy_fixed() is for fixed-length views; use batch() for sequences")
        rows = self.data if positions is None else self.data[np.asarray(positions)]
        return np.asarray(rows, dtype=np.float32)

    def batch(self, positions: Sequence[int], max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Float32 tensors for rows ``positions``.

        Fixed views: ``(x [B, *shape], None)``. Variable views: ``(x [B, T, *shape], lengths [B])`` with ``T`` the
        longest item in the batch (or ``max_len`` when given: longer items are cut, shorter ones zero-padded).
        """
        positions = np.asarray(positions, dtype=np.int64)
        if not self.variable:
            return torch.from_numpy(self.numpy_fixed(positions)), None
        lens = self.lengths[positions]
        if max_len is not None:
            lens = np.minimum(lens, max_len)
        width = int(max_len if max_len is not None else max(int(lens.max(initial=1)), 1))
        out = np.zeros((len(positions), width, *self.feature_shape), dtype=np.float32)
        item = self.data.item if isinstance(self.data, Frames) else None
        for row, (p, n) in enumerate(zip(positions.tolist(), lens.tolist())):
            if item is not None:
                out[row, :n] = item(p, n)
            else:
                start = self.offsets[p]
                out[row, :n] = self.data[start:start + n]
        return torch.from_numpy(out), torch.from_numpy(lens.astype(np.int64))
