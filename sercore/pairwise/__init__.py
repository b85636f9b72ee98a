"""Paper A — Pairwise-CL (Khaertdinov et al., Interspeech 2024): the experiment grids (``grids``: temperature,
sparse labels, target vs out-of-distribution), test-set representations and their alignment
(``representations``), pre-training on other corpora (``crosscorpus``) and parameter counts (``parameters``).
"""

from sercore.pairwise.grids import (
                                    PRETRAINED,
                                    PairwiseGrid,
                                    PretrainJob,
                                    pretrain_fold,
                                    pretrain_many,
                                    sparse_label_grid,
                                    target_vs_ood,
                                    temperature_grid,
)
from sercore.pairwise.parameters import extractor_parameters, parameter_counts

__all__ = ["PRETRAINED", "PairwiseGrid", "PretrainJob", "pretrain_fold", "pretrain_many", "sparse_label_grid",
           "target_vs_ood", "temperature_grid", "extractor_parameters", "parameter_counts"]
