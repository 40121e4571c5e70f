"""The exact geometries are themselves right: closed forms against independent computations."""

from __future__ import annotations

import math

import torch

from latentgeo.metrics import as_metric
from latentgeo.testing import PoincareDisk, StereographicSphere, tolerance


def test_sphere_embedding_lies_on_the_sphere_and_projects_back() -> None:
    z = 3 * torch.randn(20, 3, dtype=torch.float64)
    x = StereographicSphere()(z)
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(20, dtype=torch.float64))
    torch.testing.assert_close(StereographicSphere.project(x), z)


def test_sphere_distance_special_cases() -> None:
    sphere = StereographicSphere()
    zero = torch.zeros(1, 2, dtype=torch.float64)
    unit = torch.tensor([[1.0, 0.0]], dtype=torch.float64)  # maps to the equator
    torch.testing.assert_close(sphere.distance(zero, unit), torch.tensor([math.pi / 2]).double())
    far = torch.tensor([[1e8, 0.0]], dtype=torch.float64)  # near the north pole
    torch.testing.assert_close(sphere.distance(zero, far), torch.tensor([math.pi]).double())


def test_sphere_exp_follows_the_great_circle(dtype: torch.dtype) -> None:
    sphere = StereographicSphere()
    z = torch.randn(10, 2, dtype=dtype)
    v = 0.5 * torch.randn(10, 2, dtype=dtype)
    speed = as_metric(sphere).norm(z, v)
    rtol, atol = tolerance(dtype, ops=100)
    torch.testing.assert_close(sphere.distance(z, sphere.exp(z, v)), speed, rtol=rtol, atol=atol)
    # a tiny step agrees with the first-order expansion z + v
    h = 1e-6
    torch.testing.assert_close(
        (sphere.exp(z.double(), h * v.double()) - z.double()) / h, v.double(), rtol=1e-5, atol=1e-5
    )


def test_sphere_log_is_the_pulled_back_great_circle_direction(dtype: torch.dtype) -> None:
    sphere = StereographicSphere()
    gen = torch.Generator().manual_seed(0)
    z0 = 1.5 * torch.randn(50, 3, generator=gen, dtype=torch.float64)
    z1 = 1.5 * torch.randn(50, 3, generator=gen, dtype=torch.float64)
    # independent: u on the sphere, pulled back by the least-squares solve with J from jacfwd
    x0, x1 = sphere(z0), sphere(z1)
    w = x1 - (x0 * x1).sum(-1, keepdim=True) * x0
    u = w / w.norm(dim=-1, keepdim=True) * sphere.distance(z0, z1)[:, None]
    jac = torch.func.vmap(torch.func.jacfwd(sphere))(z0)
    expected = torch.linalg.lstsq(jac, u[..., None]).solution[..., 0]
    v = sphere.log(z0.to(dtype), z1.to(dtype))
    rtol, atol = tolerance(dtype, ops=100)
    torch.testing.assert_close(v, expected.to(dtype), rtol=rtol, atol=atol)
    # it inverts exp, and its length in G is the distance
    torch.testing.assert_close(sphere.exp(z0, sphere.log(z0, z1)), z1, rtol=1e-10, atol=1e-12)
    speed = as_metric(sphere).norm(z0, sphere.log(z0, z1))
    torch.testing.assert_close(speed, sphere.distance(z0, z1), rtol=1e-12, atol=1e-12)


def test_poincare_distance_exp_log() -> None:
    disk = PoincareDisk()
    z = 0.6 * torch.rand(10, 2, dtype=torch.float64) - 0.3
    v = torch.randn(10, 2, dtype=torch.float64)
    y = disk.exp(z, v)
    torch.testing.assert_close(disk.distance(z, y), disk.norm(z, v))
    torch.testing.assert_close(disk.log(z, y), v)
    # from the origin: d(0, r e) = 2 artanh r
    r = torch.tensor([[0.3, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(
        disk.distance(torch.zeros_like(r), r), torch.tensor([2 * math.atanh(0.3)]).double()
    )
