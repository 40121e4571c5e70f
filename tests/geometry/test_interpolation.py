"""Decoded interpolations: equal arc-length steps (equal chords on the sphere), decoders of
every kind."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal

from latentgeo.geometry import decode_curve, decoded_mean, straight_line
from latentgeo.models import EnsembleDecoder
from latentgeo.testing import StereographicSphere


def test_straight_lines_on_the_sphere_have_equal_arcs(dtype: torch.dtype) -> None:
    """Lines map to circles on the sphere: equal arcs along them are equal chords."""
    sphere = StereographicSphere()
    gen = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(2, 64, 2, generator=gen, dtype=torch.float64).to(dtype)
    res = decode_curve(sphere, straight_line(z0, z1), 7, min_pieces=64)
    assert res.outputs.shape == (64, 7, 3) and res.latents.shape == (64, 7, 2)
    chords = (res.outputs[:, 1:] - res.outputs[:, :-1]).norm(dim=-1)
    tol = 1e-5 if dtype == torch.float64 else 1e-3
    torch.testing.assert_close(chords, chords.mean(1, keepdim=True).expand_as(chords),
                               rtol=tol, atol=tol)  # fmt: skip
    fine = sphere(straight_line(z0, z1)(torch.linspace(0, 1, 4001, dtype=dtype)))
    polyline = (fine[:, 1:] - fine[:, :-1]).norm(dim=-1).sum(1)
    torch.testing.assert_close(res.length, polyline, rtol=tol, atol=tol)
    torch.testing.assert_close(res.outputs[:, 0], sphere(z0), rtol=tol, atol=tol)
    torch.testing.assert_close(res.outputs[:, -1], sphere(z1), rtol=tol, atol=tol)
    # the same curve evenly spaced in time: unequal arcs (the projection stretches)
    timed = decode_curve(sphere, straight_line(z0, z1), 7, spacing="time")
    torch.testing.assert_close(timed.latents[:, 3], 0.5 * (z0 + z1))
    assert bool((timed.times[:, 1:] > timed.times[:, :-1]).all())


def test_decoders_returning_distributions_and_ensembles() -> None:
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(2, 5), nn.Tanh()).double() for _ in range(3)]
    z = torch.randn(4, 2, dtype=torch.float64)
    ens = EnsembleDecoder(nets)
    torch.testing.assert_close(decoded_mean(ens, z), torch.stack([n(z) for n in nets]).mean(0))

    def gauss(x: torch.Tensor) -> Independent:
        return Independent(Normal(nets[0](x), 0.1 + 0 * x[..., :1].expand(-1, 5)), 1)

    torch.testing.assert_close(decoded_mean(gauss, z), nets[0](z))
    out = decode_curve(ens, straight_line(z[:2], z[2:]), 4)
    assert out.outputs.shape == (2, 4, 5)
    with pytest.raises(TypeError, match="must return a Tensor"):
        decoded_mean(lambda x: [x], z)


def test_bad_input() -> None:
    line = straight_line(torch.zeros(1, 2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="num_points"):
        decode_curve(StereographicSphere(), line, 1)
    with pytest.raises(ValueError, match="spacing"):
        decode_curve(StereographicSphere(), line, 3, spacing="pixels")  # type: ignore[arg-type]
