"""The fine-tuning job of every grid: one run → one result row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from sercore.engine import Job
from sercore.training.finetune import finetune, supervised_baseline

METRICS = ("val_uar", "val_wa", "test_uar", "test_wa")
HISTORY = "_val_uar_history"  # key of a fine-tuning row's per-epoch validation UAR; the grids take it out
PER_SPEAKER = "_test_uar_per_speaker"  # key of a row's test UAR per test speaker; the grids take it out


@dataclass
class FinetuneJob(Job):
    """One fine-tuning run of a grid → one result row (``row``: the grid columns, e.g. fold, condition, seed;
    then the metrics, ``best_epoch``, ``epochs_run``, ``steps``, ``n_labels``, ``n_classes``, ``chance_uar`` and,
    under ``HISTORY``, the validation UAR of each epoch).

    ``encoder`` None: the supervised baseline (same encoder from scratch, z-statistics from the fold's
    pre-training pool); else ``finetune`` of a copy of it. ``subset``: positions in ``data.train_ids`` of the
    labelled subset (None: all). On CUDA it asks for ``gpu_fraction`` of a GPU, so several runs share one.
    """

    view: str
    data: Any  # sercore.training.folds.FoldData
    config: Any  # FinetuneConfig
    subset: Sequence[int] | None = None
    encoder: Any = None
    device: str = "cpu"
    row: dict = field(default_factory=dict)
    gpu_fraction: float = 0.25

    def resources(self) -> dict:
        return {"num_cpus": 1, "num_gpus": self.gpu_fraction} if self.uses_cuda() else {"num_cpus": 1}

    def cost(self) -> float:
        """The number of labelled training utterances."""
        return float(len(self.data.train_ids) if self.subset is None else len(self.subset))

    def run(self, features) -> dict:
        fs, data = features[self.view], self.data
        idx = range(len(data.train_ids)) if self.subset is None else self.subset
        train_ids, train_labels = [data.train_ids[i] for i in idx], [data.train_labels[i] for i in idx]
        common = dict(config=self.config, device=self.device, test_ids=data.test_ids, test_labels=data.test_labels)
        if self.encoder is None:
            result = supervised_baseline(fs, train_ids, train_labels, data.val_ids, data.val_labels,
                                         norm_ids=data.pool_train, **common)
        else:
            result = finetune(self.encoder, fs, train_ids, train_labels, data.val_ids, data.val_labels, **common)
        row = dict(self.row, view=self.view)
        row.update({k: result.metrics[k] for k in (*METRICS, "best_epoch", "epochs_run", "steps")})
        row["n_labels"] = len(train_ids)
        row["n_classes"] = len(result.classes)  # the UAR of a guess is 1 / n_classes
        row["chance_uar"] = 1.0 / len(result.classes)
        row[HISTORY] = result.history["val_uar"].tolist()
        if data.test_speakers and result.test_pred:
            row[PER_SPEAKER] = per_speaker_uar(data.test_labels, result.test_pred, data.test_speakers)
        return row


def per_speaker_uar(truth: Sequence, pred: Sequence, speakers: Sequence) -> list[dict]:
    """``[{speaker, n_test, uar}]``: the UAR over each test speaker's utterances (over the classes they have)."""
    from sklearn.metrics import balanced_accuracy_score

    out = []
    for speaker in sorted(set(speakers)):
        idx = [i for i, s in enumerate(speakers) if s == speaker]
        out.append({"speaker": speaker, "n_test": len(idx),
                    "uar": float(balanced_accuracy_score([str(truth[i]) for i in idx], [str(pred[i]) for i in idx]))})
    return out
