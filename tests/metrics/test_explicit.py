"""ExplicitMetric: a closed-form tensor field, checked at construction, batched like any metric."""

from __future__ import annotations

import pytest
import torch

from latentgeo.metrics import ExplicitMetric


def test_explicit_metric_checks_output_shape() -> None:
    g = ExplicitMetric(lambda z: z)
    with pytest.raises(ValueError, match=r"tensor_fn must return a tensor of shape \(N, 2, 2\)"):
        g.metric_tensor(torch.zeros(3, 2))


def test_explicit_metric_flattens_leading_batch_dims() -> None:
    """A tensor_fn written for (N, d) serves the (B, T, d) batches the solvers pass."""
    seen: list[tuple[int, ...]] = []

    def flat_only(z: torch.Tensor) -> torch.Tensor:  # (N, d) -> (N, d, d), nothing else
        assert z.ndim == 2
        seen.append(tuple(z.shape))
        s = 1.0 + (z * z).sum(1)
        return s[:, None, None] * torch.eye(2, dtype=z.dtype) + torch.einsum("ni,nj->nij", z, z)

    metric = ExplicitMetric(flat_only, latent_dim=2)
    assert seen == [(2, 2)]  # the one check at construction
    z = torch.randn(4, 5, 2, dtype=torch.float64)
    v = torch.randn(4, 5, 2, dtype=torch.float64)
    g = metric.metric_tensor(z)
    assert g.shape == (4, 5, 2, 2) and seen[-1] == (20, 2)
    torch.testing.assert_close(g[2, 3], flat_only(z[2, 3][None])[0])
    torch.testing.assert_close(
        metric.squared_norm(z, v), torch.einsum("...i,...ij,...j->...", v, g, v)
    )
    assert metric.metric_tensor(z[0, 0]).shape == (2, 2)


def test_explicit_metric_checks_symmetry_and_shape_at_construction() -> None:
    with pytest.raises(ValueError, match=r"symmetric.*\|G − Gᵀ\|"):
        ExplicitMetric(
            lambda z: torch.tensor([[1.0, 2.0], [0.0, 1.0]]).expand(z.shape[0], 2, 2), latent_dim=2
        )
    with pytest.raises(ValueError, match=r"shape \(N, 3, 3\)"):
        ExplicitMetric(lambda z: torch.eye(2).expand(z.shape[0], 2, 2), latent_dim=3)
    # without latent_dim nothing is called until the first evaluation
    calls: list[int] = []
    lazy = ExplicitMetric(lambda z: calls.append(1) or torch.eye(2).expand(z.shape[0], 2, 2))
    assert not calls
    assert lazy.metric_tensor(torch.zeros(3, 2)).shape == (3, 2, 2) and calls
