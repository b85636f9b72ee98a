"""Cluster-contrastive loss (paper B): supervised contrastive loss over (speaker, intra-speaker cluster) labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

NEGATIVES = ("speaker", "all")


def _check(z: torch.Tensor, speaker: torch.Tensor, cluster: torch.Tensor, temperature: float, negatives: str) -> None:
    if z.dim() != 2:
        raise ValueError(f"z must be [B, D], got shape {tuple(z.shape)}")
    if z.shape[0] < 2:
        raise ValueError(f"z needs at least 2 rows to contrast, got {z.shape[0]}")
    for name, t in (("speaker", speaker), ("cluster", cluster)):
        if t.shape != (z.shape[0],):
            raise ValueError(f"{name} must be [B] = [{z.shape[0]}], got shape {tuple(t.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")


def contrast_masks(speaker: torch.Tensor, cluster: torch.Tensor,
                   negatives: str = "speaker") -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean ``[B, B]`` masks ``(positives, denominator)`` for anchors (rows) and candidates (columns).

    Positives share speaker and cluster (not the anchor itself). The denominator holds the positives plus the
    negatives: the same speaker's other clusters (``"speaker"``) or every other utterance (``"all"``).
    """
    same_spk = speaker[:, None] == speaker[None, :]
    same_clu = cluster[:, None] == cluster[None, :]
    not_self = ~torch.eye(len(speaker), dtype=torch.bool, device=speaker.device)
    positives = same_spk & same_clu & not_self
    denominator = (same_spk if negatives == "speaker" else torch.ones_like(same_spk)) & not_self
    return positives, denominator


def cluster_contrastive_loss(z: torch.Tensor, speaker: torch.Tensor, cluster: torch.Tensor, *,
                             temperature: float = 0.1, negatives: str = "speaker") -> torch.Tensor:
    """Supervised-contrastive loss where positives share speaker and intra-speaker cluster.

    ``z: [B, D]`` projections (cosine similarity is used, so they need not be normalised); ``speaker: [B]`` and
    ``cluster: [B]`` integer labels (cluster ids may be local to a speaker). For an anchor ``i`` with positives
    ``P(i)`` and denominator set ``A(i)`` (positives + negatives, see ``contrast_masks``):
    ``l_i = -1/|P(i)| * sum_{p in P(i)} log( exp(s_ip/t) / sum_{a in A(i)} exp(s_ia/t) )``; the loss is the mean
    over anchors. Anchors without a positive, or without any negative (nothing to contrast), are excluded;
    a batch where no anchor qualifies raises ``ValueError`` (``SpeakerClusterBatchSampler`` never builds one).
    Returns a scalar tensor.
    """
    _check(z, speaker, cluster, temperature, negatives)
    positives, denominator = contrast_masks(speaker, cluster, negatives)
    has_negative = (denominator & ~positives).any(dim=1)
    anchors = positives.any(dim=1) & has_negative
    if not anchors.any():
        raise ValueError("cluster_contrastive_loss: no anchor has both a positive (same speaker and cluster) "
                         f"and a negative ({negatives!r} mode); check the batch composition")
    zn = F.normalize(z, dim=1)
    # only anchor rows: a row with an empty denominator would give NaN gradients through logsumexp
    logits = (zn[anchors] @ zn.T) / temperature
    positives, denominator = positives[anchors], denominator[anchors]
    log_denominator = torch.logsumexp(logits.masked_fill(~denominator, float("-inf")), dim=1, keepdim=True)
    log_prob = (logits - log_denominator).masked_fill(~positives, 0.0)
    return (-log_prob.sum(dim=1) / positives.sum(dim=1)).mean()
