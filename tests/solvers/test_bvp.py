"""The "bvp" method; shooting, boundary-value and energy solvers agree; the ODE residual."""

from __future__ import annotations

import pytest
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


def test_a_geodesic_longer_than_the_start_is_not_minimizing() -> None:
    """Random sphere pairs from the straight line: for four of eight, ``solve_bvp`` meets
    its tolerance on the long arc of the great circle, ``2π − d``; those are
    ``not_minimizing`` (longer than the straight segment, ``info["upper_bound"]``), the
    others converged on the short arc."""
    import math

    sphere = StereographicSphere()
    gen = torch.Generator().manual_seed(5)
    z0 = (torch.rand(8, 2, generator=gen, dtype=torch.float64) - 0.5) * 4
    z1 = (torch.rand(8, 2, generator=gen, dtype=torch.float64) - 0.5) * 4
    res = connecting_geodesic(sphere, z0, z1, method="bvp")
    exact = sphere.distance(z0, z1)
    long_arc = (res.length - (2 * math.pi - exact)).abs() < 1e-4
    assert int(long_arc.sum()) == 4  # what the test is about
    for i, is_long in enumerate(long_arc.tolist()):
        if is_long:
            assert res.status[i] is Status.NOT_MINIMIZING and not res.converged[i]
            assert res.length[i] > res.info["upper_bound"][i]
            assert "longer than the starting curve" in res.message[i]
        else:
            assert res.status[i] is Status.CONVERGED
            torch.testing.assert_close(res.length[i], exact[i], rtol=1e-5, atol=0)


def test_float32_defaults_to_a_tolerance_its_rounding_can_meet() -> None:
    """At ``tol = 1e-6`` two of these float32 sphere pairs failed (``solve_bvp`` of scipy
    1.17: too many mesh nodes); the float32 default, 1e-5, solves every one (converged, or honestly
    ``not_minimizing`` on a long arc), each converged length within 1e-5 of the exact."""
    sphere = StereographicSphere()
    gen = torch.Generator().manual_seed(5)
    z0 = (torch.rand(8, 2, generator=gen) - 0.5) * 4
    z1 = (torch.rand(8, 2, generator=gen) - 0.5) * 4
    res = connecting_geodesic(sphere, z0, z1, method="bvp")
    assert set(res.status) <= {Status.CONVERGED, Status.NOT_MINIMIZING}
    exact = sphere.distance(z0.double(), z1.double()).float()
    ok = res.converged
    torch.testing.assert_close(res.length[ok], exact[ok], rtol=1e-5, atol=0)


def test_an_initial_curve_must_join_the_end_points_of_every_pair() -> None:
    """``init`` is where ``solve_bvp`` starts and its length bounds the answer's: B curves
    from ``z0`` to ``z1``, or a clear error before any solve."""
    from latentgeo.curves import CubicSpline

    z0 = torch.tensor([[0.1, 0.2], [0.3, -0.1]], dtype=torch.float64)
    z1 = torch.tensor([[0.5, 0.4], [-0.2, 0.3]], dtype=torch.float64)
    with pytest.raises(ValueError, match="init must be a Curve of 2 curves"):
        connecting_geodesic(PoincareDisk(), z0, z1, method="bvp", init=CubicSpline(z0[:1], z1[:1]))
    with pytest.raises(ValueError, match="init must join z0 to z1"):
        connecting_geodesic(PoincareDisk(), z0, z1, method="bvp", init=CubicSpline(z0, z1 + 0.1))
    res = connecting_geodesic(PoincareDisk(), z0, z1, method="bvp", init=CubicSpline(z0, z1))
    assert res.converged.all()
