"""The local diagonal PCA metric (latentgeo.metrics.LocalPCAMetric; its tests live with the
geometry they serve): the closed form against a loop, exact derivatives, solvers accept it."""

from __future__ import annotations

import pytest
import torch

from latentgeo.metrics import LocalPCAMetric, christoffel_symbols
from latentgeo.solvers import Status, connecting_geodesic
from latentgeo.testing import tolerance


def loop_reference(data: torch.Tensor, z: torch.Tensor, sigma: float, rho: float) -> torch.Tensor:
    """The formula point by point, as written in the paper."""
    rows = []
    for x in z:
        w = torch.exp(-((data - x) ** 2).sum(-1) / (2 * sigma**2))
        rows.append(torch.diag(1.0 / ((w[:, None] * (data - x) ** 2).sum(0) + rho)))
    return torch.stack(rows)


def test_matches_the_formula(dtype: torch.dtype) -> None:
    data = torch.randn(50, 3, dtype=dtype)
    metric = LocalPCAMetric(data, sigma=0.5, rho=1e-2)
    z = torch.randn(64, 3, dtype=dtype)
    rtol, atol = tolerance(dtype, ops=10)
    torch.testing.assert_close(metric.metric_tensor(z), loop_reference(data, z, 0.5, 1e-2),
                               rtol=rtol, atol=atol)  # fmt: skip
    v = torch.randn(64, 3, dtype=dtype)
    g = metric.metric_tensor(z)
    torch.testing.assert_close(metric.squared_norm(z, v), torch.einsum("ni,nij,nj->n", v, g, v),
                               rtol=rtol, atol=atol)  # fmt: skip
    assert metric.metric_tensor(z.reshape(4, 16, 3)).shape == (4, 16, 3, 3)


def test_exact_derivatives_against_plain_autograd() -> None:
    data = torch.randn(30, 2, dtype=torch.float64)
    metric = LocalPCAMetric(data, sigma=0.7, rho=0.05)
    z = torch.randn(4, 2, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian
    dg = torch.stack([jac(metric.metric_tensor, z[i]) for i in range(4)])  # ∂_c G_ab: (n, a, b, c)
    g = metric.metric_tensor(z)
    first = 0.5 * (dg.permute(0, 1, 3, 2) + dg - dg.permute(0, 3, 1, 2))
    expected = torch.linalg.solve(g, first.reshape(4, 2, 4)).reshape(4, 2, 2, 2)
    torch.testing.assert_close(christoffel_symbols(metric, z), expected)


def test_geodesics_follow_the_data() -> None:
    """On the upper half circle, the geodesic from (−1, 0) to (1, 0) bends up along the data."""
    theta = torch.linspace(0, torch.pi, 100, dtype=torch.float64)
    data = torch.stack([theta.cos(), theta.sin()], -1)
    metric = LocalPCAMetric(data, sigma=0.15, rho=1e-3)
    res = connecting_geodesic(metric, data[:1], data[-1:])
    assert res.status == [Status.CONVERGED]
    mid = res.curve(torch.tensor([0.5], dtype=torch.float64))[0, 0]
    assert float(mid[1]) > 0.7


def test_checks() -> None:
    with pytest.raises(ValueError, match="sigma"):
        LocalPCAMetric(torch.zeros(3, 2), sigma=0.0)
    with pytest.raises(ValueError, match="data must have shape"):
        LocalPCAMetric(torch.zeros(3), sigma=1.0)
    metric = LocalPCAMetric(torch.zeros(3, 2), sigma=1.0)
    with pytest.raises(TypeError, match=r"metric\.to"):
        metric.metric_tensor(torch.zeros(1, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="last dimension d=2"):
        metric.metric_tensor(torch.zeros(1, 3))
