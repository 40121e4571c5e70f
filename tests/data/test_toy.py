"""Toy data sets: shapes, labels, seeds, the lifting map."""

from __future__ import annotations

import math

import pytest
import torch

from latentgeo.data import LabeledData, lift, ring, semicircle, two_moons


def test_ring_lies_on_a_circle_with_angles() -> None:
    x, theta = ring(300, noise=0.0, radius=2.0, seed=0)
    assert x.shape == (300, 2) and x.dtype == torch.float32
    torch.testing.assert_close(x.norm(dim=1), torch.full((300,), 2.0))
    torch.testing.assert_close(
        torch.atan2(x[:, 1], x[:, 0]) % (2 * math.pi), theta, atol=1e-5, rtol=0
    )


def test_ring_is_seeded_and_noisy() -> None:
    a, b, c = ring(50, seed=1), ring(50, seed=1), ring(50, seed=2)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    r = ring(2000, noise=0.1, seed=0).x.norm(dim=1)
    assert 0.05 < float(r.std()) < 0.15


def test_lifted_ring_keeps_its_shape() -> None:
    data = ring(200, noise=0.0, ambient_dim=10, seed=0)
    assert isinstance(data, LabeledData) and data.x.shape == (200, 10)
    # the same map in every call, whatever the seed
    other = ring(200, noise=0.0, ambient_dim=10, seed=3)
    p = torch.stack([other.y.cos(), other.y.sin()], 1).double()
    torch.testing.assert_close(lift(p, 10).float(), other.x)
    # injective and smooth: far-apart angles map to far-apart points, close ones to close ones
    t = torch.tensor([0.0, 1e-3, math.pi], dtype=torch.float64)
    y = lift(torch.stack([t.cos(), t.sin()], 1), 10)
    assert float((y[0] - y[1]).norm()) < 1e-2 < 1.0 < float((y[0] - y[2]).norm())
    assert torch.equal(lift(p, 2), p)


def test_semicircle_and_moons() -> None:
    x, theta = semicircle(100, noise=0.0, seed=0)
    assert x.shape == (100, 2) and bool((x[:, 1] >= -1e-6).all())
    assert bool((theta >= 0).all()) and bool((theta <= math.pi).all())
    x, y = two_moons(101, seed=0)
    assert x.shape == (101, 2) and y.dtype == torch.long and set(y.tolist()) == {0, 1}
    assert ring(10, dtype=torch.float64).x.dtype == torch.float64


def test_bad_arguments_give_clear_errors() -> None:
    with pytest.raises(ValueError, match="n must be"):
        ring(0)
    with pytest.raises(ValueError, match="noise"):
        semicircle(10, noise=-0.1)
    with pytest.raises(ValueError, match="ambient_dim"):
        ring(10, ambient_dim=1)
    with pytest.raises(ValueError, match="radius"):
        ring(10, radius=0.0)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        lift(torch.zeros(3, 3), 5)
