"""Exponential and logarithm maps against closed forms; the "shooting" method."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentgeo.solvers import (
    ExpMapResult,
    LogMapResult,
    ShootingError,
    connecting_geodesic,
    exp_map,
    exp_map_result,
    log_map,
    log_map_result,
)
from latentgeo.testing import PoincareDisk, StereographicSphere


def mlp(d: int, m: int, hidden: int = 16) -> nn.Module:
    net = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, m))
    return net.requires_grad_(False)


def test_sphere_exp_matches_great_circle_adaptive() -> None:
    sphere = StereographicSphere()
    z = torch.randn(8, 2, dtype=torch.float64)
    v = 0.6 * torch.randn(8, 2, dtype=torch.float64)
    info = exp_map_result(sphere, z, v, rtol=1e-10, atol=1e-11)
    assert isinstance(info, ExpMapResult)
    assert info.status == ["converged"] * 8 and bool(info.converged.all())
    torch.testing.assert_close(info.point, sphere.exp(z, v), rtol=0, atol=1e-8)
    # per-pair step sizes: pairs with longer geodesics take more steps
    assert info.steps.min() < info.steps.max()


def test_sphere_exp_rk4_and_float32(dtype: torch.dtype) -> None:
    sphere = StereographicSphere()
    z = torch.randn(4, 2, dtype=dtype)
    v = 0.5 * torch.randn(4, 2, dtype=dtype)
    if dtype == torch.float64:
        out = exp_map(sphere, z, v, method="rk4", steps=24)
        torch.testing.assert_close(out, sphere.exp(z, v), rtol=0, atol=1e-5)
    else:
        out = exp_map(sphere, z, v)
        torch.testing.assert_close(out, sphere.exp(z, v), rtol=0, atol=1e-4)
    assert out.dtype == dtype


def test_poincare_exp_log_closed_forms() -> None:
    disk = PoincareDisk()
    z = 0.5 * torch.rand(6, 2, dtype=torch.float64) - 0.25
    v = 0.4 * torch.randn(6, 2, dtype=torch.float64)
    end = exp_map(disk, z, v, rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(end, disk.exp(z, v), rtol=0, atol=1e-9)
    info = log_map_result(disk, z, disk.exp(z, v), init="straight", steps=16)
    assert isinstance(info, LogMapResult) and bool(info.converged.all())
    torch.testing.assert_close(info.velocity, disk.log(z, disk.exp(z, v)), rtol=0, atol=1e-5)
    torch.testing.assert_close(info.length, disk.distance(z, disk.exp(z, v)), rtol=1e-5, atol=0)
    assert int(info.iterations.max()) <= 8  # Newton with exact Jacobians converges fast


def test_log_of_exp_is_identity_on_a_decoder() -> None:
    decoder = mlp(2, 5).double()
    z = torch.randn(6, 2, dtype=torch.float64)
    v = 0.5 * torch.randn(6, 2, dtype=torch.float64)
    end = exp_map(decoder, z, v, method="rk4", steps=16)
    back = log_map(decoder, z, end, init="straight", steps=16)  # inverts the same RK4 map
    torch.testing.assert_close(back, v, rtol=0, atol=1e-8)


def test_log_map_energy_initialisation() -> None:
    sphere = StereographicSphere()
    z0 = torch.tensor([[1.0, 0.5], [-0.3, 0.2]], dtype=torch.float64)
    z1 = torch.tensor([[-0.5, 2.0], [0.4, -0.6]], dtype=torch.float64)
    info = log_map_result(sphere, z0, z1, steps=16)  # init="energy"
    assert bool(info.converged.all())
    assert int(info.iterations.max()) <= 4  # the energy solver's start is close
    torch.testing.assert_close(info.length, sphere.distance(z0, z1), rtol=1e-4, atol=0)


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
        torch.testing.assert_close(info.path[:, k], expected, rtol=0, atol=1e-7)
    path = exp_map(disk, z, v, method="rk4", steps=8, return_path=True, num_points=3)
    assert path.shape == (1, 3, 2)
    torch.testing.assert_close(exp_map(disk, z, v, t=-1.0), disk.exp(z, -v), rtol=0, atol=1e-7)
    torch.testing.assert_close(exp_map(disk, z, v, t=0.0), z)


def test_one_base_point_many_directions_broadcast() -> None:
    disk = PoincareDisk()
    z = torch.zeros(1, 2, dtype=torch.float64)
    v = torch.randn(5, 2, dtype=torch.float64)
    out = exp_map(disk, z, v)
    assert out.shape == (5, 2)
    torch.testing.assert_close(out, disk.exp(z, v), rtol=0, atol=1e-7)


def test_gradients_flow_through_exp() -> None:
    disk = PoincareDisk()
    z = torch.tensor([[0.1, 0.2]], dtype=torch.float64)
    v = torch.tensor([[0.3, -0.1]], dtype=torch.float64, requires_grad=True)
    exp_map(disk, z, v, method="rk4", steps=16).sum().backward()
    w = v.detach().clone().requires_grad_(True)
    disk.exp(z, w).sum().backward()
    torch.testing.assert_close(v.grad, w.grad, rtol=1e-5, atol=1e-6)


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
    bad = log_map_result(decoder, z, z + 0.1, init="straight", steps=4)
    assert bad.status == ["converged", "nonfinite"] and bad.converged.tolist() == [True, False]
    out = log_map(decoder, z, z + 0.1, init="straight", steps=4)
    assert torch.isfinite(out[0]).all() and torch.isnan(out[1]).all()
    with pytest.raises(ShootingError, match=r"1 of 2 pairs.*pair 1: nonfinite"):
        log_map(decoder, z, z + 0.1, init="straight", steps=4, throw=True)


def test_bad_input_errors() -> None:
    disk = PoincareDisk()
    z = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="broadcast"):
        exp_map(disk, z, torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        exp_map(disk, z, torch.full((3, 2), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="method"):
        exp_map(disk, z, z, method="euler")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="t must be"):
        exp_map(disk, z, z, t=float("inf"))
    with pytest.raises(TypeError, match="dtype"):
        exp_map(mlp(2, 3), z, z)  # float32 decoder, float64 points
    with pytest.raises(ValueError, match="same shape"):
        log_map(disk, z, torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(B, d\)"):
        log_map(disk, torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="init"):
        log_map(disk, z, z, init="nope")  # type: ignore[arg-type]


def test_shooting_method_on_the_sphere() -> None:
    sphere = StereographicSphere()
    z0 = torch.tensor([[1.0, 0.5], [0.0, -1.0]], dtype=torch.float64)
    z1 = torch.tensor([[-0.5, 2.0], [0.7, 0.3]], dtype=torch.float64)
    res = connecting_geodesic(sphere, z0, z1, method="shooting", init="straight", steps=10)
    assert res.method == "shooting" and res.all_converged
    torch.testing.assert_close(res.length, sphere.distance(z0, z1), rtol=1e-3, atol=0)
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    pts = res.curve(t)
    torch.testing.assert_close(pts[:, 0], z0)
    torch.testing.assert_close(pts[:, -1], z1, rtol=0, atol=1e-8)
    # constant speed: energy = length²
    torch.testing.assert_close(res.energy, res.length**2, rtol=1e-4, atol=0)


def test_results_stay_on_the_device(device: torch.device) -> None:
    decoder = mlp(2, 4).double().to(device)
    z = torch.randn(3, 2, dtype=torch.float64, device=device)
    v = 0.3 * torch.randn(3, 2, dtype=torch.float64, device=device)
    info = exp_map_result(decoder, z, v, num_points=4)
    assert info.point.device == z.device and info.path.device == z.device
    assert info.converged.device == z.device
    back = log_map_result(decoder, z, info.point, init="straight", steps=8)
    assert back.velocity.device == z.device and bool(back.converged.all())
    res = connecting_geodesic(decoder, z, info.point, method="shooting", init="straight", steps=8)
    assert res.length.device == z.device and res.curve(torch.linspace(0, 1, 3)).device == z.device
