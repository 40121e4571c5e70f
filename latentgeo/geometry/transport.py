"""Parallel transport of tangent vectors along curves and geodesics, batched, with error control.

A vector field ``w(t)`` along a curve ``γ`` is parallel when its covariant
derivative vanishes,

.. math::
    \\dot w = -Γ(\\dot γ, w),

which keeps every inner product ``⟨w₁, w₂⟩_{G(γ)}`` constant. Both entry points
integrate this linear ODE with the adaptive Dormand–Prince 5(4) integrator of
:mod:`latentgeo.solvers.ode` (every curve with its own step size and error
estimate, all in one batched call):

* :func:`transport_along_curve` along any curve module (``curve(t)``,
  ``curve.velocity(t)``, e.g. ``GeodesicResult.curve``), evaluated exactly at
  every stage;
* :func:`parallel_transport` along the geodesic ``t ↦ exp_z(t v)``, integrating
  the geodesic and the transported vectors together (state ``(γ, γ̇, w)``).

``Γ(u, w)`` comes from :func:`latentgeo.geometry.connection`'s forms; K vectors
per curve (``w`` of shape ``(B, K, d)``, a frame, say) ride along together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentgeo._validation import check_points
from latentgeo.curves import Curve
from latentgeo.geometry.connection import Form, gamma, resolve_form
from latentgeo.memory import use_memory_budget
from latentgeo.metrics import MetricLike, as_metric
from latentgeo.solvers import ShootingError, Status
from latentgeo.solvers.ode import dopri5, warn_if_kinked
from latentgeo.solvers.status import converged_mask, raise_if_failed, statuses_from_codes

__all__ = [
    "TransportResult",
    "parallel_transport",
    "parallel_transport_result",
    "transport_along_curve",
]


@dataclass
class TransportResult:
    """Vectors transported along B curves.

    Attributes:
        vectors: the transported vectors at the last output time, ``(B, d)`` or
            ``(B, K, d)`` like the input (NaN where the integration failed).
        times: the output times ``(T,)``.
        path: the transported vectors at every output time, ``(B, T, d)`` or ``(B, T, K, d)``.
        points: the curve's positions at the output times, ``(B, T, d)``.
        velocities: the curve's velocities there, ``(B, T, d)``.
        converged: whether each curve's integration met its tolerance, ``(B,)`` bool.
        status: one :class:`~latentgeo.solvers.Status` per curve.
        steps: accepted integration steps per curve, ``(B,)``.
    """

    vectors: Tensor
    times: Tensor
    path: Tensor
    points: Tensor
    velocities: Tensor
    converged: Tensor
    status: list[Status]
    steps: Tensor

    def raise_if_failed(self) -> None:
        """Raise :class:`~latentgeo.solvers.ShootingError` unless every curve converged."""
        raise_if_failed(self.status, self, ShootingError, what="curves")


def _tolerances(dtype: torch.dtype, rtol: float | None, atol: float | None) -> tuple[float, float]:
    dr, da = (1e-8, 1e-10) if dtype == torch.float64 else (1e-5, 1e-6)
    rtol, atol = (dr if rtol is None else rtol), (da if atol is None else atol)
    if not (rtol > 0 and atol > 0):
        raise ValueError(f"rtol and atol must be positive, got rtol={rtol}, atol={atol}")
    return float(rtol), float(atol)


def _as_frames(w: object, batch: int, d: int, dtype: torch.dtype, name: str = "w") -> Tensor:
    """Validate ``w`` of shape ``(B, d)`` or ``(B, K, d)`` and return ``(B, K, d)``."""
    w = check_points(w, name, dim=d)
    if w.ndim not in (2, 3) or w.shape[0] != batch:
        raise ValueError(f"{name} must have shape (B, d) or (B, K, d) with B={batch}, d={d}, "
                         f"got {tuple(w.shape)}")  # fmt: skip
    if w.dtype != dtype:
        raise TypeError(f"{name} has dtype {w.dtype} but the points have dtype {dtype}")
    return w if w.ndim == 3 else w[:, None]


def _scaled(w: Tensor) -> tuple[Tensor, Tensor]:
    """``w / s``, ``s`` the largest entry of each vector (transport is linear), ``(B, K, d)``."""
    s = w.abs().amax(-1, keepdim=True)
    s = torch.where(s > 0, s, 1.0)
    return w / s, s


def _check_times(times: Tensor | None, like: Tensor) -> Tensor:
    if times is None:
        return torch.tensor([0.0, 1.0], dtype=like.dtype, device=like.device)
    t = check_points(times, "times").to(dtype=like.dtype, device=like.device)
    ok = t.ndim == 1 and t.shape[0] >= 2 and float(t[0]) == 0.0 and float(t[-1]) <= 1.0
    if not ok or not bool((t[1:] > t[:-1]).all()):
        raise ValueError("times must be increasing, of shape (T,) with T >= 2, from 0 to at most 1")
    return t


def _curve_at(curve: Curve, t: Tensor, rows: Tensor, batch: int) -> tuple[Tensor, Tensor]:
    """Positions and velocities of curves ``rows`` at their own times ``t``: ``(R, d)`` each."""
    tt = t.new_zeros(batch, 1)
    tt[rows, 0] = t.clamp(0.0, 1.0)
    if isinstance(curve, Curve):
        pos, vel = curve.points_and_velocities(tt)
    else:
        pos, vel = curve(tt), curve.velocity(tt)
    return pos[rows, 0], vel[rows, 0]


def transport_along_curve(
    metric_or_decoder: MetricLike,
    curve: Curve,
    w: Tensor,
    *,
    times: Tensor | None = None,
    form: Form = "auto",
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 10_000,
    throw: bool = False,
    memory_budget: int | None = None,
) -> TransportResult:
    """Parallel transport of vectors given at ``t = 0`` along B curves, ``ẇ = −Γ(γ̇, w)``.

    The curve is evaluated exactly at every stage of the adaptive integrator
    (``curve(t)``, ``curve.velocity(t)`` at per-curve times); curves with kinks
    (polylines) are handled by the step-size control, at the price of more steps.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        curve: B curves (any latentgeo curve, e.g. ``connecting_geodesic(...).curve``).
        w: vectors at ``curve(0)``, ``(B, d)``, or K vectors per curve ``(B, K, d)``.
        times: output times ``(T,)``, increasing from 0 (default ``[0, 1]``).
        form: how ``Γ`` is computed: ``"auto"``, ``"christoffel"`` or ``"acceleration"``
            (see :func:`connection`).
        rtol: relative tolerance per step (default 1e-8 in float64, 1e-5 in float32).
        atol: absolute tolerance per step, for vectors scaled to unit largest entry
            (default 1e-10 in float64, 1e-6 in float32).
        max_steps: step attempts per curve before status ``max_steps``.
        throw: raise :class:`~latentgeo.solvers.ShootingError` if any curve failed.
        memory_budget: bytes the integration may use (``None``: the budget in force,
            see :mod:`latentgeo.memory`).

    Returns:
        A :class:`TransportResult`.

    Example:
        >>> import torch
        >>> from latentgeo.curves import DiscreteCurve
        >>> from latentgeo.testing import PoincareDisk
        >>> line = DiscreteCurve(torch.zeros(1, 2, dtype=torch.float64),
        ...                      torch.tensor([[0.5, 0.0]], dtype=torch.float64), num_points=2)
        >>> w = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
        >>> out = transport_along_curve(PoincareDisk(), line, w).vectors  # radial: w shrinks
        >>> torch.allclose(out, torch.tensor([[0.0, 0.75]], dtype=torch.float64))
        True
    """
    metric = as_metric(metric_or_decoder)
    z0 = curve(torch.zeros(1, dtype=w.dtype, device=w.device))[:, 0]
    batch, d = z0.shape
    frames = _as_frames(w, batch, d, z0.dtype)
    t_out = _check_times(times, z0)
    rtol, atol = _tolerances(z0.dtype, rtol, atol)
    resolve_form(metric, form)
    warn_if_kinked(metric)
    k = frames.shape[1]
    unit, scale = _scaled(frames)

    def rhs(y: Tensor) -> Tensor:
        rows = y[:, 1].round().long()
        z, vel = _curve_at(curve, y[:, 0], rows, batch)
        dw = -gamma(metric, z, vel, y[:, 2:].reshape(-1, k, d), form)[0]
        ones = torch.ones_like(y[:, :1])
        return torch.cat([ones, torch.zeros_like(ones), dw.reshape(-1, k * d)], -1)

    # the state carries the curve time and the curve's index (rows reach rhs in subsets);
    # both have zero error, so the tolerances are shrunk to keep the RMS test on w alone
    index = torch.arange(batch, dtype=z0.dtype, device=z0.device)[:, None]
    y0 = torch.cat([torch.zeros_like(index), index, unit.reshape(batch, k * d)], -1)
    shrink = (k * d / (k * d + 2)) ** 0.5
    grad = torch.is_grad_enabled() and frames.requires_grad
    with torch.set_grad_enabled(grad), use_memory_budget(memory_budget):
        res = dopri5(rhs, y0, t_out, rtol=rtol * shrink, atol=atol * shrink, max_steps=max_steps)
        path = res.states[..., 2:].reshape(batch, -1, k, d) * scale[:, None]
    status = statuses_from_codes(res.status)
    with torch.no_grad():
        tt = t_out.expand(batch, -1)
        points = curve(tt).detach()
        velocities = curve.velocity(tt).detach()
    return _result(path, t_out, points, velocities, status, res.steps, w.ndim == 2, throw)


def _result(
    path: Tensor,
    times: Tensor,
    points: Tensor,
    velocities: Tensor,
    status: list[Status],
    steps: Tensor,
    single: bool,
    throw: bool,
) -> TransportResult:
    ok = converged_mask(status, device=path.device)
    end = torch.where(ok[:, None, None], path[:, -1], torch.nan)
    info = TransportResult(
        vectors=end[:, 0] if single else end,
        times=times,
        path=path[:, :, 0] if single else path,
        points=points,
        velocities=velocities,
        converged=ok,
        status=status,
        steps=steps,
    )
    if throw:
        info.raise_if_failed()
    return info


def parallel_transport_result(
    metric_or_decoder: MetricLike,
    z: Tensor,
    v: Tensor,
    w: Tensor,
    *,
    t: float = 1.0,
    num_points: int = 2,
    form: Form = "auto",
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 10_000,
    throw: bool = False,
    memory_budget: int | None = None,
) -> TransportResult:
    """:func:`parallel_transport` with the whole result (path, status, steps).

    Arguments as :func:`parallel_transport`; ``num_points`` equally spaced
    output times from 0 to ``t`` (``2``: the ends). ``points`` and
    ``velocities`` are the geodesic's.

    Returns:
        A :class:`TransportResult`.
    """
    metric = as_metric(metric_or_decoder)
    z = metric.validated_points(z, "z")
    if z.ndim != 2:
        raise ValueError(f"z must have shape (B, d), got {tuple(z.shape)}")
    batch, d = z.shape
    v = check_points(v, "v", dim=d)
    if v.shape != z.shape or v.dtype != z.dtype:
        raise ValueError(f"v must match z: shape {tuple(z.shape)}, dtype {z.dtype}; got "
                         f"{tuple(v.shape)}, {v.dtype}")  # fmt: skip
    frames = _as_frames(w, batch, d, z.dtype)
    if not isinstance(num_points, int) or num_points < 2:
        raise ValueError(f"num_points must be an int >= 2, got {num_points!r}")
    if not isinstance(t, (int, float)) or not abs(float(t)) < float("inf"):
        raise ValueError(f"t must be a finite number, got {t!r}")
    rtol, atol = _tolerances(z.dtype, rtol, atol)
    resolve_form(metric, form)
    warn_if_kinked(metric)
    with use_memory_budget(memory_budget):  # one checked call: clear dtype/device errors
        metric.squared_norm(z[:1], v[:1])
    k = frames.shape[1]
    unit, scale = _scaled(frames)
    t = float(t)

    def rhs(y: Tensor) -> Tensor:
        pos, vel = y[:, :d], y[:, d : 2 * d]
        gw, gv = gamma(metric, pos, vel, y[:, 2 * d :].reshape(-1, k, d), form, with_self=True)
        assert gv is not None
        return torch.cat([vel, -gv, -gw.reshape(-1, k * d)], -1)

    # γ_v(t s) = γ_{t v}(s): integrate the scaled velocity over [0, 1]
    y0 = torch.cat([z, t * v, unit.reshape(batch, k * d)], -1)
    s_out = torch.linspace(0.0, 1.0, num_points, dtype=z.dtype, device=z.device)
    needs_grad = any(x.requires_grad for x in (z, v, frames))
    with (
        torch.set_grad_enabled(torch.is_grad_enabled() and needs_grad),
        use_memory_budget(memory_budget),
    ):
        res = dopri5(rhs, y0, s_out, rtol=rtol, atol=atol, max_steps=max_steps)
    states = res.states
    path = states[..., 2 * d :].reshape(batch, num_points, k, d) * scale[:, None]
    vel = states[..., d : 2 * d] / t if t != 0.0 else v[:, None].expand(-1, num_points, -1)
    status = statuses_from_codes(res.status)
    return _result(path, t * s_out, states[..., :d], vel, status, res.steps, w.ndim == 2, throw)


def parallel_transport(
    metric_or_decoder: MetricLike,
    z: Tensor,
    v: Tensor,
    w: Tensor,
    *,
    t: float = 1.0,
    form: Form = "auto",
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 10_000,
    throw: bool = False,
    memory_budget: int | None = None,
) -> Tensor:
    """Transport ``w`` from ``z`` to ``exp_z(t v)`` along the geodesic ``s ↦ exp_z(s v)``.

    The geodesic and the vectors are integrated together, ``(γ̇, γ̈, ẇ) = (γ̇,
    −Γ(γ̇, γ̇), −Γ(γ̇, w))``, by adaptive Dormand–Prince 5(4) with per-pair
    step sizes and error control on all of them.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: base points ``(B, d)``.
        v: initial velocities ``(B, d)``.
        w: vectors at ``z``, ``(B, d)`` or K per point ``(B, K, d)``.
        t: how far along the geodesic (``exp_z(t v)``; negative goes backwards).
        form: how ``Γ`` is computed (see :func:`connection`).
        rtol: relative tolerance per step (default 1e-8 in float64, 1e-5 in float32).
        atol: absolute tolerance per step (default 1e-10 in float64, 1e-6 in float32).
        max_steps: step attempts per pair before status ``max_steps``.
        throw: raise :class:`~latentgeo.solvers.ShootingError` if any pair failed.
        memory_budget: bytes the integration may use (``None``: the budget in force,
            see :mod:`latentgeo.memory`).

    Returns:
        The transported vectors, shaped like ``w``; NaN where a pair failed
        (:func:`parallel_transport_result` says why).

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> disk, z = PoincareDisk(), torch.zeros(1, 2, dtype=torch.float64)
        >>> v = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
        >>> w = parallel_transport(disk, z, v, torch.tensor([[0.0, 1.0]], dtype=torch.float64))
        >>> z1 = disk.exp(z, v)  # the transported vector keeps its length
        >>> bool(torch.isclose(disk.norm(z1, w), disk.norm(z, torch.tensor([[0.0, 1.0]]).double())))
        True
    """
    res = parallel_transport_result(
        metric_or_decoder, z, v, w, t=t, form=form, rtol=rtol, atol=atol,
        max_steps=max_steps, throw=throw, memory_budget=memory_budget,
    )  # fmt: skip
    return res.vectors
