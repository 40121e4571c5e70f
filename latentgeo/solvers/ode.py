"""The geodesic ODE and batched integrators for it.

A geodesic satisfies ``γ̈ = −G(γ)⁻¹ b(γ, γ̇)``; the terms ``(G, b)`` are asked of
the metric (:meth:`~latentgeo.metrics.Metric.geodesic_terms`):

* for a pull-back ``G = Jᵀ J`` of ``f`` (every decoder metric, the Gaussian
  expected metric included): ``b = Jᵀ ∂²f[γ̇, γ̇]``, ``J`` and the second
  directional derivative from one second-order forward-mode pass of the
  engine (:mod:`latentgeo.metrics.forward`). ``G`` needs ``J`` anyway, so
  ``Jᵀ ∂²f`` is then an ``m × d`` contraction; a vector-Jacobian product would
  cost a reverse pass on top (and a tape) for the same ``d`` numbers. Nothing
  of size ``m × d × d`` (a Hessian) is formed. Sums, means (ensembles) and
  scalings add their terms' ``G`` and ``b``.
* for any other metric (explicit ``G(z)``, feature metrics): the Christoffel
  form ``b^a = ∂_c G_ab γ̇^b γ̇^c − ½ ∂_a G_bc γ̇^b γ̇^c`` (``= G Γ(γ̇, γ̇)``), with
  ``∂G`` by forward mode through the metric tensor.

Both forms agree where both apply (for a pull-back, ``∂G[v] v − ½ ∇(vᵀGv) = Jᵀ ∂²f[v, v]``).

Integrators (:mod:`latentgeo.solvers.integrators`, re-exported here) work on the
first-order state ``y = (γ, γ̇)`` of shape ``(B, 2d)``:
fixed-step RK4 (:func:`rk4`) and an adaptive Dormand–Prince 5(4) with
per-pair step sizes and error control (:func:`dopri5`). Every pair is
integrated independently but in one batched call; pairs that finish, fail or
are rejected never hold the others back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor
from torch.func import jvp

from latentgeo._validation import check_points, check_tangent
from latentgeo.exceptions import NumericsWarning, warn_once
from latentgeo.metrics import GeodesicTerms, Metric, MetricLike, as_metric, christoffel_terms
from latentgeo.solvers.integrators import RHS, IntegrationResult, dopri5, rk4

__all__ = [
    "IntegrationResult",
    "dopri5",
    "geodesic_acceleration",
    "geodesic_residual",
    "geodesic_rhs",
    "rk4",
]

Form = Literal["auto", "pullback", "christoffel"]


# --------------------------------------------------------------------- the ODE
def _geodesic_terms(metric: Metric, z: Tensor, v: Tensor, form: Form) -> GeodesicTerms:
    """``(G, b)`` with ``γ̈ = −G⁻¹ b`` for validated ``z, v`` of shape ``(N, d)``: asked of
    the metric (its fast form), or the Christoffel form for any metric."""
    if form == "christoffel":
        return christoffel_terms(metric, z, v)
    if form == "pullback" and not metric.is_pullback:
        raise TypeError(
            f"form='pullback' needs a PullbackMetric or a sum/mean/scaling of them, got "
            f"{type(metric).__name__}; use form='auto' or 'christoffel'"
        )
    return metric.geodesic_terms(z, v)


def _acceleration(metric: Metric, z: Tensor, v: Tensor, form: Form = "auto") -> Tensor:
    """``γ̈`` for validated ``(N, d)`` input; NaN where ``G`` is singular."""
    return _geodesic_terms(metric, z, v, form).acceleration()


def geodesic_acceleration(
    metric_or_decoder: MetricLike, z: Tensor, v: Tensor, *, form: Form = "auto"
) -> Tensor:
    """The geodesic acceleration ``γ̈ = −Γ(γ̇, γ̇)`` at points ``z`` with velocities ``v``.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points of shape ``(..., d)``.
        v: velocities, broadcastable against ``z``.
        form: ``"auto"`` (the pull-back form ``−G⁻¹ Jᵀ ∂²f[v, v]`` for pull-backs
            and their sums, means and scalings; Christoffel symbols otherwise),
            ``"pullback"`` or ``"christoffel"`` (forward-mode ``∂G`` for any metric).

    Returns:
        Tensor of the broadcast shape ``(..., d)``; NaN where ``G`` is singular.

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> z = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
        >>> a = geodesic_acceleration(PoincareDisk(), z, torch.tensor([[0.0, 1.0]], dtype=z.dtype))
        >>> torch.allclose(a, torch.tensor([[4 / 3, 0.0]], dtype=z.dtype))  # bends outwards
        True
    """
    if form not in ("auto", "pullback", "christoffel"):
        raise ValueError(f"form must be 'auto', 'pullback' or 'christoffel', got {form!r}")
    metric = as_metric(metric_or_decoder)
    z = metric.validated_points(z, "z")
    v = check_tangent(z, v, "v")
    z, v = torch.broadcast_tensors(z, v)
    batch, d = z.shape[:-1], z.shape[-1]
    acc = _acceleration(metric, z.reshape(-1, d), v.reshape(-1, d), form)
    return acc.reshape(*batch, d)


def warn_if_kinked(metric: Metric) -> None:
    """Say once per decoder (the metric's footprint owner: ``as_metric`` builds a metric
    anew for every call), with a :class:`~latentgeo.exceptions.NumericsWarning`, that the
    geodesic ODE cannot see its jumps (:meth:`~latentgeo.metrics.Metric.kinks`: a
    decoder with ReLU, max pooling...; see :mod:`latentgeo.metrics.forward.kinks`)."""
    kinks = metric.kinks()
    if not kinks:
        return
    shown = ", ".join(kinks[:3]) + (f" and {len(kinks) - 3} more" if len(kinks) > 3 else "")
    owner = metric.footprint_owner()[0]  # the decoder, for metrics made anew at every call
    warn_once(
        owner,
        NumericsWarning(
            f"{type(metric).__name__}: its decoder has kinks ({shown}), so the metric jumps "
            "across them. The geodesic ODE (exp_map, log_map, parallel transport, "
            "connecting_geodesic's 'bvp' and 'shooting' methods) sees none of the jumps (a "
            "piecewise-linear decoder has a constant metric in each region, and the ODE goes "
            "straight there): its curves are not geodesics of the whole metric. "
            "connecting_geodesic(method='spline') minimises the energy of whole curves; smooth "
            "activations (Softplus, SiLU, GELU) give a smooth metric"
        ),
    )


def geodesic_rhs(metric: Metric, form: Form = "auto") -> RHS:
    """The first-order geodesic system ``y = (γ, γ̇) ↦ (γ̇, γ̈)``, for ``y`` of shape ``(N, 2d)``
    (announcing a piecewise-linear decoder once: :func:`warn_if_kinked`)."""
    warn_if_kinked(metric)

    def rhs(y: Tensor) -> Tensor:
        d = y.shape[-1] // 2
        z, v = y[:, :d], y[:, d:]
        return torch.cat([v, _acceleration(metric, z, v, form)], dim=-1)

    return rhs


def geodesic_residual(
    metric_or_decoder: MetricLike, curve: Callable[..., Tensor], t: Tensor
) -> Tensor:
    """How far a curve is from solving the geodesic ODE: ``γ̈(t) + Γ(γ̇, γ̇)``.

    ``γ̈`` is taken by forward mode through ``curve.velocity`` (exact for any
    curve whose velocity is differentiable in ``t``). The residual is zero for a
    geodesic with constant-speed parametrisation.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        curve: a curve module (``curve(t)`` and ``curve.velocity(t)`` of shape ``(B, T, d)``).
        t: times of shape ``(T,)`` in ``[0, 1]``.

    Returns:
        Tensor of shape ``(B, T, d)``.

    Example:
        >>> import torch
        >>> from latentgeo.solvers import HermiteCurve
        >>> knots = torch.linspace(0, 1, 3)
        >>> ones = torch.ones(1, 3, 2)
        >>> line = HermiteCurve(knots, knots[None, :, None] * ones, ones)  # γ(t) = (t, t)
        >>> geodesic_residual(lambda z: 2 * z, line, knots).abs().max()  # a Euclidean geodesic
        tensor(0.)
    """
    metric = as_metric(metric_or_decoder)
    t = check_points(t, "t")
    if t.ndim != 1:
        raise ValueError(f"t must have shape (T,), got {tuple(t.shape)}")
    velocity = curve.velocity  # type: ignore[attr-defined]
    vel, acc = jvp(velocity, (t,), (torch.ones_like(t),))[:2]
    pos = curve(t)
    b, n, d = pos.shape
    geo = _acceleration(metric, pos.reshape(-1, d), vel.reshape(-1, d)).reshape(b, n, d)
    return acc - geo
