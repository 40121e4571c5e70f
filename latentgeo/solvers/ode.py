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

Integrators work on the first-order state ``y = (γ, γ̇)`` of shape ``(B, 2d)``:
fixed-step RK4 (:func:`rk4`) and an adaptive Dormand–Prince 5(4) with
per-pair step sizes and error control (:func:`dopri5`). Every pair is
integrated independently but in one batched call; pairs that finish, fail or
are rejected never hold the others back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torch.func import jvp

from latentgeo._validation import check_points, check_tangent
from latentgeo.metrics import GeodesicTerms, Metric, MetricLike, as_metric, christoffel_terms
from latentgeo.solvers.status import Status, code, statuses_from_codes

__all__ = [
    "IntegrationResult",
    "dopri5",
    "geodesic_acceleration",
    "geodesic_residual",
    "geodesic_rhs",
    "rk4",
]

Form = Literal["auto", "pullback", "christoffel"]
RHS = Callable[[Tensor], Tensor]

# the integrators keep per-solution status codes of :class:`Status` in a (B,) tensor
_OK = code(Status.CONVERGED)
_MAX_STEPS = code(Status.MAX_STEPS)
_NON_FINITE = code(Status.NON_FINITE)
_UNDERFLOW = code(Status.STEP_UNDERFLOW)


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
@dataclass
class IntegrationResult:
    """States of B independent ODE solutions at shared output times.

    Attributes:
        times: output times, shape ``(T,)``.
        states: the states at those times, shape ``(B, T, D)`` (NaN after a failure).
        status: integer codes per solution, ``(B,)``: codes of
            :class:`~latentgeo.solvers.Status` (see :attr:`statuses`).
        steps: accepted steps per solution, ``(B,)``.
        evaluations: batched right-hand-side calls made.
    """

    times: Tensor
    states: Tensor
    status: Tensor
    steps: Tensor
    evaluations: int

    @property
    def statuses(self) -> list[Status]:
        """The status of each solution (``converged``, ``max_steps``, ``nonfinite``,
        ``step_underflow``)."""
        return statuses_from_codes(self.status)

    @property
    def messages(self) -> list[str]:
        """The status of each solution in words."""
        return [s.value for s in self.statuses]


def rk4(fn: RHS, y0: Tensor, t1: float, steps: int, *, num_points: int = 2) -> IntegrationResult:
    """Classic fixed-step Runge–Kutta 4 for B autonomous systems at once.

    Differentiable (autograd and forward mode) and free of data-dependent
    control flow, so ``torch.func.jvp`` through it gives the exact sensitivities
    of the discrete solution (its variational equation).

    Args:
        fn: right-hand side, ``(N, D) -> (N, D)``, rows independent.
        y0: initial states ``(B, D)``.
        t1: end time (from 0).
        steps: number of steps; raised to a multiple of ``num_points − 1``.
        num_points: output times ``linspace(0, t1, num_points)`` (``2``: start and end).

    Returns:
        An :class:`IntegrationResult`; the status is ``nonfinite`` where the state is not finite.

    Example:
        >>> import torch
        >>> res = rk4(lambda y: -y, torch.ones(2, 1, dtype=torch.float64), 1.0, 20)
        >>> float((res.states[0, -1, 0] - torch.exp(torch.tensor(-1.0))).abs()) < 1e-7
        True
    """
    if num_points < 2:
        raise ValueError(f"num_points must be at least 2, got {num_points}")
    if steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps}")
    every = -(-steps // (num_points - 1))
    total = every * (num_points - 1)
    h = t1 / total
    y = y0
    out = [y0]
    for i in range(total):
        k1 = fn(y)
        k2 = fn(y + (0.5 * h) * k1)
        k3 = fn(y + (0.5 * h) * k2)
        k4 = fn(y + h * k3)
        y = y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        if (i + 1) % every == 0:
            out.append(y)
    states = torch.stack(out, dim=1)
    finite = torch.isfinite(states).flatten(1).all(-1)
    status = torch.where(finite, _OK, _NON_FINITE).to(torch.long)
    times = torch.linspace(0.0, t1, num_points, dtype=y0.dtype, device=y0.device)
    steps_t = torch.full((y0.shape[0],), total, dtype=torch.long, device=y0.device)
    return IntegrationResult(times, states, status, steps_t, 4 * total)


# Dormand–Prince 5(4) tableau
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)


def _rms(x: Tensor) -> Tensor:
    return x.pow(2).mean(-1).sqrt()


def _initial_step(fn: RHS, y0: Tensor, f0: Tensor, rtol: float, atol: float) -> Tensor:
    """Hairer–Nørsett–Wanner's starting step, per row, shape ``(B,)``."""
    scale = atol + rtol * y0.abs()
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1.clamp_min(1e-300))
    h0 = torch.nan_to_num(h0, nan=1e-6, posinf=1e-6)
    f1 = fn(y0 + h0[:, None] * f0)
    d2 = _rms((f1 - f0) / scale) / h0
    big = torch.maximum(d1, d2)
    h1 = torch.where(big <= 1e-15, torch.clamp(h0 * 1e-3, min=1e-6), (0.01 / big) ** 0.2)
    h1 = torch.nan_to_num(h1, nan=1e-6, posinf=1e-6)
    return torch.minimum(100.0 * h0, h1)


def dopri5(
    fn: RHS,
    y0: Tensor,
    t_eval: Tensor,
    *,
    rtol: float,
    atol: float,
    max_steps: int = 10_000,
) -> IntegrationResult:
    """Adaptive Dormand–Prince 5(4) for B autonomous systems, each with its own step size.

    Every solution has its own time, step size, error estimate (a root mean
    square over its components of ``err / (atol + rtol·|y|)``) and status;
    each iteration advances the unfinished ones in one batched call. Steps are
    shortened to land exactly on the output times.

    Args:
        fn: right-hand side, ``(N, D) -> (N, D)``, rows independent.
        y0: initial states ``(B, D)``.
        t_eval: increasing output times ``(T,)`` starting at 0.
        rtol: relative tolerance per step.
        atol: absolute tolerance per step.
        max_steps: step attempts per solution before giving up (status ``max_steps``).

    Returns:
        An :class:`IntegrationResult`.

    Example:
        >>> import torch
        >>> y0 = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
        >>> res = dopri5(lambda y: -y, y0, torch.tensor([0.0, 1.0]), rtol=1e-10, atol=1e-12)
        >>> res.messages, torch.allclose(res.states[:, -1], y0 * torch.exp(torch.tensor(-1.0)))
        (['converged', 'converged'], True)
    """
    b, dim = y0.shape
    n_out = t_eval.shape[0]
    device, dtype = y0.device, y0.dtype
    t_eval = t_eval.to(device=device, dtype=dtype)
    t_end = float(t_eval[-1])
    states = torch.full((b, n_out, dim), torch.nan, dtype=dtype, device=device)
    states[:, 0] = y0
    status = torch.full((b,), _OK, dtype=torch.long, device=device)
    steps = torch.zeros(b, dtype=torch.long, device=device)
    attempts = torch.zeros(b, dtype=torch.long, device=device)
    nxt = torch.ones(b, dtype=torch.long, device=device)  # index of the next output time
    t = torch.zeros(b, dtype=dtype, device=device)
    y = y0.clone()
    f = fn(y)
    evaluations = 1
    bad = ~torch.isfinite(f).all(-1)
    status[bad] = _NON_FINITE
    nxt[bad] = n_out
    h = _initial_step(fn, y, torch.where(bad[:, None], 0.0, f), rtol, atol)
    evaluations += 1
    h_min = 1e2 * torch.finfo(dtype).eps * max(abs(t_end), 1e-300)
    eps = torch.finfo(dtype).eps
    while True:
        idx = (nxt < n_out).nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        yi, fi, ti, hi = y[idx], f[idx], t[idx], h[idx]
        target = t_eval[nxt[idx]]
        remaining = target - ti
        clipped = hi >= remaining * (1.0 - 4 * eps)
        hs = torch.where(clipped, remaining, hi)[:, None]
        ks = [fi]
        for i in range(1, 6):
            incr = sum(a * k for a, k in zip(_A[i], ks, strict=True))
            ks.append(fn(yi + hs * incr))
        y_new = yi + hs * sum(bb * k for bb, k in zip(_B, ks, strict=True))
        f_new = fn(y_new)
        evaluations += 6
        ks.append(f_new)
        err_vec = hs * sum(e * k for e, k in zip(_E, ks, strict=True))
        scale = atol + rtol * torch.maximum(yi.abs(), y_new.abs())
        err = _rms(err_vec / scale)
        finite = torch.isfinite(err) & torch.isfinite(y_new).all(-1) & torch.isfinite(f_new).all(-1)
        accept = finite & (err <= 1.0)
        factor = torch.where(
            finite, (0.9 * err.clamp_min(1e-10) ** -0.2).clamp(0.2, 5.0), torch.full_like(err, 0.2)
        )
        h_prop = hs[:, 0] * factor
        h_next = torch.where(accept & clipped, torch.maximum(hi, h_prop), h_prop)
        t_next = torch.where(clipped, target, ti + hs[:, 0])
        # commit accepted steps
        acc_idx = idx[accept]
        y[acc_idx] = y_new[accept]
        f[acc_idx] = f_new[accept]
        t[acc_idx] = t_next[accept]
        steps[acc_idx] += 1
        hit = accept & clipped
        hit_idx = idx[hit]
        states[hit_idx, nxt[hit_idx]] = y_new[hit]
        nxt[hit_idx] += 1
        h[idx] = h_next
        attempts[idx] += 1
        # failures
        under = ~accept & (h_next < h_min)
        status[idx[under]] = torch.where(finite[under], _UNDERFLOW, _NON_FINITE)
        nxt[idx[under]] = n_out
        out_of_budget = (attempts[idx] >= max_steps) & (nxt[idx] < n_out)
        status[idx[out_of_budget]] = _MAX_STEPS
        nxt[idx[out_of_budget]] = n_out
    return IntegrationResult(t_eval, states, status, steps, evaluations)
