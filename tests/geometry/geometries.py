"""Closed forms shared by the geometry tests (not a test module)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.func import jacfwd, vmap

from latentgeo.curves import Curve
from latentgeo.memory import current_memory_budget
from latentgeo.metrics import ExplicitMetric, Metric, PullbackMetric
from latentgeo.testing import StereographicSphere

SPHERE = StereographicSphere()


def sphere_jacobian(z: Tensor) -> Tensor:
    """``J`` of the inverse stereographic projection by plain forward mode, ``(N, d + 1, d)``."""
    return vmap(jacfwd(SPHERE))(z)


def sphere_transport(z: Tensor, v: Tensor, w: Tensor) -> Tensor:
    """The embedded vector ``J w`` transported along the great circle ``exp_z(t v)``, t = 1.

    With ``u = V/|V|``, ``θ = |V|``: the component ``a u`` of ``W`` turns with the
    circle, ``a (−sin θ x + cos θ u)``; the normal component stays.
    """
    jac = sphere_jacobian(z)
    x = SPHERE(z)
    big_v = (jac @ v[..., None])[..., 0]
    big_w = (jac @ w[..., None])[..., 0]
    theta = big_v.norm(dim=-1, keepdim=True)
    u = big_v / theta
    a = (big_w * u).sum(-1, keepdim=True)
    return a * (-torch.sin(theta) * x + torch.cos(theta) * u) + (big_w - a * u)


def explicit_sphere() -> ExplicitMetric:
    """The stereographic sphere as the conformal metric ``4 / (1 + |z|²)² I``."""
    return ExplicitMetric(StereographicSphere.metric_tensor)


def flat_pullback(d: int, dtype: torch.dtype) -> PullbackMetric:
    """A linear decoder's metric (flat)."""
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(d + 2, d, generator=gen, dtype=torch.float64).to(dtype)
    return PullbackMetric(lambda z: z @ a.T)


def mlp_metric(d: int, dtype: torch.dtype) -> PullbackMetric:
    """A small smooth decoder's metric."""
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, 7)).to(dtype)
    net.requires_grad_(False)
    return PullbackMetric(net)


class Circle(Curve):
    """B origin-centred circles ``r_b (cos 2πt, sin 2πt)``, exactly (closed: z0 = z1)."""

    def __init__(self, radius: Tensor) -> None:
        start = torch.stack([radius, torch.zeros_like(radius)], -1)
        super().__init__(start, start)
        self.register_buffer("radius", radius.clone())

    def breakpoints(self) -> Tensor:
        return torch.tensor([0.0, 1.0], dtype=self.z0.dtype).expand(self.z0.shape[0], -1)

    def _evaluate(self, t: Tensor, *, derivative: bool) -> tuple[Tensor, Tensor | None]:
        angle = 2 * torch.pi * t
        r = self.radius[:, None, None]
        pos = r * torch.stack([angle.cos(), angle.sin()], -1)
        vel = 2 * torch.pi * r * torch.stack([-angle.sin(), angle.cos()], -1)
        return pos, (vel if derivative else None)


def sphere_log(z0: Tensor, z1: Tensor) -> Tensor:
    """The sphere's log map in stereographic coordinates, in closed form, ``(P, d)``."""
    x0, x1 = SPHERE(z0), SPHERE(z1)
    cos = (x0 * x1).sum(-1, keepdim=True).clamp(-1, 1)
    perp = x1 - cos * x0
    theta = torch.atan2(perp.norm(dim=-1, keepdim=True), cos)
    big_v = theta * perp / perp.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    jac = sphere_jacobian(z0)
    return torch.linalg.lstsq(jac, big_v[..., None]).solution[..., 0]


def record_budgets(metric: Metric) -> set[int]:
    """The memory budgets in force at each call of ``metric``'s evaluations, from now on
    (its ``metric_tensor``, ``squared_norm``, ``inner`` and ``geodesic_terms`` are wrapped
    on the instance): what an entry point's ``memory_budget=`` reached."""
    seen: set[int] = set()
    for name in ("metric_tensor", "squared_norm", "inner", "geodesic_terms"):
        method = getattr(metric, name)

        def wrapped(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
            seen.add(current_memory_budget())
            return _method(*args, **kwargs)

        object.__setattr__(metric, name, wrapped)
    return seen
