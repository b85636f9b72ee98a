"""Training shared by both papers: the pre-training epoch loop (``epochs``), linear-classifier fine-tuning
(``finetune``) and what they share (``loops``: encoders, batches, embeddings, scores), the on-disk caches of
pre-trained encoders and fine-tuning results (``pretrain_cache``, ``finetune_cache``), the fine-tuning job
(``jobs``), a fold's ids (``folds``) and running a grid into a result table (``grid``). Each paper's own
pre-training lives in its package: ``sercore.pairwise.pretrain`` (Pairwise-CL) and ``sercore.clusters.pretrain``.
"""

from sercore.training.finetune import FinetuneConfig, FinetuneResult, finetune, supervised_baseline
from sercore.training.folds import FoldData, fold_data, folds_of, pretraining_ids, sparse_subset
from sercore.training.grid import RESULT_COLUMNS, SUPERVISED, WORKER_PRELOAD, result_table, run_rows, training_engine
from sercore.training.jobs import HISTORY, METRICS, FinetuneJob
from sercore.training.loops import (
                                    INIT_LOCK,
                                    batch_indices,
                                    default_encoder,
                                    embed,
                                    encode_labels,
                                    encoder_kind,
                                    load_batch,
                                    normalize_if_needed,
                                    output_dim,
                                    scores,
)

__all__ = ["FinetuneConfig", "FinetuneResult", "batch_indices",
           "default_encoder", "embed", "encode_labels", "encoder_kind", "finetune", "load_batch",
           "normalize_if_needed", "output_dim", "scores",
           "supervised_baseline", "FoldData", "fold_data", "folds_of", "pretraining_ids", "sparse_subset",
           "FinetuneJob", "HISTORY", "METRICS", "RESULT_COLUMNS", "SUPERVISED", "WORKER_PRELOAD", "result_table",
           "run_rows", "training_engine", "INIT_LOCK"]
