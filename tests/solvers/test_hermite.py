"""Hermite curves and the quadrature that reports their lengths."""

from __future__ import annotations

import torch

from latentgeo.curves import curve_energy, curve_length
from latentgeo.metrics import as_metric
from latentgeo.solvers import HermiteCurve
from latentgeo.solvers.hermite import length_and_energy
from latentgeo.testing import StereographicSphere


def test_reproduces_a_cubic_and_its_velocity() -> None:
    knots = torch.linspace(0, 1, 4, dtype=torch.float64)
    p = torch.stack([knots, knots**3], -1)[None]
    v = torch.stack([torch.ones(4, dtype=torch.float64), 3 * knots**2], -1)[None]
    curve = HermiteCurve(knots, p, v)
    t = torch.tensor([0.1, 0.45, 0.9], dtype=torch.float64)
    torch.testing.assert_close(curve(t)[0], torch.stack([t, t**3], -1))
    torch.testing.assert_close(
        curve.velocity(t)[0], torch.stack([torch.ones(3), 3 * t**2], -1).double()
    )


def test_length_and_energy_are_curve_length_and_curve_energy() -> None:
    sphere = StereographicSphere()
    knots = torch.linspace(0, 1, 6, dtype=torch.float64)
    p = torch.stack([torch.cos(3 * knots), torch.sin(2 * knots)], -1).expand(2, 6, 2)
    v = torch.stack([-3 * torch.sin(3 * knots), 2 * torch.cos(2 * knots)], -1).expand(2, 6, 2)
    curve = HermiteCurve(knots, p * torch.tensor([[[1.0]], [[0.5]]], dtype=torch.float64), v)
    length, energy = length_and_energy(as_metric(sphere), curve)
    torch.testing.assert_close(length, curve_length(sphere, curve), rtol=1e-13, atol=0)
    torch.testing.assert_close(energy, curve_energy(sphere, curve), rtol=1e-13, atol=0)
