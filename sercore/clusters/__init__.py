"""Paper B: emotion clusters in speaker embeddings and cluster-contrastive pre-training.

- ``analysis``: ``SpeakerClusterAnalysis`` (intra-speaker/global k-means vs emotions, permutation p-values).
- ``sampler``: ``pseudo_labels`` (speaker, intra-speaker cluster) and ``SpeakerClusterBatchSampler``.
- ``loss``: ``cluster_contrastive_loss``.
- ``pretrain``: ``pretrain_cluster_contrastive`` (contrastive / multitask / adversarial), ``SpeakerHead``,
  ``GradientReversal``.
- ``evaluate``: ``evaluate_cluster_pretraining`` (fine-tuning table against the baselines) with its ``ClusterGrid``.
- ``report``: the notebooks' cluster analysis and maps on an experiment's data.
"""

from sercore.clusters.analysis import SpeakerClusterAnalysis, contingency_scores, permutation_test
from sercore.clusters.evaluate import ClusterGrid, evaluate_cluster_pretraining
from sercore.clusters.loss import cluster_contrastive_loss, contrast_masks
from sercore.clusters.pretrain import (
                       ClusterPretrainConfig,
                       ClusterPretrainResult,
                       GradientReversal,
                       SpeakerHead,
                       grad_reverse,
                       lambda_at,
                       pretrain_cluster_contrastive,
)
from sercore.clusters.sampler import SpeakerClusterBatchSampler, pseudo_labels, pseudo_speakers

__all__ = ["SpeakerClusterAnalysis", "contingency_scores", "permutation_test", "ClusterGrid",
           "evaluate_cluster_pretraining", "cluster_contrastive_loss", "contrast_masks", "ClusterPretrainConfig",
           "ClusterPretrainResult",
           "GradientReversal", "SpeakerHead", "grad_reverse", "lambda_at", "pretrain_cluster_contrastive",
           "SpeakerClusterBatchSampler", "pseudo_labels", "pseudo_speakers"]
