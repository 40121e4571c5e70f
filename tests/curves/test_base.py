"""The Curve base class: time validation, batching of shared times, one-pass evaluation."""

from __future__ import annotations

import pytest
import torch

from latentgeo.curves import CubicSpline, Curve
from latentgeo.curves.base import check_times


def test_times_are_checked_by_name_shape_and_range() -> None:
    ok = torch.linspace(0, 1, 5)
    assert check_times(ok, 3) is ok
    assert check_times(ok.expand(3, -1), 3).shape == (3, 5)
    with pytest.raises(TypeError, match=r"tau must be a floating torch\.Tensor"):
        check_times(torch.arange(3), 2, name="tau")
    with pytest.raises(ValueError, match=r"with B=2, got \(3, 5\)"):
        check_times(ok.expand(3, -1), 2)
    for bad in (torch.tensor([0.0, 1.5]), torch.tensor([float("nan")]), torch.tensor([-0.1])):
        with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
            check_times(bad, 1)


def test_shared_and_per_curve_times_agree_and_positions_come_with_velocities() -> None:
    torch.manual_seed(0)
    curve = CubicSpline(torch.randn(3, 2), torch.randn(3, 2), num_knots=3)
    with torch.no_grad():
        curve.inner.add_(torch.randn_like(curve.inner))
    t = torch.linspace(0, 1, 7)
    assert isinstance(curve, Curve) and (curve.num_curves, curve.dim) == (3, 2)
    torch.testing.assert_close(curve(t), curve(t.expand(3, -1)))
    pos, vel = curve.points_and_velocities(t)
    torch.testing.assert_close(pos, curve(t))
    torch.testing.assert_close(vel, curve.velocity(t))
    torch.testing.assert_close(pos[:, 0], curve.z0)
    torch.testing.assert_close(pos[:, -1], curve.z1)


def test_end_points_are_checked_and_copied() -> None:
    z0, z1 = torch.zeros(2, 3), torch.ones(2, 3)
    curve = CubicSpline(z0, z1, num_knots=1)
    z0.add_(5.0)  # the curve keeps its own copy
    assert torch.equal(curve.z0, torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"z0 must have shape \(B, d\)"):
        CubicSpline(torch.zeros(3), torch.ones(3), num_knots=1)
    with pytest.raises(ValueError, match="z1"):
        CubicSpline(torch.zeros(2, 3), torch.ones(2, 2), num_knots=1)
