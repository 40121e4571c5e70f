"""NeuralGeodesic: exact end points, exact derivative, checked activation."""

from __future__ import annotations

import pytest
import torch

from latentgeo.curves import NeuralGeodesic


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
