"""Where the log map starts: the energy geodesic's velocity and a model of the Jacobian.

:func:`initial_velocity` is the first iterate of :func:`~latentgeo.solvers.log_map`
(:func:`start` adds the length of a curve known to join the end points);
:func:`initial_jacobian` the model of ``∂ exp_{z0}(v)/∂v`` that the first shot's
measurements check and correct (:mod:`latentgeo.solvers.logmap`), across the
directions of :func:`probe_directions` or all of :func:`across`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from latentgeo._validation import check_points, check_same_shape
from latentgeo.curves import DiscreteCurve, curve_length
from latentgeo.metrics import Metric
from latentgeo.metrics.jacobians import forward_jacobian
from latentgeo.solvers.connecting import available_methods, connecting_geodesic

__all__ = [
    "MAX_START_STRETCH",
    "PROBES",
    "across",
    "initial_jacobian",
    "initial_velocity",
    "jacobian_and_frames",
    "probe_directions",
    "start",
]

PROBES = 2  # random directions on which the Jacobian model is checked by differences

#: how many times longer than the straight segment between its ends (in ``G(z0)``'s norm)
#: a warm start may be before the segment replaces it (the Fréchet descent's, whose first-
#: order guesses after a long step can point around a sphere): no shortest geodesic is
#: longer than the segment, and a shot far beyond it (through a sphere's pole) costs
#: hundreds of integration steps before it stops (``step_underflow``; thousands before
#: dopri5 stopped blow-ups at its step floor). A start the user gives is shot as it is.
MAX_START_STRETCH = 1.5


def start(
    metric: Metric, z0: Tensor, z1: Tensor, init: object, init_options: dict[str, Any]
) -> tuple[Tensor, Tensor]:
    """The starting velocity ``(B, d)`` and the length ``(B,)`` of a curve known to join
    ``z0`` and ``z1``: the energy geodesic's (``init="energy"``), else the straight
    segment's (:func:`~latentgeo.curves.curve_length`'s quadrature; also where the
    energy geodesic's length is not finite). No shortest geodesic is longer, up to the
    quadrature's error."""
    if isinstance(init, str) and init == "energy" and "spline" in available_methods():
        v, length = _energy_start(metric, z0, z1, init_options)
        if bool(torch.isfinite(length).all()):
            return v, length
    else:
        v = initial_velocity(metric, z0, z1, init, init_options)
        length = torch.full(z0.shape[:1], torch.nan, dtype=z0.dtype, device=z0.device)
    segment = curve_length(metric, DiscreteCurve(z0, z1, num_points=2))
    return v, torch.where(torch.isfinite(length), length, segment)


def initial_velocity(
    metric: Metric, z0: Tensor, z1: Tensor, init: object, init_options: dict[str, Any]
) -> Tensor:
    """The starting velocity ``(B, d)``: ``"energy"``, ``"straight"`` or a given tensor."""
    if isinstance(init, Tensor):
        v = check_points(init, "init", dim=z0.shape[-1])
        check_same_shape(v, z0, "init", "z0")
        return v.detach()
    if init == "straight":
        return z1 - z0
    if init == "energy":
        if "spline" not in available_methods():
            return z1 - z0
        return _energy_start(metric, z0, z1, init_options)[0]
    raise ValueError(f"init must be 'energy', 'straight' or a (B, d) tensor, got {init!r}")


def _energy_start(
    metric: Metric, z0: Tensor, z1: Tensor, init_options: dict[str, Any]
) -> tuple[Tensor, Tensor]:
    """The energy geodesic's initial velocity, scaled to its length, and that length."""
    res = connecting_geodesic(metric, z0, z1, **{"method": "spline", **init_options})
    t0 = torch.zeros(1, dtype=z0.dtype, device=z0.device)
    v = res.curve.velocity(t0)[:, 0].detach()  # type: ignore[operator]
    # the velocity of a constant-speed geodesic has norm = length
    speed = metric.squared_norm(z0, v, validate=False).clamp_min(0.0).sqrt()
    length = res.length.detach().to(v.dtype)
    scale = torch.where(torch.isfinite(length / speed) & (speed > 0), length / speed, 1.0)
    v = v * scale[:, None]
    return torch.where(torch.isfinite(v).all(-1, keepdim=True), v, z1 - z0), length


def _sym_power(g: Tensor, power: float) -> Tensor:
    """``G^power`` of symmetric positive semi-definite ``(B, d, d)`` (eigenvalues clamped)."""
    e, u = torch.linalg.eigh(g)
    e = e.clamp_min(torch.finfo(g.dtype).tiny)
    return (u * e.pow(power)[..., None, :]) @ u.mT


def _polar(a: Tensor) -> Tensor:
    """The orthogonal factor of ``a`` ``(B, d, d)``: the rotation nearest to it."""
    u, _, vh = torch.linalg.svd(a)
    return u @ vh


def initial_jacobian(metric: Metric, z0: Tensor, z1: Tensor) -> Tensor:
    """A model of ``∂ exp_{z0}(v) / ∂v`` at the log map, ``(B, d, d)``.

    ``G(z1)^{−1/2} R G(z0)^{1/2}``: orthonormal frames at both ends joined by
    ``R``, the transport between them. For a pull-back of ``f`` (and sums,
    scalings and ensembles of them) ``R`` is the rotation nearest to
    ``U1ᵀ U0`` with ``U = J_f G^{−1/2}`` the orthonormal tangent frames in the
    embedding: the projection transport of a submanifold, exact to first
    order; it leaves only the curvature's bending of Jacobi fields out. For
    other metrics ``R = I`` (right for conformal metrics). The identity where
    the model is not finite.
    """
    return jacobian_and_frames(metric, z0, z1)[0]


def jacobian_and_frames(metric: Metric, z0: Tensor, z1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`initial_jacobian` and the square roots ``G(z0)^{1/2}``, ``G(z1)^{1/2}``
    ``(B, d, d)`` it is built from (the orthonormal frames in which the log map measures
    the Jacobian's condition, :mod:`latentgeo.solvers.logmap`)."""
    if metric.is_pullback:
        f = metric.flat_embedding
        j0, j1 = forward_jacobian(f, z0), forward_jacobian(f, z1)  # (B, m, d)
        g0, g1 = j0.mT @ j0, j1.mT @ j1
        h0, h1 = _sym_power(g0, -0.5), _sym_power(g1, -0.5)
        rot = _polar(h1 @ (j1.mT @ j0) @ h0)
    else:
        g0, g1 = metric.metric_tensor(z0), metric.metric_tensor(z1)
        h1 = _sym_power(g1, -0.5)
        rot = torch.eye(z0.shape[-1], dtype=z0.dtype, device=z0.device).expand_as(g0)
    root0, root1 = _sym_power(g0, 0.5), _sym_power(g1, 0.5)
    jac = h1 @ rot @ root0
    ok = torch.isfinite(jac).flatten(1).all(-1)
    eye = torch.eye(z0.shape[-1], dtype=z0.dtype, device=z0.device)
    return torch.where(ok[:, None, None], jac, eye), root0, root1


def across(x: Tensor, seeds: Tensor) -> Tensor:
    """Orthonormal directions ``(A, d, k)`` orthogonal to each ``x`` ``(A, d)``, from
    ``seeds`` ``(d, m)`` (``k = min(m, d − 1)``), by QR of ``[x̂, seeds]``."""
    unit = x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    seeds = seeds.to(x.device).expand(x.shape[0], -1, -1)
    return torch.linalg.qr(torch.cat([unit[..., None], seeds], -1))[0][..., 1:]


def probe_directions(x: Tensor) -> Tensor:
    """Orthonormal directions ``(A, d, k)`` orthogonal to each ``x`` ``(A, d)``: all
    ``d − 1`` of them up to ``PROBES + 1`` dimensions, else ``PROBES`` random ones
    (the same for every call: a fixed seed)."""
    d = x.shape[1]
    if d - 1 <= PROBES:
        return across(x, torch.eye(d, dtype=x.dtype))
    gen = torch.Generator().manual_seed(0)
    return across(x, torch.randn(d, PROBES, generator=gen, dtype=x.dtype))
