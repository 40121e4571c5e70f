"""CubicSpline: scipy agreement (values, derivatives, at knots), knot insertion, fitting, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline

from latentgeo.curves import CubicSpline


def _random_spline(b: int = 3, d: int = 2, knots: int = 3, dtype=torch.float64) -> CubicSpline:
    z0, z1 = torch.randn(b, d, dtype=dtype), torch.randn(b, d, dtype=dtype)
    curve = CubicSpline(z0, z1, num_knots=knots)
    curve.insert_knot(torch.rand(b, dtype=dtype) * 0.9 + 0.05)  # non-uniform, per curve
    with torch.no_grad():
        curve.inner.add_(torch.randn_like(curve.inner))
    return curve


def test_values_and_derivatives_match_scipy_at_random_times_and_at_knots() -> None:
    curve = _random_spline()
    p = curve.control_points().detach().numpy()
    for b in range(curve.num_curves):
        knots = curve.knots[b]
        t = torch.cat([torch.rand(40, dtype=torch.float64), curve.breakpoints()[b]])
        ref = BSpline(knots.numpy(), p[b], 3)
        tb = t[None].expand(curve.num_curves, -1)
        np.testing.assert_allclose(curve(tb)[b].detach().numpy(), ref(t.numpy()), atol=1e-13)
        np.testing.assert_allclose(
            curve.velocity(tb)[b].detach().numpy(), ref.derivative()(t.numpy()), atol=1e-12
        )
        np.testing.assert_allclose(
            curve.acceleration(tb)[b].detach().numpy(), ref.derivative(2)(t.numpy()), atol=1e-11
        )


def test_end_points_and_straight_line_start() -> None:
    z0, z1 = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    curve = CubicSpline(z0, z1, num_knots=5)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    line = z0[:, None] + t[:, None] * (z1 - z0)[:, None]
    torch.testing.assert_close(curve(t), line, rtol=0, atol=1e-14)
    torch.testing.assert_close(curve.velocity(t), (z1 - z0)[:, None].expand(-1, 11, -1))


def test_knot_insertion_keeps_the_curve() -> None:
    curve = _random_spline()
    t = torch.rand(200, dtype=torch.float64)
    before, vel_before = curve(t).detach(), curve.velocity(t).detach()
    n = curve.num_control_points
    curve.insert_knot(0.3)
    curve.refine()
    curve.insert_knot(torch.tensor([0.11, 0.5, 0.93], dtype=torch.float64))
    assert curve.num_control_points == n + 3
    torch.testing.assert_close(curve(t), before, rtol=0, atol=1e-13)
    torch.testing.assert_close(curve.velocity(t), vel_before, rtol=0, atol=1e-11)


def test_inserting_several_knots_at_once_equals_one_by_one() -> None:
    one_by_one = _random_spline(knots=4)
    at_once = one_by_one.subset(torch.arange(3))
    u = torch.rand(3, 5, dtype=torch.float64) * 0.98 + 0.01
    u[:, -1] = u[:, 0]  # a double knot as well
    t = torch.rand(300, dtype=torch.float64)
    before = at_once(t).detach()
    for j in range(u.shape[1]):
        one_by_one.insert_knot(u[:, j])
    at_once.insert_knots(u)
    torch.testing.assert_close(at_once.knots, one_by_one.knots, rtol=0, atol=0)
    torch.testing.assert_close(at_once.inner, one_by_one.inner, rtol=0, atol=1e-12)
    torch.testing.assert_close(at_once(t), before, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="u must"):
        at_once.insert_knots(torch.full((3, 1), 1.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="u must"):
        at_once.insert_knots(torch.full((2, 1), 0.5, dtype=torch.float64))


def test_refine_halves_the_largest_span() -> None:
    curve = CubicSpline(torch.zeros(1, 2), torch.ones(1, 2), num_knots=0)
    seen = []
    for _ in range(3):
        curve.refine()
        seen.append(curve.breakpoints()[0].tolist())
    assert seen == [[0, 0.5, 1], [0, 0.25, 0.5, 1], [0, 0.25, 0.5, 0.75, 1]]


def test_fit_recovers_a_spline() -> None:
    target = _random_spline(knots=4)
    t = torch.linspace(0, 1, 50, dtype=torch.float64)
    fitted = CubicSpline(target.z0, target.z1, num_knots=4)
    fitted.knots = target.knots.clone()
    fitted.inner = torch.nn.Parameter(torch.zeros_like(target.inner))
    fitted.fit(t, target(t).detach())
    torch.testing.assert_close(fitted.inner, target.inner, rtol=1e-8, atol=1e-8)


def test_dtype_and_device(dtype: torch.dtype, device: torch.device) -> None:
    z0 = torch.randn(2, 2, dtype=dtype, device=device)
    curve = CubicSpline(z0, z0 + 1, num_knots=2)
    out = curve(torch.linspace(0, 1, 7, dtype=dtype, device=device))
    assert out.shape == (2, 7, 2) and out.dtype == dtype and out.device.type == device.type
    curve.refine()
    assert curve.knots.device.type == device.type


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: CubicSpline(torch.zeros(2, 2), torch.zeros(2, 2), num_knots=-1), "num_knots"),
        (lambda: CubicSpline(torch.zeros(2, 2), torch.zeros(3, 2)), "z0 and z1"),
        (lambda: CubicSpline(torch.zeros(2, 2), torch.zeros(2, 3)), "z0 and z1"),
        (lambda: CubicSpline(torch.full((2, 2), float("nan")), torch.zeros(2, 2)), "z0"),
        (lambda: CubicSpline(torch.zeros(2), torch.zeros(2)), "z0"),
        (lambda: CubicSpline(torch.zeros(2, 2), torch.zeros(2, 2)).insert_knot(1.0), "u"),
        (lambda: CubicSpline(torch.zeros(2, 2), torch.zeros(2, 2))(torch.tensor([1.5])), "t"),
        (lambda: CubicSpline(torch.zeros(2, 2), torch.zeros(2, 2))(torch.zeros(3, 4)), "t"),
    ],
)
def test_bad_input(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()
