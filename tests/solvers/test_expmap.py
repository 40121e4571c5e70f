"""Exponential maps to a stated tolerance against closed forms; gradients; bad options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentgeo.exceptions import PerformanceWarning
from latentgeo.solvers import ExpMapResult, ShootingError, Status, exp_map, exp_map_result
from latentgeo.solvers.expmap import geodesic_curve
from latentgeo.testing import LinearMap, PoincareDisk, StereographicSphere


def mlp(d: int, m: int, hidden: int = 16) -> nn.Module:
    net = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, m))
    return net.requires_grad_(False)


def geometry(name: str, dtype: torch.dtype, n: int = 8):
    """A metric with a closed-form exp map, base points and velocities."""
    gen = torch.Generator().manual_seed(3)
    if name == "sphere":
        z = torch.randn(n, 2, generator=gen, dtype=torch.float64)
        v = 0.4 * torch.randn(n, 2, generator=gen, dtype=torch.float64)
        geo = StereographicSphere()
        return geo, z.to(dtype), v.to(dtype), geo.exp(z, v).to(dtype)
    if name == "disk":
        z = 0.6 * torch.rand(n, 2, generator=gen, dtype=torch.float64) - 0.3
        v = 0.5 * torch.randn(n, 2, generator=gen, dtype=torch.float64)
        return PoincareDisk(), z.to(dtype), v.to(dtype), PoincareDisk.exp(z, v).to(dtype)
    a = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    z = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    v = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return LinearMap(a).to(dtype), z.to(dtype), v.to(dtype), (z + v).to(dtype)


@pytest.mark.parametrize("name", ["sphere", "disk", "linear"])
@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_within_the_stated_tolerance(name: str, method: str, dtype: torch.dtype) -> None:
    metric, z, v, exact = geometry(name, dtype)
    rtols = [1e-3, 1e-5] if dtype == torch.float32 else [1e-3, 1e-5, 1e-8]
    errors = []
    for rtol in rtols:
        info = exp_map_result(metric, z, v, method=method, rtol=rtol, atol=0.0)
        assert info.status == [Status.CONVERGED] * z.shape[0], (rtol, info.status)
        err = (info.point - exact).norm(dim=-1)
        assert bool((err <= rtol * exact.norm(dim=-1)).all()), (rtol, err.max())
        # the estimate bounds the error (up to the rounding of the reference itself)
        slack = 4 * torch.finfo(dtype).eps * exact.norm(dim=-1)
        assert bool((err <= info.error + slack).all())
        errors.append(float(err.max()))
    if name != "linear":  # straight lines are exact at any tolerance
        assert errors[-1] <= errors[0]


def test_default_tolerance_and_dtype(dtype: torch.dtype) -> None:
    metric, z, v, exact = geometry("sphere", dtype)
    out = exp_map(metric, z, v)
    assert out.dtype == dtype
    rtol = 1e-6 if dtype == torch.float64 else 1e-4
    assert bool(((out - exact).norm(dim=-1) <= rtol * exact.norm(dim=-1)).all())


def test_too_few_rk4_steps_is_an_integration_error() -> None:
    metric, z, v, exact = geometry("sphere", torch.float64)
    info = exp_map_result(metric, z, v, method="rk4", steps=2, rtol=1e-9)
    assert Status.INTEGRATION_ERROR in info.status
    bad = ~info.converged
    # the point is still there in the result, NaN in the plain tensor
    assert torch.isfinite(info.point[bad]).all()
    assert torch.isnan(exp_map(metric, z, v, method="rk4", steps=2, rtol=1e-9)[bad]).all()
    assert bool((info.error[bad] > 1e-9 * exact[bad].norm(dim=-1)).all())
    # an automatic step count meets the tolerance
    auto = exp_map_result(metric, z, v, method="rk4", rtol=1e-9, atol=0.0)
    assert auto.status == [Status.CONVERGED] * z.shape[0]


def test_unreachable_tolerance_is_reported() -> None:
    metric, z, v, _ = geometry("disk", torch.float32)
    info = exp_map_result(metric, z, v, rtol=1e-12, atol=0.0)
    assert set(info.status) == {Status.INTEGRATION_ERROR}
    assert not bool(info.converged.any())


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_gradients_match_finite_differences(method: str) -> None:
    sphere = StereographicSphere()
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    v = 0.5 * torch.randn(2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, generator=gen, dtype=torch.float64)
    opts = {"rtol": 1e-9, "atol": 0.0} if method == "dopri5" else {"steps": 32, "rtol": 1e-3}

    def f(zz: torch.Tensor, vv: torch.Tensor) -> torch.Tensor:
        return (w * exp_map(sphere, zz, vv, method=method, **opts)).sum()

    gz, gv = torch.autograd.grad(f(z, v), (z, v))
    eps = 1e-5
    for _ in range(2):  # directional derivatives along random directions of (z, v)
        dz, dv = torch.randn(2, 2, 2, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            fd = (f(z + eps * dz, v + eps * dv) - f(z - eps * dz, v - eps * dv)) / (2 * eps)
        torch.testing.assert_close((gz * dz).sum() + (gv * dv).sum(), fd, rtol=1e-6, atol=1e-9)
    # and the closed form's own gradient
    zc, vc = z.detach().requires_grad_(), v.detach().requires_grad_()
    want = torch.autograd.grad((w * sphere.exp(zc, vc)).sum(), (zc, vc))
    tol = 1e-8 if method == "dopri5" else 1e-5
    torch.testing.assert_close(gz, want[0], rtol=tol, atol=tol)
    torch.testing.assert_close(gv, want[1], rtol=tol, atol=tol)


def test_gradcheck_on_a_decoder() -> None:
    decoder = mlp(2, 5).double()
    z = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    v = 0.5 * torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: exp_map(decoder, a, b, method="rk4", steps=6, rtol=0.1), (z, v)
    )


def test_path_times_and_negative_t() -> None:
    disk = PoincareDisk()
    z = torch.tensor([[0.1, -0.2]], dtype=torch.float64)
    v = torch.tensor([[0.5, 0.3]], dtype=torch.float64)
    info = exp_map_result(disk, z, v, t=0.5, num_points=5)
    assert info.path.shape == (1, 5, 2) and info.path_velocity.shape == (1, 5, 2)
    torch.testing.assert_close(info.times, torch.linspace(0, 0.5, 5, dtype=torch.float64))
    torch.testing.assert_close(info.path[:, 0], z)
    for k in range(5):
        expected = disk.exp(z, float(info.times[k]) * v)
        torch.testing.assert_close(info.path[:, k], expected, rtol=0, atol=1e-6)
    path = exp_map(disk, z, v, method="rk4", steps=8, rtol=1e-3, return_path=True, num_points=3)
    assert path.shape == (1, 3, 2)
    torch.testing.assert_close(exp_map(disk, z, v, t=-1.0), disk.exp(z, -v), rtol=0, atol=1e-6)
    torch.testing.assert_close(exp_map(disk, z, v, t=0.0), z)


def test_one_base_point_many_directions_broadcast() -> None:
    disk = PoincareDisk()
    z = torch.zeros(1, 2, dtype=torch.float64)
    v = torch.randn(5, 2, dtype=torch.float64)
    out = exp_map(disk, z, v)
    assert out.shape == (5, 2)
    torch.testing.assert_close(out, disk.exp(z, v), rtol=1e-6, atol=1e-9)


def test_failed_pairs_are_reported_not_hidden() -> None:
    # a rank-deficient decoder: G is singular everywhere for the second point's line
    def decoder(z: torch.Tensor) -> torch.Tensor:
        return torch.stack([z[:, 0], z[:, 1] * (z[:, 0] > 0).to(z.dtype)], -1)

    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    v = torch.tensor([[0.1, 0.1], [0.1, 0.1]], dtype=torch.float64)
    info = exp_map_result(decoder, z, v)
    assert info.status == ["converged", "nonfinite"]
    assert info.converged.tolist() == [True, False]
    out = exp_map(decoder, z, v)
    assert torch.isfinite(out[0]).all() and torch.isnan(out[1]).all()
    with pytest.raises(ShootingError, match="pair 1: nonfinite") as err:
        exp_map(decoder, z, v, throw=True)
    assert isinstance(err.value.result, ExpMapResult)


def test_a_geodesic_through_the_charts_pole_stops_at_the_step_floor() -> None:
    """exp on the stereographic sphere past the north pole (at infinity in the chart): the
    pair fails as ``step_underflow`` in a few hundred steps (it took 3,164 steps and 8 s to
    overflow to ``nonfinite``); the other pair is unaffected."""
    z = torch.tensor([[0.5, 0.0], [0.3, 0.1]], dtype=torch.float64)
    v = torch.tensor([[2.0, 0.0], [0.2, 0.1]], dtype=torch.float64)
    info = exp_map_result(StereographicSphere(), z, v)
    assert info.status == ["step_underflow", "converged"] and int(info.steps[0]) < 1_000
    torch.testing.assert_close(info.point[1], StereographicSphere().exp(z, v)[1])
    with pytest.raises(ShootingError, match=r"pair 0: step_underflow .*blows up in finite time"):
        info.raise_if_failed()


def test_geodesic_curve_follows_the_exp_map() -> None:
    disk = PoincareDisk()
    z = torch.tensor([[0.1, -0.2], [0.3, 0.0]], dtype=torch.float64)
    v = torch.tensor([[0.5, 0.3], [-0.2, 0.6]], dtype=torch.float64)
    curve = geodesic_curve(disk, z, v, num_points=17)
    t = torch.tensor([0.3, 0.77], dtype=torch.float64)
    pts = curve(t)
    for k in range(2):
        torch.testing.assert_close(pts[:, k], disk.exp(z, float(t[k]) * v), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"rtol": 0.0}, r"rtol must be a finite number > 0"),
        ({"rtol": float("nan")}, r"rtol must be a finite number > 0"),
        ({"atol": -1e-9}, r"atol must be a finite number >= 0"),
        ({"max_steps": 0}, r"max_steps must be an int >= 1"),
        ({"steps": 0, "method": "rk4"}, r"steps must be an int >= 1"),
        ({"num_points": 1}, r"num_points must be an int >= 2"),
        ({"t": float("inf")}, "t must be a finite number"),
        ({"method": "euler"}, "method must be"),
    ],
)
def test_bad_options(options: dict[str, object], match: str) -> None:
    z = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=match):
        exp_map_result(PoincareDisk(), z, z, **options)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        exp_map(PoincareDisk(), z, z, **options)  # type: ignore[arg-type]
    if "t" not in options:
        with pytest.raises(ValueError, match=match):
            geodesic_curve(PoincareDisk(), z, z, **options)  # type: ignore[arg-type]


def test_bad_input_errors() -> None:
    disk = PoincareDisk()
    z = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="broadcast"):
        exp_map(disk, z, torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        exp_map(disk, z, torch.full((3, 2), float("nan"), dtype=torch.float64))
    with pytest.raises(TypeError, match="dtype"):
        exp_map(mlp(2, 3), z, z)  # float32 decoder, float64 points


def test_results_stay_on_the_device(device: torch.device) -> None:
    decoder = mlp(2, 4).double().to(device)
    z = torch.randn(3, 2, dtype=torch.float64, device=device)
    v = 0.3 * torch.randn(3, 2, dtype=torch.float64, device=device)
    info = exp_map_result(decoder, z, v, num_points=4)
    assert info.point.device == z.device and info.path.device == z.device
    assert info.converged.device == z.device and info.error.device == z.device


class _UntraceableSiLU(nn.Module):
    """A SiLU decoder that torch.fx cannot trace (a value-dependent branch): its geodesic
    terms come from nested ``torch.func`` JVPs, not the forward-mode engine."""

    def __init__(self, net: nn.Sequential) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z)
        if float(out.abs().max()) > 1e12:  # never taken; fx cannot trace it
            out = out / 2
        return out


def test_an_untraceable_silu_decoder_has_the_exp_map_of_its_traceable_twin() -> None:
    """An audit: exp_map on such a decoder raised NotImplementedError (PyTorch has no
    second-order forward rule for silu without gradient mode, and the integrator runs
    without it); now the same end points as the engine's path, within the tolerance."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 32), nn.SiLU(), nn.Linear(32, 20)).double().eval()
    z = torch.randn(4, 3, dtype=torch.float64)
    v = 0.5 * torch.randn(4, 3, dtype=torch.float64)
    with (
        pytest.warns(PerformanceWarning, match="no traced fast path"),
        pytest.warns(PerformanceWarning, match="run with gradients on"),  # silu's rule
    ):
        untraced = exp_map_result(_UntraceableSiLU(net), z, v)
    traced = exp_map_result(net, z, v)
    assert untraced.status == traced.status == [Status.CONVERGED] * 4
    torch.testing.assert_close(untraced.point, traced.point, rtol=0, atol=1e-8)
