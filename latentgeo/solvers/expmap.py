"""The exponential map: the geodesic ODE integrated to a stated tolerance, for B pairs at once.

:func:`exp_map` integrates ``γ̈ = −Γ(γ̇, γ̇)`` from ``(z, v)`` in one batched
call and returns ``exp_z(t v)`` whose estimated error is within
``atol + rtol·‖exp_z(t v)‖`` (Euclidean norms of latent coordinates): with the
adaptive Dormand–Prince 5(4) (``method="dopri5"``, the default), per-step
tolerances a fraction of the requested one, and the pairs whose summed local
error estimate still exceeds it integrated again with tighter ones; with
fixed-step RK4 (``method="rk4"``), the number of steps chosen from a step
doubling estimate (or given). A pair is ``converged`` only when its estimate
meets the tolerance (``integration_error`` otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from latentgeo._options import check_int, check_optional_number
from latentgeo._validation import check_points, check_same_shape
from latentgeo.memory import use_memory_budget
from latentgeo.metrics import Metric, MetricLike, as_metric
from latentgeo.solvers.hermite import HermiteCurve
from latentgeo.solvers.integrators import IntegrationResult, dopri5, rk4
from latentgeo.solvers.ode import geodesic_rhs
from latentgeo.solvers.result import ExpMapResult, ShootingError
from latentgeo.solvers.status import (
    Status,
    code,
    converged_mask,
    statuses_from_codes,
)
from latentgeo.solvers.validity import INVALID, invalid_along

__all__ = [
    "ExpMapResult",
    "ShootingError",
    "default_tolerances",
    "exp_map",
    "exp_map_result",
    "geodesic_curve",
]

LOCAL_FRACTION = 0.05  # per-step tolerances of dopri5, as a fraction of the requested one
RETRIES = 3  # integrations again, with tighter tolerances, of pairs above the tolerance
RK4_FIRST_STEPS = 8  # RK4 steps of the first try when ``steps`` is not given
_OK, _ERR = code(Status.CONVERGED), code(Status.INTEGRATION_ERROR)


def default_tolerances(dtype: torch.dtype) -> tuple[float, float]:
    """``(rtol, atol)`` of exp and log maps: ``(1e-6, 1e-9)`` in float64, ``(1e-4, 1e-7)``
    otherwise."""
    return (1e-6, 1e-9) if dtype == torch.float64 else (1e-4, 1e-7)


def tolerances(dtype: torch.dtype, rtol: object, atol: object) -> tuple[float, float]:
    """Validated ``(rtol, atol)``, defaults filled in."""
    r = check_optional_number(rtol, "rtol")
    a = check_optional_number(atol, "atol", positive=False)
    dr, da = default_tolerances(dtype)
    return dr if r is None else r, da if a is None else a


def flatten_pair(metric: Metric, x: object, y: object, na: str, nb: str) -> tuple[Tensor, Tensor]:
    """Validate two ``(..., d)`` tensors, broadcast them and flatten to ``(B, d)`` (and
    the metric's modules for them, :meth:`~latentgeo.metrics.Metric.check_like`)."""
    a = metric.validated_points(x, na)
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


@dataclass
class Integrated:
    """Positions and velocities ``(B, T, d)`` at ``times`` ``(T,)`` with per-pair status
    codes, accepted steps and estimated position errors ``(B,)``."""

    times: Tensor
    pos: Tensor
    vel: Tensor
    codes: Tensor
    steps: Tensor
    error: Tensor

    def merge(self, rows: Tensor, other: Integrated) -> Integrated:
        """This with the pairs ``rows`` replaced by ``other`` (out of place)."""
        return Integrated(
            self.times,
            *(a.index_put((rows,), b) for a, b in zip(self._parts(), other._parts(), strict=True)),
        )

    def _parts(self) -> tuple[Tensor, ...]:
        return self.pos, self.vel, self.codes, self.steps, self.error


def _run(
    metric: Metric, y0: Tensor, method: str, level: float, steps: int, max_steps: int, n: int
) -> IntegrationResult:
    """One integration over ``[0, 1]``: dopri5 with per-step tolerances ``level``
    (relative and absolute), or RK4 with ``steps`` steps."""
    if method == "rk4":
        return rk4(geodesic_rhs(metric), y0, 1.0, steps, num_points=n)
    t_eval = torch.linspace(0.0, 1.0, n, dtype=y0.dtype, device=y0.device)
    return dopri5(geodesic_rhs(metric), y0, t_eval, rtol=level, atol=level, max_steps=max_steps)


def _unpack(res: IntegrationResult, d: int) -> Integrated:
    err = res.error[:, :d].norm(dim=-1)
    return Integrated(
        res.times, res.states[..., :d], res.states[..., d:], res.status, res.steps, err
    )


def integrate(
    metric: Metric,
    z: Tensor,
    v: Tensor,
    *,
    method: str,
    rtol: float,
    atol: float,
    steps: int | None,
    max_steps: int,
    num_points: int,
) -> Integrated:
    """Integrate over ``[0, 1]`` from ``(z, v)`` ``(B, d)`` until each pair's estimated
    end-point error is at most ``atol + rtol·‖end‖``, or report ``integration_error``."""
    d = z.shape[-1]
    y0 = torch.cat([z, v], dim=-1)
    floor = 10.0 * torch.finfo(z.dtype).eps  # below this the rounding dominates
    level = max(LOCAL_FRACTION * rtol, floor)
    n_steps = RK4_FIRST_STEPS if steps is None else steps
    out = _unpack(_run(metric, y0, method, level, n_steps, max_steps, num_points), d)
    retries = 0 if method == "rk4" and steps is not None else RETRIES
    for attempt in range(retries + 1):
        with torch.no_grad():
            bound = atol + rtol * out.pos[:, -1].detach().norm(dim=-1)
            over = (out.codes == _OK) & ~(out.error <= bound)
        if attempt == retries or not bool(over.any()):
            break
        rows = over.nonzero().squeeze(1)
        ratio = float((out.error[rows] / bound[rows]).max())
        if method == "rk4":  # RK4's error falls like n⁻⁴
            n_steps = min(max_steps, int(n_steps * (2.0 * ratio) ** 0.25) + 1)
        else:  # summed local errors fall roughly like tol^(4/5)
            if level <= floor:  # nothing left to tighten
                break
            level = max(level * min(0.5, (0.5 / ratio) ** 1.25), 1e-3 * level, floor)
        redo = _run(metric, y0[rows], method, level, n_steps, max_steps, num_points)
        out = out.merge(rows, _unpack(redo, d))
    with torch.no_grad():
        bound = atol + rtol * out.pos[:, -1].detach().norm(dim=-1)
        out.codes = torch.where((out.codes == _OK) & ~(out.error <= bound), _ERR, out.codes)
    return out


def _check_options(
    method: object, rtol: object, atol: object, steps: object, max_steps: object, num_points: object
) -> str:
    """Validate the options of the exponential map; return the method."""
    if method not in ("dopri5", "rk4"):
        raise ValueError(f"method must be 'dopri5' or 'rk4', got {method!r}")
    check_optional_number(rtol, "rtol")
    check_optional_number(atol, "atol", positive=False)
    if steps is not None:
        check_int(steps, "steps")
    check_int(max_steps, "max_steps")
    check_int(num_points, "num_points", minimum=2)
    return str(method)


def exp_map(
    metric_or_decoder: MetricLike,
    z: Tensor,
    v: Tensor,
    *,
    t: float = 1.0,
    method: Literal["dopri5", "rk4"] = "dopri5",
    rtol: float | None = None,
    atol: float | None = None,
    steps: int | None = None,
    max_steps: int = 10_000,
    return_path: bool = False,
    num_points: int = 33,
    throw: bool = False,
    memory_budget: int | None = None,
) -> Tensor:
    """The exponential map ``exp_z(t v)``: the geodesic from ``z`` with velocity ``v``, at ``t``.

    All B geodesics are integrated independently in one batched call, each
    to its own tolerance: ``‖exp_map − exp_z(t v)‖ ≤ atol + rtol·‖exp_map‖`` by
    the integrator's error estimate, or the pair is not ``converged``.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: base points, shape ``(B, d)`` (any ``(..., d)`` broadcasting against ``v``).
        v: initial velocities, shape ``(B, d)``.
        t: the time to integrate to (``exp_z(t v) = γ_v(t)``; negative goes backwards).
        method: ``"dopri5"`` (adaptive Dormand–Prince 5(4), per-pair error control)
            or ``"rk4"`` (fixed-step RK4, error by step doubling).
        rtol: relative tolerance on the end point, ``> 0`` (default 1e-6 in
            float64, 1e-4 in float32).
        atol: absolute tolerance on the end point, ``≥ 0`` (default 1e-9 in
            float64, 1e-7 in float32).
        steps: RK4 steps, ``≥ 1`` (rounded up to a multiple of ``num_points − 1``);
            ``None``: chosen from the error estimate to meet the tolerance.
        max_steps: step attempts per pair, ``≥ 1``, before status ``max_steps``
            (``"dopri5"``; the most RK4 steps chosen automatically).
        return_path: return the geodesic at ``num_points`` equally spaced times instead.
        num_points: points on the returned path, including both ends, ``≥ 2``.
        throw: raise :class:`ShootingError` if any pair did not converge.
        memory_budget: bytes the integration may use (``None``: the budget in
            force, see :mod:`latentgeo.memory`).

    Returns:
        ``exp_z(t v)`` of shape ``(B, d)``; NaN for pairs that did not converge
        (a singular metric, a geodesic leaving the decoder's range of finite
        values, an exhausted step budget or an error above the tolerance).
        With ``return_path``: the path ``(B, T, d)``. :func:`exp_map_result`
        returns the whole :class:`ExpMapResult`.

    Gradients with respect to ``z`` and ``v`` flow through the integration:
    they are those of the discrete solution on its mesh.

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> disk = PoincareDisk()
        >>> z = torch.tensor([[0.1, 0.2]], dtype=torch.float64)
        >>> v = torch.tensor([[0.3, -0.4]], dtype=torch.float64)
        >>> torch.allclose(exp_map(disk, z, v), disk.exp(z, v), rtol=1e-6, atol=0)
        True
    """
    check_int(num_points, "num_points", minimum=2)
    info = exp_map_result(
        metric_or_decoder, z, v,
        t=t, method=method, rtol=rtol, atol=atol, steps=steps, max_steps=max_steps,
        num_points=num_points if return_path else 2, throw=throw, memory_budget=memory_budget,
    )  # fmt: skip
    if return_path:
        assert info.path is not None
        return torch.where(info.converged[..., None, None], info.path, torch.nan)
    return torch.where(info.converged[..., None], info.point, torch.nan)


def exp_map_result(
    metric_or_decoder: MetricLike,
    z: Tensor,
    v: Tensor,
    *,
    t: float = 1.0,
    method: Literal["dopri5", "rk4"] = "dopri5",
    rtol: float | None = None,
    atol: float | None = None,
    steps: int | None = None,
    max_steps: int = 10_000,
    num_points: int = 2,
    throw: bool = False,
    memory_budget: int | None = None,
) -> ExpMapResult:
    """:func:`exp_map` with the whole result: per-pair status, error estimate, steps, the path.

    Arguments as :func:`exp_map`; the path at ``num_points`` equally spaced
    times (``2``: the ends) is in ``times``, ``path`` and ``path_velocity``.
    ``point`` holds every pair that reached ``t``, converged or not.

    Returns:
        An :class:`ExpMapResult`.

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> res = exp_map_result(PoincareDisk(), torch.zeros(2, 2, dtype=torch.float64),
        ...                      torch.ones(2, 2, dtype=torch.float64))
        >>> res.status, res.path.shape, bool((res.error < 1e-6).all())
        ([Status.CONVERGED, Status.CONVERGED], torch.Size([2, 2, 2]), True)
    """
    name = _check_options(method, rtol, atol, steps, max_steps, num_points)
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not abs(t) < float("inf"):
        raise ValueError(f"t must be a finite number, got {t!r}")
    metric = as_metric(metric_or_decoder)
    z2, v2 = flatten_pair(metric, z, v, "z", "v")
    rtol_, atol_ = tolerances(z2.dtype, rtol, atol)
    batch = torch.broadcast_shapes(z.shape, v.shape)[:-1]
    d = z2.shape[-1]
    t = float(t)
    grad = torch.is_grad_enabled() and (z2.requires_grad or v2.requires_grad)
    with use_memory_budget(memory_budget):
        with torch.set_grad_enabled(grad):
            # γ_v(t s) = γ_{t v}(s): integrate the scaled velocity over [0, 1]
            out = integrate(
                metric, z2, t * v2,
                method=name, rtol=rtol_, atol=atol_, steps=steps, max_steps=max_steps,
                num_points=num_points,
            )  # fmt: skip
        # a negative or non-finite squared norm on the path: no geodesic of a metric
        invalid = invalid_along(metric, out.pos.detach(), out.vel.detach())
    vel = out.vel / t if t != 0.0 else v2[:, None].expand_as(out.vel)
    status = statuses_from_codes(torch.where(invalid, INVALID, out.codes))
    ok = converged_mask(status, device=z2.device)
    reached = torch.isfinite(out.pos[:, -1]).all(-1, keepdim=True)
    info = ExpMapResult(
        point=torch.where(reached, out.pos[:, -1], torch.nan).reshape(*batch, d),
        velocity=torch.where(reached, vel[:, -1], torch.nan).reshape(*batch, d),
        converged=ok.reshape(batch),
        status=status,
        steps=out.steps.reshape(batch),
        times=t * out.times,
        path=out.pos.reshape(*batch, -1, d),
        path_velocity=vel.reshape(*batch, -1, d),
        error=out.error.reshape(batch),
    )
    if throw:
        info.raise_if_failed()
    return info


def geodesic_curve(
    metric: Metric,
    z0: Tensor,
    v: Tensor,
    *,
    num_points: int = 33,
    method: Literal["dopri5", "rk4"] = "dopri5",
    rtol: float | None = None,
    atol: float | None = None,
    steps: int | None = None,
    max_steps: int = 10_000,
) -> HermiteCurve:
    """The geodesics ``t ↦ exp_{z0}(t v)``, ``t ∈ [0, 1]``, as a :class:`HermiteCurve`.

    The exponential map (options as :func:`exp_map`) at ``num_points`` equally
    spaced times gives the knots' positions and velocities; the cubic Hermite
    interpolant between them is fourth-order accurate. Pairs whose
    integration is not finite get the straight line to ``z0 + v``.

    Example:
        >>> import torch
        >>> from latentgeo.metrics import as_metric
        >>> z0, v = torch.zeros(1, 2), torch.ones(1, 2)
        >>> curve = geodesic_curve(as_metric(lambda z: z), z0, v, num_points=5)
        >>> curve(torch.tensor([0.5]))
        tensor([[[0.5000, 0.5000]]])
    """
    with torch.no_grad():
        info = exp_map_result(
            metric, z0, v,
            method=method, rtol=rtol, atol=atol, steps=steps, max_steps=max_steps,
            num_points=num_points,
        )  # fmt: skip
        assert info.path is not None and info.path_velocity is not None and info.times is not None
        pos, vel = info.path, info.path_velocity
        bad = ~(torch.isfinite(pos).flatten(1).all(-1) & torch.isfinite(vel).flatten(1).all(-1))
        s = info.times[None, :, None]
        pos = torch.where(bad[:, None, None], z0[:, None] + s * v[:, None], pos)
        vel = torch.where(bad[:, None, None], v[:, None].expand_as(vel), vel)
    return HermiteCurve(info.times, pos, vel)
