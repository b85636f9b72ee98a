"""Contrastive losses of Pairwise-CL (pure functions of tensors).

NT-Xent (SimCLR, Chen et al. 2020) between two views ``z1, z2: [B, D]`` of the same B utterances, with cosine
similarity ``s`` and temperature ``τ``. For anchor ``z1_l`` the positive is ``z2_l``; the loss is

    ℓ(l; 1→2) = -log  exp(s(z1_l, z2_l)/τ) / Σ_{k ≠ l in the 2B samples} exp(s(z1_l, x_k)/τ)

where the 2B samples are ``z1`` and ``z2`` stacked (so the negatives are the 2B-2 other utterances of *both*
views), and symmetrically ``ℓ(l; 2→1)`` with ``z2_l`` as anchor. ``nt_xent`` returns
``(1/2B) Σ_l [ℓ(l; 1→2) + ℓ(l; 2→1)]``. This is the paper's Eq. 1 (NT-Xent as in its reference [24], SimCLR)
and Eq. 2 (the mean over both directions and the batch), and equals ``pytorch_metric_learning``'s ``NTXentLoss``
on the stacked batch with labels ``[0..B-1, 0..B-1]``. With ``intra_view_negatives=False`` the denominator
keeps only the other view (``Σ_k exp(s(z1_l, z2_k)/τ)``, k = 1..B, positive included): the CMC/CLIP form.

``pairwise_nt_xent`` is Eq. 3: the mean of ``nt_xent`` over the C(K, 2) pairs of K views.
"""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import torch
import torch.nn.functional as F


def _check_pair(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> None:
    if not (isinstance(z1, torch.Tensor) and isinstance(z2, torch.Tensor)):
        raise ValueError("nt_xent: z1 and z2 must be torch tensors")
    if z1.dim() != 2 or z2.dim() != 2:
        raise ValueError(f"nt_xent: z1 and z2 must be [B, D], got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape != z2.shape:
        raise ValueError(f"nt_xent: z1 and z2 must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] < 2:
        raise ValueError(f"nt_xent: needs a batch of at least 2 (negatives), got B={z1.shape[0]}")
    if not temperature > 0:
        raise ValueError(f"nt_xent: temperature must be > 0, got {temperature}")


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5, *,
            intra_view_negatives: bool = True) -> torch.Tensor:
    """Symmetric NT-Xent between two views ``z1, z2: [B, D]`` (row l of both = utterance l) → scalar.

    See the module docstring for the exact formula. Raises ``ValueError`` on shapes other than two equal
    ``[B, D]`` with B ≥ 2, or a temperature ≤ 0.
    """
    _check_pair(z1, z2, temperature)
    batch = z1.shape[0]
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    target = torch.arange(batch, device=z1.device)
    if not intra_view_negatives:
        logits = z1 @ z2.T / temperature
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    z = torch.cat([z1, z2])
    logits = (z @ z.T / temperature).masked_fill(torch.eye(2 * batch, dtype=torch.bool, device=z.device),
                                                  float("-inf"))
    return F.cross_entropy(logits, torch.cat([target + batch, target]))


def pairwise_nt_xent(zs: Sequence[torch.Tensor], temperature: float = 0.5, *,
                     intra_view_negatives: bool = True) -> torch.Tensor:
    """Pairwise-CL loss: mean of ``nt_xent`` over the C(K, 2) pairs of ``zs`` (K ≥ 2 tensors ``[B, D]``).

    The views may have different dimensions D only if each pair matches; in Pairwise-CL all projections are
    ``[B, 128]``. Raises ``ValueError`` for K < 2 or mismatched shapes.
    """
    zs = list(zs)
    if len(zs) < 2:
        raise ValueError(f"pairwise_nt_xent: needs K >= 2 views, got {len(zs)}")
    losses = [nt_xent(a, b, temperature, intra_view_negatives=intra_view_negatives) for a, b in combinations(zs, 2)]
    return torch.stack(losses).mean()
