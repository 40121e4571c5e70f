"""DiscreteCurve, NeuralGeodesic and constant-speed reparametrisation."""

from __future__ import annotations

import pytest
import torch

from latentgeo.curves import CubicSpline, DiscreteCurve, NeuralGeodesic, constant_speed
from latentgeo.metrics import as_metric
from latentgeo.testing import StereographicSphere


def test_discrete_curve_is_piecewise_linear() -> None:
    z0, z1 = torch.zeros(2, 2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)
    curve = DiscreteCurve(z0, z1, num_points=5)
    with torch.no_grad():
        curve.inner[:, 1] += torch.tensor([1.0, -1.0], dtype=torch.float64)
    verts = curve.vertices().detach()
    t = torch.tensor([0.0, 0.25, 0.375, 0.5, 1.0], dtype=torch.float64)
    out = curve(t).detach()
    torch.testing.assert_close(out[:, 1], verts[:, 1])
    torch.testing.assert_close(out[:, 2], 0.5 * (verts[:, 1] + verts[:, 2]))
    torch.testing.assert_close(out[:, -1], z1)
    vel = curve.velocity(torch.tensor([0.3], dtype=torch.float64)).detach()
    torch.testing.assert_close(vel[:, 0], 4 * (verts[:, 2] - verts[:, 1]))


def test_neural_geodesic_end_points_are_exact(dtype: torch.dtype) -> None:
    z0, z1 = torch.randn(6, 3, dtype=dtype), torch.randn(6, 3, dtype=dtype)
    curve = NeuralGeodesic(z0, z1, hidden=(8, 8), activation="sin")
    with torch.no_grad():
        for w in curve.weights:
            w.normal_(std=3.0)
        for c in curve.biases:
            c.normal_(std=3.0)
    ends = curve(torch.tensor([0.0, 1.0], dtype=dtype)).detach()
    assert torch.equal(ends[:, 0], z0) or torch.allclose(ends[:, 0], z0, rtol=0, atol=1e-6)
    torch.testing.assert_close(ends[:, 0], z0, rtol=0, atol=8 * torch.finfo(dtype).eps * 10)
    torch.testing.assert_close(ends[:, 1], z1, rtol=0, atol=8 * torch.finfo(dtype).eps * 10)


def test_neural_geodesic_velocity_is_the_exact_derivative() -> None:
    z0, z1 = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    curve = NeuralGeodesic(z0, z1, hidden=(16,))
    with torch.no_grad():
        curve.weights[-1].normal_()
    t = torch.tensor([0.2, 0.7], dtype=torch.float64)
    h = 1e-6
    fd = (curve(t + h) - curve(t - h)).detach() / (2 * h)
    torch.testing.assert_close(curve.velocity(t).detach(), fd, rtol=1e-7, atol=1e-8)
    # each pair has its own network: changing pair 0 leaves pair 1 alone
    before = curve(t)[1].detach()
    with torch.no_grad():
        curve.weights[0][0].add_(1.0)
    torch.testing.assert_close(curve(t)[1].detach(), before)


def test_neural_geodesic_bad_activation() -> None:
    with pytest.raises(ValueError, match="activation"):
        NeuralGeodesic(torch.zeros(1, 2), torch.ones(1, 2), activation="nope")


def test_discrete_bad_num_points() -> None:
    with pytest.raises(ValueError, match="num_points"):
        DiscreteCurve(torch.zeros(1, 2), torch.ones(1, 2), num_points=1)


def test_constant_speed_keeps_path_and_end_points() -> None:
    sphere = StereographicSphere()
    z0 = torch.tensor([[-2.0, 0.5], [0.3, 0.1]], dtype=torch.float64)
    z1 = torch.tensor([[2.0, 1.0], [0.2, -0.4]], dtype=torch.float64)
    base = CubicSpline(z0, z1, num_knots=6)
    fast = constant_speed(sphere, base, min_pieces=64)
    t = torch.linspace(0, 1, 33, dtype=torch.float64)
    speed = as_metric(sphere).norm(fast(t), fast.velocity(t)).detach()
    assert float((speed / speed.mean(1, keepdim=True) - 1).abs().max()) < 1e-5
    torch.testing.assert_close(fast(torch.tensor([0.0, 1.0], dtype=torch.float64)).detach(),
                               torch.stack([z0, z1], 1))  # fmt: skip
    # same path: the straight segment stays on its line
    pts = fast(t).detach()
    direction = (z1 - z0) / (z1 - z0).norm(dim=-1, keepdim=True)
    off = pts - z0[:, None]
    perp = off - (off * direction[:, None]).sum(-1, keepdim=True) * direction[:, None]
    assert float(perp.abs().max()) < 1e-12
