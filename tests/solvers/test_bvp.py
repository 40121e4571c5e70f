"""The "bvp" method; shooting, boundary-value and energy solvers agree; the ODE residual."""

from __future__ import annotations

import torch

from latentgeo.solvers import HermiteCurve, Status, connecting_geodesic, geodesic_residual
from latentgeo.testing import PoincareDisk, StereographicSphere


def test_bvp_on_the_sphere_matches_great_circle_distance() -> None:
    sphere = StereographicSphere()
    z0 = torch.tensor([[1.0, 0.5], [0.0, -1.0]], dtype=torch.float64)
    z1 = torch.tensor([[-0.5, 2.0], [0.7, 0.3]], dtype=torch.float64)
    res = connecting_geodesic(sphere, z0, z1, method="bvp", tol=1e-8)
    assert res.method == "bvp" and res.status == ["converged", "converged"]
    assert isinstance(res.curve, HermiteCurve)
    torch.testing.assert_close(res.length, sphere.distance(z0, z1), rtol=1e-6, atol=0)
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    torch.testing.assert_close(res.curve(t)[:, [0, -1]], torch.stack([z0, z1], 1))


def test_shooting_bvp_and_energy_agree_on_length() -> None:
    disk = PoincareDisk()
    z0 = torch.tensor([[0.1, 0.2], [-0.4, 0.1]], dtype=torch.float64)
    z1 = torch.tensor([[-0.3, 0.4], [0.3, -0.2]], dtype=torch.float64)
    exact = disk.distance(z0, z1)
    energy = connecting_geodesic(disk, z0, z1, method="spline")
    bvp = connecting_geodesic(disk, z0, z1, method="bvp", tol=1e-8, init=energy.curve)
    shoot = connecting_geodesic(disk, z0, z1, method="shooting", init="straight")
    for res in (energy, bvp, shoot):
        assert res.all_converged, (res.method, res.status)
        torch.testing.assert_close(res.length, exact, rtol=1e-5, atol=0)
    # the energy solver's curve solves the geodesic ODE (at constant speed)
    t = torch.linspace(0.05, 0.95, 7, dtype=torch.float64)
    residual = geodesic_residual(disk, energy.curve, t)
    speed2 = energy.curve.velocity(t).pow(2).sum(-1, keepdim=True)
    assert (residual.norm(dim=-1) / speed2.norm(dim=-1)).max() < 5e-3  # about 5e-4 here


def test_bvp_failure_is_a_status_not_an_exception() -> None:
    sphere = StereographicSphere()
    z0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    z1 = torch.tensor([[-40.0, 30.0]], dtype=torch.float64)
    res = connecting_geodesic(sphere, z0, z1, method="bvp", tol=1e-12, max_nodes=31)
    assert not res.all_converged
    assert res.status[0] is Status.FAILED and res.message[0].startswith("scipy solve_bvp")
    assert torch.isfinite(res.length).all()
