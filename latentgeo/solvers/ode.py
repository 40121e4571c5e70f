"""The geodesic ODE and batched integrators for it.

A geodesic satisfies ``γ̈ = −G(γ)⁻¹ b(γ, γ̇)`` with

* for a pull-back ``G = Jᵀ J`` of ``f`` (every decoder metric, the Gaussian
  expected metric included): ``b = Jᵀ ∂²f[γ̇, γ̇]``, the second directional
  derivative of ``f`` along ``γ̇`` from two nested forward-mode products
  (``jvp`` of ``jvp``), and ``J`` from ``d`` batched forward-mode products.
  ``G`` needs ``J`` anyway, so ``Jᵀ ∂²f`` is then an ``m × d`` contraction;
  a vector-Jacobian product would cost a reverse pass on top (and a tape) for
  the same ``d`` numbers. Nothing of size ``m × d × d`` (a Hessian) is formed.
  Sums, means (ensembles) and scalings add their terms' ``G`` and ``b``.
* for any other metric (explicit ``G(z)``, feature metrics): the Christoffel
  form ``b^a = ∂_c G_ab γ̇^b γ̇^c − ½ ∂_a G_bc γ̇^b γ̇^c`` (``= G Γ(γ̇, γ̇)``), with
  ``∂G`` by forward mode through the metric tensor.

Both forms agree where both apply (for a pull-back, ``∂G[v] v − ½ ∇(vᵀGv) = Jᵀ ∂²f[v, v]``).

Integrators work on the first-order state ``y = (γ, γ̇)`` of shape ``(B, 2d)``:
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
from latentgeo.metrics import (
    MeanMetric,
    Metric,
    MetricLike,
    PullbackMetric,
    ScaledMetric,
    SumMetric,
    as_metric,
)
from latentgeo.metrics.christoffel import metric_derivative
from latentgeo.metrics.embeddings import DecoderEmbedding
from latentgeo.metrics.jacobians import chunks, forward_jacobian
from latentgeo.solvers.integrators import RHS, IntegrationResult, dopri5, rk4
from latentgeo.solvers.taylor import TaylorPropagator, taylor_propagator
from latentgeo.solvers.taylor import disable as disable_taylor

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
def _pullback_terms(metric: PullbackMetric, z: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """``(Jᵀ J, Jᵀ ∂²f[v, v])`` for a pull-back, chunked like the metric."""
    # a decoder returning a Tensor is its own embedding (up to flattening): trace it
    target: object = metric.embed
    if isinstance(target, DecoderEmbedding):
        target = target.decoder
    prop = taylor_propagator(target)
    if prop is not None:
        try:
            return _taylor_terms(prop, metric, z, v)
        except Exception:  # something the trace did not foresee: the exact generic path
            disable_taylor(target)  # type: ignore[arg-type]
    f = metric._flat_embed

    def second_derivative(x: Tensor, u: Tensor) -> Tensor:
        def push(y: Tensor) -> Tensor:
            return jvp(f, (y,), (u,))[1]

        return jvp(push, (x,), (u,))[1]

    gs, bs = [], []
    for sl in chunks(z.shape[0], metric.chunk_size):
        zc, vc = z[sl], v[sl]
        jac = forward_jacobian(f, zc)  # (n, m, d)
        h = second_derivative(zc, vc)  # (n, m)
        gs.append(jac.mT @ jac)
        bs.append(torch.einsum("nmd,nm->nd", jac, h))
    return torch.cat(gs), torch.cat(bs)


def _taylor_terms(
    prop: TaylorPropagator, metric: PullbackMetric, z: Tensor, v: Tensor
) -> tuple[Tensor, Tensor]:
    """The same terms by second-order forward mode through the traced decoder."""
    d = z.shape[-1]
    eye = torch.eye(d, dtype=z.dtype, device=z.device)
    gs, bs = [], []
    for sl in chunks(z.shape[0], metric.chunk_size):
        zc, vc = z[sl], v[sl]
        _, cols, second = prop(zc, eye[:, None, :].expand(d, zc.shape[0], d), vc)
        gs.append(torch.einsum("inm,jnm->nij", cols, cols))
        bs.append(torch.einsum("inm,nm->ni", cols, second))
    return torch.cat(gs), torch.cat(bs)


def _christoffel_terms(metric: Metric, z: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """``(G, ∂G[v] v − ½ ∇(vᵀ G v))`` by forward mode through the metric tensor."""
    g, dg = metric_derivative(metric, z)  # dg[n, a, b, c] = ∂_c G_ab
    dgv = torch.einsum("nabc,nc->nab", dg, v)  # ∂G[v]
    term1 = torch.einsum("nab,nb->na", dgv, v)
    term2 = torch.einsum("nbca,nb,nc->na", dg, v, v)
    return g, term1 - 0.5 * term2


def _geodesic_terms(metric: Metric, z: Tensor, v: Tensor, form: Form) -> tuple[Tensor, Tensor]:
    """``(G, b)`` with ``γ̈ = −G⁻¹ b`` for validated ``z, v`` of shape ``(N, d)``."""
    if form == "christoffel":
        return _christoffel_terms(metric, z, v)
    if isinstance(metric, PullbackMetric):
        return _pullback_terms(metric, z, v)
    if isinstance(metric, ScaledMetric):
        g, b = _geodesic_terms(metric.metric, z, v, form)
        return metric.scale * g, metric.scale * b
    if isinstance(metric, (SumMetric, MeanMetric)):
        parts = [_geodesic_terms(m, z, v, form) for m in metric.metrics()]
        g = torch.stack([p[0] for p in parts]).sum(0)
        b = torch.stack([p[1] for p in parts]).sum(0)
        if isinstance(metric, MeanMetric):
            return g / len(parts), b / len(parts)
        return g, b
    if form == "pullback":
        raise TypeError(
            f"form='pullback' needs a PullbackMetric or a sum/mean/scaling of them, got "
            f"{type(metric).__name__}; use form='auto' or 'christoffel'"
        )
    return _christoffel_terms(metric, z, v)


def _acceleration(metric: Metric, z: Tensor, v: Tensor, form: Form = "auto") -> Tensor:
    """``γ̈`` for validated ``(N, d)`` input; NaN where ``G`` is singular."""
    g, b = _geodesic_terms(metric, z, v, form)
    sol, info = torch.linalg.solve_ex(g, b)
    return torch.where((info == 0)[:, None], -sol, torch.nan)


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
    z = check_points(z, "z", dim=metric.latent_dim)
    v = check_tangent(z, v, "v")
    z, v = torch.broadcast_tensors(z, v)
    batch, d = z.shape[:-1], z.shape[-1]
    acc = _acceleration(metric, z.reshape(-1, d), v.reshape(-1, d), form)
    return acc.reshape(*batch, d)


def geodesic_rhs(metric: Metric, form: Form = "auto") -> RHS:
    """The first-order geodesic system ``y = (γ, γ̇) ↦ (γ̇, γ̈)``, for ``y`` of shape ``(N, 2d)``."""

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


# ---------------------------------------------------------------- integrators
# rk4, dopri5 and IntegrationResult live in latentgeo.solvers.integrators (re-exported here)
