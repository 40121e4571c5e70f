"""The log map's start: the energy geodesic's velocity and the Jacobian model it checks."""

from __future__ import annotations

import pytest
import torch

from latentgeo.curves import DiscreteCurve, curve_length
from latentgeo.metrics import as_metric
from latentgeo.solvers.logmap_start import initial_jacobian, initial_velocity, start
from latentgeo.testing import LinearMap, PoincareDisk, StereographicSphere


def test_linear_map_model_is_the_identity(dtype: torch.dtype) -> None:
    # exp_z(v) = z + v in a linear chart: the Jacobian is I, and so is the model
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    metric = as_metric(LinearMap(a).to(dtype))
    z0 = torch.randn(4, 3, generator=gen, dtype=torch.float64).to(dtype)
    z1 = torch.randn(4, 3, generator=gen, dtype=torch.float64).to(dtype)
    eye = torch.eye(3, dtype=dtype).expand(4, 3, 3)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(initial_jacobian(metric, z0, z1), eye, rtol=tol, atol=tol)


def test_sphere_model_against_the_closed_form_jacobian() -> None:
    # close pairs: the transport model is right to first order; near the conjugate point
    # (distance → π) it misses the curvature and ‖J⁻¹‖ by a large factor
    sphere = StereographicSphere()
    metric = as_metric(sphere)
    z0 = torch.tensor([[0.3, -0.2], [0.3, -0.2]], dtype=torch.float64)
    lam = 2.0 / (1.0 + (z0 * z0).sum(-1, keepdim=True))
    v = torch.tensor([[0.05, 0.0], [2.95, 0.0]], dtype=torch.float64) / lam
    z1 = sphere.exp(z0, v)
    exact = torch.stack(
        [torch.func.jacfwd(lambda u, z=z: sphere.exp(z, u))(w) for z, w in zip(z0, v, strict=True)]
    )
    model = initial_jacobian(metric, z0, z1)
    rel = torch.linalg.matrix_norm(model - exact, 2) / torch.linalg.matrix_norm(exact, 2)
    assert float(rel[0]) < 1e-3
    inv_ratio = torch.linalg.matrix_norm(torch.linalg.inv(exact), 2) / torch.linalg.matrix_norm(
        torch.linalg.inv(model), 2
    )
    assert float(inv_ratio[1]) > 5.0  # why the log map measures the Jacobian


def test_starts() -> None:
    disk = PoincareDisk()
    metric = as_metric(disk)
    z0 = torch.tensor([[0.1, 0.2], [-0.3, 0.1]], dtype=torch.float64)
    z1 = torch.tensor([[0.4, -0.1], [0.2, 0.3]], dtype=torch.float64)
    torch.testing.assert_close(initial_velocity(metric, z0, z1, "straight", {}), z1 - z0)
    given = torch.ones(2, 2, dtype=torch.float64)
    torch.testing.assert_close(initial_velocity(metric, z0, z1, given, {}), given)
    energy = initial_velocity(metric, z0, z1, "energy", {})
    exact = PoincareDisk.log(z0, z1)
    assert float(((energy - exact).norm(dim=-1) / exact.norm(dim=-1)).max()) < 1e-2
    with pytest.raises(ValueError, match="init"):
        initial_velocity(metric, z0, z1, "nope", {})


def test_start_bounds_the_distance_by_a_known_curve() -> None:
    # energy: the geodesic's length; otherwise the straight segment's (on the disk it is
    # longer than the geodesic between points off a common diameter)
    disk = PoincareDisk()
    metric = as_metric(disk)
    z0 = torch.tensor([[0.1, 0.2], [-0.3, 0.1]], dtype=torch.float64)
    z1 = torch.tensor([[0.4, -0.1], [0.2, 0.3]], dtype=torch.float64)
    exact = disk.distance(z0, z1)
    v, bound = start(metric, z0, z1, "energy", {})
    torch.testing.assert_close(v, initial_velocity(metric, z0, z1, "energy", {}))
    torch.testing.assert_close(bound, exact, rtol=1e-6, atol=0)
    for init in ("straight", torch.ones(2, 2, dtype=torch.float64)):
        _, segment = start(metric, z0, z1, init, {})
        assert bool((segment > exact * (1 + 1e-6)).all()), (segment, exact)
        want = curve_length(metric, DiscreteCurve(z0, z1, num_points=2), num_points=1024)
        torch.testing.assert_close(segment, want, rtol=1e-5, atol=0)
