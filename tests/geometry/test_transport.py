"""Parallel transport: the sphere's closed form, holonomy, conservation of inner products."""

from __future__ import annotations

import math

import pytest
import torch

from latentgeo.curves import CubicSpline, DiscreteCurve
from latentgeo.geometry import parallel_transport, parallel_transport_result, transport_along_curve
from latentgeo.metrics import as_metric
from latentgeo.solvers import ShootingError, Status
from latentgeo.testing import PoincareDisk, StereographicSphere

from .geometries import SPHERE, Circle, record_budgets, sphere_jacobian, sphere_transport


def tight(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-11, "atol": 1e-13} if dtype == torch.float64 else {}


def test_sphere_transport_matches_great_circle_rotation(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(1)
    z, v, w = 0.7 * torch.randn(3, 64, 2, generator=gen, dtype=torch.float64)
    res = parallel_transport_result(SPHERE, z.to(dtype), v.to(dtype), w.to(dtype), **tight(dtype))
    assert res.status == [Status.CONVERGED] * 64 and bool(res.converged.all())
    z1 = res.points[:, -1].double()
    embedded = (sphere_jacobian(z1) @ res.vectors.double()[..., None])[..., 0]
    tol = 1e-8 if dtype == torch.float64 else 2e-4
    torch.testing.assert_close(embedded, sphere_transport(z, v, w), rtol=0, atol=tol)
    torch.testing.assert_close(z1, SPHERE.exp(z, v), rtol=0, atol=tol)


def test_frames_keep_their_inner_products(dtype: torch.dtype) -> None:
    """K = 3 vectors per curve: the Gram matrix is constant along any curve (here splines)."""
    disk = PoincareDisk()
    gen = torch.Generator().manual_seed(2)
    z0 = 0.4 * torch.rand(64, 2, generator=gen, dtype=dtype) - 0.2
    z1 = 0.4 * torch.rand(64, 2, generator=gen, dtype=dtype) - 0.2
    curve = CubicSpline(z0, z1, num_knots=3)
    with torch.no_grad():
        curve.inner.add_(0.1 * torch.randn(curve.inner.shape, generator=gen, dtype=dtype))
    frames = torch.randn(64, 3, 2, generator=gen, dtype=dtype)
    times = torch.linspace(0, 1, 5, dtype=dtype)
    res = transport_along_curve(disk, curve, frames, times=times, **tight(dtype))
    assert res.path.shape == (64, 5, 3, 2) and res.vectors.shape == (64, 3, 2)
    g = disk.metric_tensor(res.points)  # (64, 5, 2, 2)
    gram = torch.einsum("btki,btij,btlj->btkl", res.path, g, res.path)
    rtol = 1e-9 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(gram, gram[:, :1].expand_as(gram), rtol=rtol, atol=rtol)


def test_holonomy_around_a_latitude_circle() -> None:
    """Around the circle |z| = r (colatitude α from the south pole), vectors turn
    counter-clockwise by the enclosed area 2π(1 − cos α) (Gauss–Bonnet)."""
    r = torch.linspace(0.2, 1.5, 64, dtype=torch.float64)
    w = torch.stack([torch.zeros_like(r), torch.ones_like(r)], -1)  # tangent to the circle
    res = transport_along_curve(StereographicSphere(), Circle(r), w, rtol=1e-11, atol=1e-13)
    alpha = 2 * torch.atan(r)  # the south pole is z = 0
    turn = 2 * math.pi * (1 - torch.cos(alpha))
    # the curve is back at its start: compare angles there (conformal: angles are Euclidean)
    turned = torch.atan2(res.vectors[:, 1], res.vectors[:, 0]) - torch.pi / 2
    gap = torch.remainder(turned - turn + torch.pi, 2 * torch.pi) - torch.pi
    assert float(gap.abs().max()) < 1e-8
    torch.testing.assert_close(res.vectors.norm(dim=-1), w.norm(dim=-1), rtol=1e-9, atol=0)


def test_radial_transport_in_the_disk_scales_by_the_conformal_factor(dtype: torch.dtype) -> None:
    end = torch.linspace(-0.8, 0.8, 64, dtype=dtype)
    z1 = torch.stack([end, 0.5 * end], -1)
    line = DiscreteCurve(torch.zeros_like(z1), z1, num_points=2)
    w = torch.randn(64, 2, dtype=dtype)
    out = transport_along_curve(PoincareDisk(), line, w, **tight(dtype)).vectors
    factor = 1 - (z1 * z1).sum(-1, keepdim=True)  # λ(0) / λ(z1) with λ = 2 / (1 − |z|²)
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(out, factor * w, rtol=tol, atol=tol)


def test_along_the_geodesic_equals_along_its_curve() -> None:
    """The joint integration and transport along the (Hermite) curve of the same geodesic agree."""
    from latentgeo.solvers import geodesic_curve

    disk = PoincareDisk()
    z = 0.3 * torch.randn(8, 2, dtype=torch.float64)
    v = 0.5 * torch.randn(8, 2, dtype=torch.float64)
    w = torch.randn(8, 2, dtype=torch.float64)
    joint = parallel_transport(disk, z, v, w, rtol=1e-10, atol=1e-12)
    curve = geodesic_curve(disk, z, v, steps=256)
    along = transport_along_curve(disk, curve, w, rtol=1e-10, atol=1e-12).vectors
    torch.testing.assert_close(along, joint, rtol=1e-7, atol=1e-7)


def test_failures_are_reported_per_pair() -> None:
    disk = PoincareDisk()
    z = torch.tensor([[0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    v = torch.tensor([[0.5, 0.0], [1e3, 0.0]], dtype=torch.float64)  # the second leaves the disk
    res = parallel_transport_result(disk, z, v, torch.ones(2, 2, dtype=torch.float64), max_steps=50)
    assert res.status[0] is Status.CONVERGED and res.status[1] is not Status.CONVERGED
    assert bool(torch.isnan(res.vectors[1]).all())
    with pytest.raises(ShootingError, match="1 of 2 curves failed"):
        res.raise_if_failed()


def test_float32_and_decoders() -> None:
    metric = as_metric(StereographicSphere())
    z = torch.zeros(3, 2)
    out = parallel_transport(metric, z, torch.ones(3, 2), torch.ones(3, 2))
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())


def test_memory_budget_is_in_force_for_the_integration() -> None:
    disk = PoincareDisk()
    seen = record_budgets(disk)
    z, v, w = 0.2 * torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(5)).double()
    assert parallel_transport(disk, z, v, w, memory_budget=1_000_003).isfinite().all()
    assert seen == {1_000_003}
    seen.clear()
    line = DiscreteCurve(z, z + v, num_points=2)
    assert transport_along_curve(disk, line, w, memory_budget=2_000_003).status == ["converged"] * 4
    assert seen == {2_000_003}
    with pytest.raises(ValueError, match="memory_budget"):
        parallel_transport_result(disk, z, v, w, memory_budget=0)


def test_bad_input() -> None:
    disk = PoincareDisk()
    z = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"w must have shape \(B, d\) or \(B, K, d\)"):
        parallel_transport(disk, z, z, torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="dtype"):
        parallel_transport(disk, z, z, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="rtol and atol must be positive"):
        parallel_transport(disk, z, z, z, rtol=0.0)
    line = DiscreteCurve(z, z + 0.1, num_points=2)
    with pytest.raises(ValueError, match="times must be increasing"):
        transport_along_curve(disk, line, z, times=torch.tensor([0.5, 1.0], dtype=torch.float64))
