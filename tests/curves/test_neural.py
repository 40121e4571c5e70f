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


def _targets(curve: NeuralGeodesic, t: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """Points of ``curve`` with its last layer set to ``last`` (a curve it can represent)."""
    with torch.no_grad():
        saved = curve.weights[-1].clone()
        curve.weights[-1].copy_(last)
        points = curve(t)
        curve.weights[-1].copy_(saved)
    return points


def test_fit_recovers_a_curve_the_network_can_represent() -> None:
    """The last layer is a linear least-squares problem: points made by the same hidden
    layers with another last layer are fitted to within 1e-7 (the damping at √eps moves
    them that little), the ends stay where they were (to rounding)."""
    gen = torch.Generator().manual_seed(3)
    z0 = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    z1 = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    curve = NeuralGeodesic(z0, z1, hidden=(6,), generator=torch.Generator().manual_seed(0))
    t = torch.linspace(0.0, 1.0, 33, dtype=torch.float64)
    last = torch.randn(3, 2, 6, generator=gen, dtype=torch.float64)
    points = _targets(curve, t, last)
    assert (points - curve(t)).abs().max() > 0.1  # the start is far from them
    rms = curve.fit(t, points)
    assert rms.shape == (3,) and bool((rms < 1e-7).all())
    ends = curve(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert torch.allclose(ends, torch.stack([z0, z1], 1), rtol=0, atol=1e-14)


@pytest.mark.parametrize("span", [(0.0, 1.0), (0.2, 0.8), (0.0, 0.5)])
def test_fit_on_times_that_do_not_reach_the_ends(span: tuple[float, float]) -> None:
    """The end-point correction uses the features at t = 0 and 1 whatever ``t`` holds
    (a reviewer: with times in [0.2, 0.8] the fit was 9.2 off an arc 0.2 from the line)."""
    z0, z1 = torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)
    t = torch.linspace(*span, 33, dtype=torch.float64)
    arc = torch.stack([t, t + 0.2 * torch.sin(torch.pi * t)], -1)[None]
    curve = NeuralGeodesic(z0, z1, hidden=(16,), generator=torch.Generator().manual_seed(0))
    assert float(curve.fit(t, arc)) < 1e-3


def test_fit_follows_a_curved_path_and_is_reproducible() -> None:
    """An arc the straight-line start misses by up to 0.3 is followed within 1e-3, and
    two fits are the same to the bit (the least squares by an SVD, not lstsq's default
    driver, whose result on the CPU depends on memory alignment)."""
    z0, z1 = torch.zeros(2, 2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)
    t = torch.linspace(0.0, 1.0, 65, dtype=torch.float64)
    bump = torch.sin(torch.pi * t)[None, :, None] * torch.tensor([[[0.2, -0.2]], [[0.1, 0.3]]])
    arc = z0[:, None] + t[None, :, None] * (z1 - z0)[:, None] + bump.double()
    fits = []
    for _ in range(2):
        curve = NeuralGeodesic(z0, z1, hidden=(16, 16), generator=torch.Generator().manual_seed(1))
        assert bool((curve.fit(t, arc) < 1e-3).all())
        fits.append(curve(t).detach())
        _ = torch.empty(7, dtype=torch.float64)  # shift later allocations
    assert torch.equal(fits[0], fits[1])


@pytest.mark.parametrize(
    ("t", "points", "match"),
    [
        (torch.linspace(0, 1, 5), torch.zeros(2, 4, 2), "points must have shape"),
        (torch.zeros(1), torch.zeros(2, 1, 2), "at least 2 times"),
    ],
)
def test_fit_refuses_bad_input(t, points, match) -> None:
    curve = NeuralGeodesic(torch.zeros(2, 2), torch.ones(2, 2))
    with pytest.raises(ValueError, match=match):
        curve.fit(t, points)
