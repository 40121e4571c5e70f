"""Exponential and logarithm maps by integrating the geodesic ODE, and the ``"shooting"`` method.

* :func:`exp_map` integrates ``γ̈ = −Γ(γ̇, γ̇)`` from ``(z, v)`` for B pairs in
  one batched call: adaptive Dormand–Prince 5(4) with per-pair step sizes
  (``method="dopri5"``, the default) or fixed-step RK4 (``method="rk4"``).
* :func:`log_map` finds ``v`` with ``exp_{z0}(v) = z1`` by Newton's method on the
  end-point residual. Its Jacobian ``∂ exp_{z0}(v) / ∂v`` is exact for the
  discrete RK4 solution: forward mode (``torch.func.jvp``) through the
  integrator, i.e. the variational equation, for all ``d`` directions and all
  pairs in one batched integration. Each pair has its own backtracking step
  length and stops on its own.
* ``connecting_geodesic(..., method="shooting")`` is the log map plus the path.

:func:`exp_map` and :func:`log_map` return tensors; :func:`exp_map_result` and
:func:`log_map_result` take the same arguments and return the whole result
(per-pair :class:`~latentgeo.solvers.Status`, steps, residuals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor
from torch.func import jvp

from latentgeo._validation import check_points, check_same_shape
from latentgeo.memory import use_memory_budget
from latentgeo.metrics import Metric, MetricLike, as_metric
from latentgeo.solvers.connecting import available_methods, connecting_geodesic, register_method
from latentgeo.solvers.hermite import HermiteCurve, length_and_energy
from latentgeo.solvers.ode import dopri5, geodesic_rhs, rk4
from latentgeo.solvers.result import GeodesicResult
from latentgeo.solvers.status import (
    SolverError,
    Status,
    converged_mask,
    raise_if_failed,
    statuses_from_codes,
)

__all__ = [
    "ExpMapResult",
    "LogMapResult",
    "ShootingError",
    "exp_map",
    "exp_map_result",
    "geodesic_curve",
    "log_map",
    "log_map_result",
]


class ShootingError(SolverError):
    """Raised by ``exp_map``/``log_map`` with ``throw=True`` (or a result's
    ``raise_if_failed()``) when some pair failed.

    Attributes:
        result: the :class:`ExpMapResult` or :class:`LogMapResult`, with per-pair statuses.
    """


@dataclass
class ExpMapResult:
    """What :func:`exp_map` computed for B initial conditions.

    Attributes:
        point: ``exp_z(t v)``, shape ``(B, d)`` (NaN where the pair failed).
        velocity: ``γ̇(t)`` there, shape ``(B, d)``.
        converged: whether each pair reached time ``t``, ``(B,)`` bool.
        status: per pair, a :class:`~latentgeo.solvers.Status`: ``converged``,
            ``max_steps``, ``nonfinite`` or ``step_underflow``.
        steps: accepted integration steps per pair, ``(B,)``.
        times: the output times ``(T,)`` from 0 to ``t`` (only with ``return_path``).
        path: ``γ`` at those times, ``(B, T, d)`` (only with ``return_path``).
        path_velocity: ``γ̇`` at those times, ``(B, T, d)`` (only with ``return_path``).
    """

    point: Tensor
    velocity: Tensor
    converged: Tensor
    status: list[Status]
    steps: Tensor
    times: Tensor | None = None
    path: Tensor | None = None
    path_velocity: Tensor | None = None

    def raise_if_failed(self) -> None:
        """Raise :class:`ShootingError` unless every pair reached its end time."""
        raise_if_failed(self.status, self, ShootingError)


@dataclass
class LogMapResult:
    """What :func:`log_map` found for B pairs.

    Attributes:
        velocity: the best initial velocity found, ``(B, d)`` (also for failed pairs).
        residual: ``‖exp_{z0}(v) − z1‖`` of it, ``(B,)``.
        length: its Riemannian norm ``‖v‖_{G(z0)}``, the geodesic's length, ``(B,)``.
        converged: ``residual ≤ tol``, ``(B,)`` bool.
        status: per pair, a :class:`~latentgeo.solvers.Status`: ``converged``,
            ``max_iter``, ``line_search_failed`` (no step length reduced the
            residual) or ``nonfinite``.
        iterations: Newton iterations per pair, ``(B,)``.
    """

    velocity: Tensor
    residual: Tensor
    length: Tensor
    converged: Tensor
    status: list[Status]
    iterations: Tensor

    def raise_if_failed(self) -> None:
        """Raise :class:`ShootingError` unless every pair converged."""
        raise_if_failed(self.status, self, ShootingError)


# ------------------------------------------------------------------- helpers
def _default_tolerances(dtype: torch.dtype) -> tuple[float, float]:
    return (1e-8, 1e-10) if dtype == torch.float64 else (1e-5, 1e-6)


def _flatten_pair(metric: Metric, x: object, y: object, na: str, nb: str) -> tuple[Tensor, Tensor]:
    """Validate two ``(..., d)`` tensors, broadcast them and flatten to ``(B, d)``."""
    a = check_points(x, na, dim=metric.latent_dim)
    b = check_points(y, nb, dim=metric.latent_dim)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{na} and {nb} must have the same last dimension d, got {tuple(a.shape)} "
            f"and {tuple(b.shape)}"
        )
    try:
        a, b = torch.broadcast_tensors(a, b)
    except RuntimeError:
        raise ValueError(
            f"{na} of shape {tuple(a.shape)} and {nb} of shape {tuple(b.shape)} do not broadcast"
        ) from None
    check_same_shape(a, b, na, nb)
    d = a.shape[-1]
    a2, b2 = a.reshape(-1, d), b.reshape(-1, d)
    # one cheap checked call: clear errors for a decoder of another dtype/device
    metric.squared_norm(a2[:1], b2[:1] - a2[:1])
    return a2, b2


def _needs_grad(*xs: Tensor) -> bool:
    return torch.is_grad_enabled() and any(x.requires_grad for x in xs)


# ------------------------------------------------------------------- exp map
def _integrate(
    metric: Metric,
    z: Tensor,
    v: Tensor,
    *,
    method: str,
    rtol: float | None,
    atol: float | None,
    steps: int,
    max_steps: int,
    num_points: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Integrate over ``[0, 1]`` from ``(z, v)``: ``(times, pos, vel, status, steps)``."""
    rhs = geodesic_rhs(metric)
    y0 = torch.cat([z, v], dim=-1)
    d = z.shape[-1]
    if method == "rk4":
        res = rk4(rhs, y0, 1.0, steps, num_points=num_points)
    elif method == "dopri5":
        dr, da = _default_tolerances(z.dtype)
        t_eval = torch.linspace(0.0, 1.0, num_points, dtype=z.dtype, device=z.device)
        res = dopri5(
            rhs,
            y0,
            t_eval,
            rtol=dr if rtol is None else rtol,
            atol=da if atol is None else atol,
            max_steps=max_steps,
        )
    else:
        raise ValueError(f"method must be 'dopri5' or 'rk4', got {method!r}")
    states = res.states
    return res.times, states[..., :d], states[..., d:], res.status, res.steps


def exp_map(
    metric_or_decoder: MetricLike,
    z: Tensor,
    v: Tensor,
    *,
    t: float = 1.0,
    method: Literal["dopri5", "rk4"] = "dopri5",
    rtol: float | None = None,
    atol: float | None = None,
    steps: int = 32,
    max_steps: int = 10_000,
    return_path: bool = False,
    num_points: int = 33,
    throw: bool = False,
    memory_budget: int | None = None,
) -> Tensor:
    """The exponential map ``exp_z(t v)``: the geodesic from ``z`` with velocity ``v``, at ``t``.

    All B geodesics are integrated independently in one batched call (each
    with its own adaptive step size under ``"dopri5"``).

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: base points, shape ``(B, d)`` (any ``(..., d)`` broadcasting against ``v``).
        v: initial velocities, shape ``(B, d)``.
        t: the time to integrate to (``exp_z(t v) = γ_v(t)``; negative goes backwards).
        method: ``"dopri5"`` (adaptive Dormand–Prince 5(4), per-pair error control)
            or ``"rk4"`` (``steps`` fixed RK4 steps).
        rtol: relative tolerance per step (``"dopri5"``; default 1e-8 in float64, 1e-5 in float32).
        atol: absolute tolerance per step (default 1e-10 in float64, 1e-6 in float32).
        steps: RK4 steps (``"rk4"``; rounded up to a multiple of ``num_points − 1``).
        max_steps: step attempts per pair before status ``"max_steps"`` (``"dopri5"``).
        return_path: return the geodesic at ``num_points`` equally spaced times instead.
        num_points: points on the returned path, including both ends.
        throw: raise :class:`ShootingError` if any pair failed.
        memory_budget: bytes the integration may use (``None``: the budget in
            force, see :mod:`latentgeo.memory`).

    Returns:
        ``exp_z(t v)`` of shape ``(B, d)``; NaN for pairs that failed (a singular
        metric, a geodesic leaving the decoder's range of finite values, or an
        exhausted step budget). With ``return_path``: the path ``(B, T, d)``.
        :func:`exp_map_result` returns the whole :class:`ExpMapResult`.

    Gradients flow through the integration when ``z`` or ``v`` requires grad.

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> disk = PoincareDisk()
        >>> z = torch.tensor([[0.1, 0.2]], dtype=torch.float64)
        >>> v = torch.tensor([[0.3, -0.4]], dtype=torch.float64)
        >>> torch.allclose(exp_map(disk, z, v), disk.exp(z, v), atol=1e-8)
        True
    """
    with use_memory_budget(memory_budget):
        info = exp_map_result(
            metric_or_decoder, z, v,
            t=t, method=method, rtol=rtol, atol=atol, steps=steps, max_steps=max_steps,
            num_points=num_points if return_path else 2, throw=throw,
        )  # fmt: skip
    if return_path:
        assert info.path is not None
        return info.path
    return info.point


def exp_map_result(
    metric_or_decoder: MetricLike,
    z: Tensor,
    v: Tensor,
    *,
    t: float = 1.0,
    method: Literal["dopri5", "rk4"] = "dopri5",
    rtol: float | None = None,
    atol: float | None = None,
    steps: int = 32,
    max_steps: int = 10_000,
    num_points: int = 2,
    throw: bool = False,
) -> ExpMapResult:
    """:func:`exp_map` with the whole result: per-pair status, steps, and the path.

    Arguments as :func:`exp_map`; the path at ``num_points`` equally spaced
    times (``2``: the ends) is in ``times``, ``path`` and ``path_velocity``.

    Returns:
        An :class:`ExpMapResult`.

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> res = exp_map_result(PoincareDisk(), torch.zeros(2, 2, dtype=torch.float64),
        ...                      torch.ones(2, 2, dtype=torch.float64))
        >>> res.status, res.path.shape
        ([Status.CONVERGED, Status.CONVERGED], torch.Size([2, 2, 2]))
    """
    metric = as_metric(metric_or_decoder)
    z2, v2 = _flatten_pair(metric, z, v, "z", "v")
    batch = torch.broadcast_shapes(z.shape, v.shape)[:-1]
    d = z2.shape[-1]
    if not isinstance(t, (int, float)) or not torch.isfinite(torch.tensor(float(t))):
        raise ValueError(f"t must be a finite number, got {t!r}")
    if num_points < 2:
        raise ValueError(f"num_points must be at least 2, got {num_points}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    t = float(t)
    with torch.set_grad_enabled(_needs_grad(z2, v2)):
        # γ_v(t s) = γ_{t v}(s): integrate the scaled velocity over [0, 1]
        times, pos, vel, codes, n_steps = _integrate(
            metric,
            z2,
            t * v2,
            method=method,
            rtol=rtol,
            atol=atol,
            steps=steps,
            max_steps=max_steps,
            num_points=num_points,
        )
    vel = vel / t if t != 0.0 else v2.expand_as(vel)
    status = statuses_from_codes(codes)
    ok = converged_mask(status, device=z2.device)
    point = torch.where(ok[:, None], pos[:, -1], torch.nan)
    info = ExpMapResult(
        point=point.reshape(*batch, d),
        velocity=torch.where(ok[:, None], vel[:, -1], torch.nan).reshape(*batch, d),
        converged=ok.reshape(batch),
        status=status,
        steps=n_steps.reshape(batch),
        times=t * times,
        path=pos.reshape(*batch, -1, d),
        path_velocity=vel.reshape(*batch, -1, d),
    )
    if throw:
        info.raise_if_failed()
    return info


# ------------------------------------------------------------------- log map
def _shoot_with_jacobian(
    metric: Metric, z0: Tensor, v: Tensor, steps: int
) -> tuple[Tensor, Tensor]:
    """``exp_{z0}(v)`` by RK4 and its exact Jacobian ``∂/∂v``, ``(B, d)`` and ``(B, d, d)``.

    The ``d`` tangent directions ride along as ``d`` copies of the batch, so one
    forward-mode pass through one batched integration gives everything.
    """
    b, d = z0.shape
    rhs = geodesic_rhs(metric)
    z_rep = z0.repeat(d, 1)
    tangents = torch.eye(d, dtype=v.dtype, device=v.device).repeat_interleave(b, dim=0)

    def end_point(vv: Tensor) -> Tensor:
        return rk4(rhs, torch.cat([z_rep, vv], dim=-1), 1.0, steps).states[:, -1, :d]

    end, dend = jvp(end_point, (v.repeat(d, 1),), (tangents,))[:2]
    return end[:b], dend.reshape(d, b, d).permute(1, 2, 0)


def _newton_direction(jac: Tensor, r: Tensor) -> Tensor:
    """``−J⁻¹ r`` per pair, least squares where ``J`` is singular."""
    sol, info = torch.linalg.solve_ex(jac, r)
    bad = (info != 0) | ~torch.isfinite(sol).all(-1)
    if bool(bad.any()):
        sol[bad] = (torch.linalg.pinv(jac[bad]) @ r[bad, :, None])[..., 0]
    return -sol


def _initial_velocity(
    metric: Metric, z0: Tensor, z1: Tensor, init: object, init_options: dict[str, Any]
) -> Tensor:
    if isinstance(init, Tensor):
        v = check_points(init, "init", dim=z0.shape[-1])
        check_same_shape(v, z0, "init", "z0")
        return v.detach()
    if init == "straight":
        return z1 - z0
    if init == "energy":
        if "spline" not in available_methods():
            return z1 - z0
        options = {"method": "spline", **init_options}
        res = connecting_geodesic(metric, z0, z1, **options)
        t0 = torch.zeros(1, dtype=z0.dtype, device=z0.device)
        v = res.curve.velocity(t0)[:, 0].detach()  # type: ignore[operator]
        # the velocity of a constant-speed geodesic has norm = length
        speed = metric.squared_norm(z0, v, validate=False).clamp_min(0.0).sqrt()
        scale = res.length.detach().to(v.dtype) / speed
        scale = torch.where(torch.isfinite(scale) & (speed > 0), scale, 1.0)
        v = v * scale[:, None]
        return torch.where(torch.isfinite(v).all(-1, keepdim=True), v, z1 - z0)
    raise ValueError(f"init must be 'energy', 'straight' or a (B, d) tensor, got {init!r}")


def _log_map(
    metric: Metric,
    z0: Tensor,
    z1: Tensor,
    *,
    init: object = "energy",
    steps: int = 32,
    max_iter: int = 25,
    tol: float | None = None,
    init_options: dict[str, Any] | None = None,
) -> LogMapResult:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    b = z0.shape[0]
    if tol is None:
        tol = 1e-10 if z0.dtype == torch.float64 else 1e-5
    tol_b = tol * torch.clamp((z1 - z0).norm(dim=-1), min=1.0)
    with torch.no_grad():
        v_init = _initial_velocity(metric, z0, z1, init, dict(init_options or {}))
    best_v = v_init.clone()
    best_r = torch.full((b,), torch.inf, dtype=z0.dtype, device=z0.device)
    delta = torch.zeros_like(best_v)
    alpha = torch.ones(b, dtype=z0.dtype, device=z0.device)
    iterations = torch.zeros(b, dtype=torch.long, device=z0.device)
    status = [Status.MAX_ITERATIONS] * b
    active = torch.ones(b, dtype=torch.bool, device=z0.device)
    first = True
    with torch.no_grad():
        for _ in range(max_iter + 1):
            idx = active.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            trial = best_v[idx] + alpha[idx, None] * delta[idx]
            end, jac = _shoot_with_jacobian(metric, z0[idx], trial, steps)
            r = end - z1[idx]
            rn = r.norm(dim=-1)
            finite = torch.isfinite(rn) & torch.isfinite(jac).flatten(1).all(-1)
            improved = finite & (rn < best_r[idx])
            if first:
                for i in idx[~finite].tolist():
                    status[i] = Status.NON_FINITE
                active[idx[~finite]] = False
                first = False
            up = idx[improved]
            best_v[up] = trial[improved]
            best_r[up] = rn[improved]
            alpha[up] = 1.0
            down = idx[~improved]
            alpha[down] = alpha[down] * 0.5
            iterations[idx] += 1
            done = improved & (rn <= tol_b[idx])
            for i in idx[done].tolist():
                status[i] = Status.CONVERGED
            active[idx[done]] = False
            stalled = ~improved & (alpha[idx] < 1e-4) & active[idx]
            for i in idx[stalled].tolist():
                status[i] = Status.LINE_SEARCH_FAILED
            active[idx[stalled]] = False
            step = improved & ~done
            if bool(step.any()):
                delta[idx[step]] = _newton_direction(jac[step], r[step])
        length = metric.squared_norm(z0, best_v, validate=False).clamp_min(0.0).sqrt()
    converged = converged_mask(status, device=z0.device)
    return LogMapResult(best_v, best_r, length, converged, status, iterations)


def log_map(
    metric_or_decoder: MetricLike,
    z0: Tensor,
    z1: Tensor,
    *,
    init: Literal["energy", "straight"] | Tensor = "energy",
    steps: int = 32,
    max_iter: int = 25,
    tol: float | None = None,
    init_options: dict[str, Any] | None = None,
    throw: bool = False,
    memory_budget: int | None = None,
) -> Tensor:
    """The logarithm map ``log_{z0}(z1)``: the initial velocity of the geodesic to ``z1``.

    Shooting: Newton's method on the end-point residual ``exp_{z0}(v) − z1``
    with the exact Jacobian of the RK4 solution (forward mode through the
    integrator), all pairs in one batched integration per iteration, each pair
    with its own backtracking and stopping.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z0: base points, shape ``(B, d)``.
        z1: target points, shape ``(B, d)``.
        init: the starting velocity: ``"energy"`` (the energy solver's geodesic,
            ``connecting_geodesic(method="spline")``, its initial velocity scaled
            to its length; the straight line if no energy solver is available),
            ``"straight"`` (``z1 − z0``) or a ``(B, d)`` tensor.
        steps: RK4 steps over ``[0, 1]``: the log map inverts this discrete
            exponential map exactly (to ``tol``), so its accuracy is RK4's,
            ``O(steps⁻⁴)``; raise it for more.
        max_iter: Newton iterations at most.
        tol: stop a pair when ``‖exp_{z0}(v) − z1‖ ≤ tol · max(1, ‖z1 − z0‖)``
            (default 1e-10 in float64, 1e-5 in float32).
        init_options: options for ``connecting_geodesic`` when ``init="energy"``.
        throw: raise :class:`ShootingError` if any pair did not converge.
        memory_budget: bytes the shooting (and its initial geodesics) may use
            (``None``: the budget in force, see :mod:`latentgeo.memory`).

    Returns:
        ``v`` of shape ``(B, d)``, NaN for pairs that did not converge (their
        best iterate, status and residual are in :func:`log_map_result`'s
        :class:`LogMapResult`).

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> disk = PoincareDisk()
        >>> z0 = torch.tensor([[0.1, 0.2]], dtype=torch.float64)
        >>> z1 = torch.tensor([[-0.3, 0.4]], dtype=torch.float64)
        >>> v = log_map(disk, z0, z1, init="straight", steps=8)
        >>> torch.allclose(v, disk.log(z0, z1), atol=1e-4)
        True
    """
    with use_memory_budget(memory_budget):
        info = log_map_result(
            metric_or_decoder, z0, z1,
            init=init, steps=steps, max_iter=max_iter, tol=tol, init_options=init_options,
            throw=throw,
        )  # fmt: skip
    return torch.where(info.converged[:, None], info.velocity, torch.nan)


def log_map_result(
    metric_or_decoder: MetricLike,
    z0: Tensor,
    z1: Tensor,
    *,
    init: Literal["energy", "straight"] | Tensor = "energy",
    steps: int = 32,
    max_iter: int = 25,
    tol: float | None = None,
    init_options: dict[str, Any] | None = None,
    throw: bool = False,
) -> LogMapResult:
    """:func:`log_map` with the whole result: per-pair status, residual, length, iterations.

    Arguments as :func:`log_map`.

    Returns:
        A :class:`LogMapResult`; ``velocity`` holds the best iterate of every
        pair, converged or not.
    """
    metric = as_metric(metric_or_decoder)
    z0c = check_points(z0, "z0", dim=metric.latent_dim)
    z1c = check_points(z1, "z1", dim=metric.latent_dim)
    for x, name in ((z0c, "z0"), (z1c, "z1")):
        if x.ndim != 2:
            raise ValueError(f"{name} must have shape (B, d), got {tuple(x.shape)}")
    check_same_shape(z0c, z1c, "z0", "z1")
    z0c, z1c = _flatten_pair(metric, z0c, z1c, "z0", "z1")
    info = _log_map(
        metric,
        z0c.detach(),
        z1c.detach(),
        init=init,
        steps=steps,
        max_iter=max_iter,
        tol=tol,
        init_options=init_options,
    )
    if throw:
        info.raise_if_failed()
    return info


# ------------------------------------------------------- connecting method
def geodesic_curve(metric: Metric, z0: Tensor, v: Tensor, *, steps: int = 64) -> HermiteCurve:
    """The geodesics ``t ↦ exp_{z0}(t v)``, ``t ∈ [0, 1]``, as a :class:`HermiteCurve`.

    RK4 with ``steps`` steps; positions and velocities at every step are the knots.
    Pairs whose integration is not finite get the straight line to ``z0 + v``.

    Example:
        >>> import torch
        >>> from latentgeo.metrics import as_metric
        >>> z0, v = torch.zeros(1, 2), torch.ones(1, 2)
        >>> curve = geodesic_curve(as_metric(lambda z: z), z0, v, steps=4)
        >>> curve(torch.tensor([0.5]))
        tensor([[[0.5000, 0.5000]]])
    """
    rhs = geodesic_rhs(metric)
    d = z0.shape[-1]
    with torch.no_grad():
        res = rk4(rhs, torch.cat([z0, v], dim=-1), 1.0, steps, num_points=steps + 1)
    pos, vel = res.states[..., :d], res.states[..., d:]
    bad = ~converged_mask(res.statuses, device=z0.device)
    if bool(bad.any()):
        s = res.times[None, :, None]
        pos[bad] = z0[bad, None] + s * v[bad, None]
        vel[bad] = v[bad, None].expand(-1, s.shape[1], -1)
    return HermiteCurve(res.times, pos, vel)


@register_method("shooting")
def _shooting(
    metric: Metric,
    z0: Tensor,
    z1: Tensor,
    *,
    init: Literal["energy", "straight"] | Tensor = "energy",
    steps: int = 32,
    max_iter: int = 25,
    tol: float | None = None,
    init_options: dict[str, Any] | None = None,
) -> GeodesicResult:
    """``connecting_geodesic(..., method="shooting")``: the log map, then the geodesic through it.

    Options are those of :func:`log_map`. The curve is a :class:`HermiteCurve`
    through the RK4 solution; pairs that failed keep their best shot (status
    says why), or the straight line if even that was not finite.
    """
    info = _log_map(
        metric,
        z0,
        z1,
        init=init,
        steps=steps,
        max_iter=max_iter,
        tol=tol,
        init_options=init_options,
    )
    v = torch.where(torch.isfinite(info.velocity), info.velocity, z1 - z0)
    curve = geodesic_curve(metric, z0, v, steps=steps)
    with torch.no_grad():
        length, energy = length_and_energy(metric, curve)
    return GeodesicResult(
        curve=curve,
        length=length,
        energy=energy,
        converged=info.converged,
        iterations=info.iterations,
        status=list(info.status),
        method="shooting",
        info={"velocity": info.velocity, "residual": info.residual, "log_length": info.length},
    )
