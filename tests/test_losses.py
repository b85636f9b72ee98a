import math

import pytest
import torch
from pytorch_metric_learning.losses import NTXentLoss

from sercore.models.losses import nt_xent, pairwise_nt_xent


def _cos(a, b):
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def _loop_nt_xent(z1, z2, t, intra=True):
    """Written independently: explicit sums over anchors, both directions, averaged over 2B anchors."""
    batch = z1.shape[0]
    total = 0.0
    for anchors, others in ((z1, z2), (z2, z1)):
        for i in range(batch):
            pos = math.exp(_cos(anchors[i], others[i]) / t)
            denom = sum(math.exp(_cos(anchors[i], others[k]) / t) for k in range(batch))
            if intra:
                denom += sum(math.exp(_cos(anchors[i], anchors[k]) / t) for k in range(batch) if k != i)
            total += -math.log(pos / denom)
    return total / (2 * batch)


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("intra", [True, False])
def test_nt_xent_matches_explicit_loops(t, intra):
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    got = nt_xent(z1, z2, t, intra_view_negatives=intra)
    assert got.item() == pytest.approx(_loop_nt_xent(z1, z2, t, intra), rel=1e-9)


@pytest.mark.parametrize("t", [0.1, 0.5])
def test_nt_xent_matches_pytorch_metric_learning(t):
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    labels = torch.cat([torch.arange(8), torch.arange(8)])
    reference = NTXentLoss(temperature=t)(torch.cat([z1, z2]), labels)
    assert nt_xent(z1, z2, t).item() == pytest.approx(reference.item(), rel=1e-5)


def test_orthonormal_identical_views_closed_form_and_temperature():
    # 4 orthonormal rows, both views equal: s_pos = 1 and the 6 negatives have s = 0
    z = torch.eye(4, 8, dtype=torch.float64)
    for t in (0.1, 0.25, 0.5, 1.0):
        expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 6))
        assert nt_xent(z, z.clone(), t).item() == pytest.approx(expected, rel=1e-6)
    # aligned views: a lower temperature sharpens the softmax and lowers the loss
    assert nt_xent(z, z, 0.1) < nt_xent(z, z, 0.5) < nt_xent(z, z, 1.0)


def test_loss_is_invariant_to_batch_order_and_scale_but_not_to_pairing():
    g = torch.Generator().manual_seed(3)
    z1 = torch.randn(10, 4, generator=g)
    z2 = z1 + 0.1 * torch.randn(10, 4, generator=g)
    perm = torch.randperm(10, generator=g)
    base = nt_xent(z1, z2, 0.5)
    assert nt_xent(z1[perm], z2[perm], 0.5).item() == pytest.approx(base.item(), rel=1e-5)
    assert nt_xent(3 * z1, 0.5 * z2, 0.5).item() == pytest.approx(base.item(), rel=1e-5)  # cosine similarity
    assert nt_xent(z1, z2[perm], 0.5) > base + 0.5


def test_pairwise_equals_mean_of_pairs_for_three_views():
    g = torch.Generator().manual_seed(4)
    a, b, c = (torch.randn(5, 3, generator=g) for _ in range(3))
    expected = (nt_xent(a, b, 0.25) + nt_xent(a, c, 0.25) + nt_xent(b, c, 0.25)) / 3
    assert pairwise_nt_xent([a, b, c], 0.25).item() == pytest.approx(expected.item(), rel=1e-6)
    assert pairwise_nt_xent([a, b], 0.25).item() == pytest.approx(nt_xent(a, b, 0.25).item(), rel=1e-6)


def test_gradients_flow_to_every_view():
    zs = [torch.randn(4, 3, requires_grad=True) for _ in range(3)]
    pairwise_nt_xent(zs, 0.5).backward()
    assert all(z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0 for z in zs)


@pytest.mark.parametrize("z1, z2, t, message", [
    (torch.randn(4), torch.randn(4), 0.5, r"\[B, D\]"),
    (torch.randn(4, 3), torch.randn(5, 3), 0.5, "same shape"),
    (torch.randn(4, 3), torch.randn(4, 2), 0.5, "same shape"),
    (torch.randn(1, 3), torch.randn(1, 3), 0.5, "at least 2"),
    (torch.randn(4, 3), torch.randn(4, 3), 0.0, "temperature"),
])
def test_nt_xent_shape_errors(z1, z2, t, message):
    with pytest.raises(ValueError, match=message):
        nt_xent(z1, z2, t)


def test_pairwise_needs_two_views_of_matching_shapes():
    with pytest.raises(ValueError, match="K >= 2"):
        pairwise_nt_xent([torch.randn(4, 3)], 0.5)
    with pytest.raises(ValueError, match="same shape"):
        pairwise_nt_xent([torch.randn(4, 3), torch.randn(4, 3), torch.randn(3, 3)], 0.5)
