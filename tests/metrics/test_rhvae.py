"""The RHVAE metric: its inverse is the interpolated factor sum; norms by solves."""

from __future__ import annotations

import pytest
import torch

from latentgeo.metrics import Metric, RHVAEMetric
from latentgeo.testing import assert_close


def _random_metric(n: int = 5, d: int = 3, *, dtype: torch.dtype = torch.float64, **kw: float):
    centroids = torch.randn(n, d, dtype=dtype)
    factors = torch.randn(n, d, d, dtype=dtype).tril()
    opts = {"temperature": 0.8, "regularization": 0.01, **kw}
    return RHVAEMetric(centroids, factors, **opts), centroids, factors


def test_inverse_matches_the_formula(dtype: torch.dtype) -> None:
    g, c, L = _random_metric(dtype=dtype)
    z = torch.randn(4, 3, dtype=dtype)
    w = torch.exp(-(torch.cdist(z, c) ** 2) / 0.8**2) / 5  # (4, N)
    expected = torch.einsum("bn,nij->bij", w, L @ L.mT) + 0.01 * torch.eye(3, dtype=dtype)
    assert_close(g.inverse_metric_tensor(z), expected, ops=10)
    # the metric is the inverse, and norms / inner products agree with it
    G = g.metric_tensor(z)
    assert_close(G @ expected, torch.eye(3, dtype=dtype).expand(4, 3, 3), ops=1000)
    u, v = torch.randn(4, 3, dtype=dtype), torch.randn(4, 3, dtype=dtype)
    assert_close(g.squared_norm(z, v), torch.einsum("bi,bij,bj->b", v, G, v), ops=1000)
    assert_close(g.inner(z, u, v), torch.einsum("bi,bij,bj->b", u, G, v), ops=1000)
    assert isinstance(g, Metric) and g.latent_dim == 3


def test_at_a_centroid_with_small_temperature() -> None:
    # T -> 0: only the centroid itself contributes, G⁻¹ -> M_i / N + λ I
    g, c, L = _random_metric(n=4, d=2, temperature=1e-3)
    expected = L[2] @ L[2].T / 4 + 0.01 * torch.eye(2, dtype=torch.float64)
    assert_close(g.inverse_metric_tensor(c[2]), expected)
    # far from every centroid the metric is I / λ
    assert_close(g.metric_tensor(torch.full((2,), 1e3, dtype=torch.float64)), torch.eye(2) / 0.01)


def test_sum_form_and_batch_shapes() -> None:
    g_sum, c, L = _random_metric(normalize=False)
    g_mean = RHVAEMetric(c, L, temperature=0.8, regularization=0.01)
    z = torch.randn(2, 3, 3, dtype=torch.float64)
    reg = 0.01 * torch.eye(3, dtype=torch.float64)
    assert_close(g_sum.inverse_metric_tensor(z) - reg, 5 * (g_mean.inverse_metric_tensor(z) - reg))
    assert g_sum.metric_tensor(z).shape == (2, 3, 3, 3)


def test_moves_with_to_and_differentiates() -> None:
    g64 = _random_metric(dtype=torch.float32)[0].double()
    assert g64.factors.dtype == torch.float64
    z = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    g64.squared_norm(z, torch.ones(3, 3, dtype=torch.float64)).sum().backward()
    assert z.grad is not None and bool(torch.isfinite(z.grad).all())
    g32 = _random_metric(dtype=torch.float32)[0]
    with pytest.raises(TypeError, match="float32"):
        g32.metric_tensor(torch.zeros(3, dtype=torch.float64))


def test_bad_arguments_give_clear_errors() -> None:
    c = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="lower triangular"):
        RHVAEMetric(c, torch.ones(2, 2, 2), temperature=1.0, regularization=0.1)
    with pytest.raises(ValueError, match="factors must have shape"):
        RHVAEMetric(c, torch.eye(3).expand(2, 3, 3), temperature=1.0, regularization=0.1)
    with pytest.raises(ValueError, match="centroids"):
        RHVAEMetric(torch.zeros(2), torch.eye(2)[None], temperature=1.0, regularization=0.1)
    with pytest.raises(ValueError, match="temperature"):
        RHVAEMetric(c, torch.eye(2).expand(2, 2, 2), temperature=0.0, regularization=0.1)
    with pytest.raises(ValueError, match="regularization"):
        RHVAEMetric(c, torch.eye(2).expand(2, 2, 2), temperature=1.0, regularization=-1.0)
