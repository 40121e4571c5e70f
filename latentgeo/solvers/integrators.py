"""Batched integrators for B independent autonomous systems, each reporting its own error.

* :func:`rk4`: classic fixed-step Runge–Kutta 4. Its global error is
  estimated by step doubling: the same interval with about half as many
  steps, ``err ≈ (y_h − y_H) / ((H/h)⁴ − 1)`` (Richardson), which includes
  the growth of early errors.
* :func:`dopri5`: adaptive Dormand–Prince 5(4) with per-solution step sizes
  and error control. Its error estimate is the sum over accepted steps of the
  embedded local error estimates: the global error when earlier errors neither
  grow nor cancel. The propagated solution is the fifth-order one while the
  estimate measures the fourth-order one, so it is usually an overestimate.

Both are differentiable (autograd and forward mode): step sizes are chosen
from detached values, so the derivative is that of the discrete solution on
its mesh, and states are never written in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from latentgeo._options import check_int, check_number
from latentgeo.solvers.status import Status, code, statuses_from_codes

__all__ = ["RHS", "IntegrationResult", "dopri5", "dopri5_rows", "rk4"]

RHS = Callable[[Tensor], Tensor]

# per-solution status codes of :class:`Status` in a (B,) tensor
_OK = code(Status.CONVERGED)
_MAX_STEPS = code(Status.MAX_STEPS)
_NON_FINITE = code(Status.NON_FINITE)
_UNDERFLOW = code(Status.STEP_UNDERFLOW)


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
        error: estimated absolute error of the final state, per component,
            ``(B, D)`` (step doubling for :func:`rk4`, summed local error
            estimates for :func:`dopri5`); ``inf`` where the solution failed.
    """

    times: Tensor
    states: Tensor
    status: Tensor
    steps: Tensor
    evaluations: int
    error: Tensor

    @property
    def statuses(self) -> list[Status]:
        """The status of each solution (``converged``: it reached the end time;
        ``max_steps``, ``nonfinite``, ``step_underflow``)."""
        return statuses_from_codes(self.status)

    @property
    def messages(self) -> list[str]:
        """The status of each solution in words."""
        return [s.value for s in self.statuses]


SAFETY = 3.0  # the step doubling estimate is asymptotically exact: report three times it


def _rk4_step(fn: RHS, y: Tensor, h: float | Tensor) -> Tensor:
    k1 = fn(y)
    k2 = fn(y + (0.5 * h) * k1)
    k3 = fn(y + (0.5 * h) * k2)
    k4 = fn(y + h * k3)
    return y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def rk4(fn: RHS, y0: Tensor, t1: float, steps: int, *, num_points: int = 2) -> IntegrationResult:
    """Classic fixed-step Runge–Kutta 4 for B autonomous systems at once.

    Differentiable and free of data-dependent control flow, so gradients (or
    ``torch.func.jvp``) through it are the exact sensitivities of the discrete
    solution. The error of the final state is estimated by step doubling
    (a second, coarser integration with ``⌈n/2⌉`` steps, without gradients):
    ``(y_n − y_{⌈n/2⌉}) / (r⁴ − 1)`` with ``r = n / ⌈n/2⌉``.

    Args:
        fn: right-hand side, ``(N, D) -> (N, D)``, rows independent.
        y0: initial states ``(B, D)``.
        t1: end time (from 0), finite.
        steps: number of steps, ``≥ 1``; raised to a multiple of ``num_points − 1``.
        num_points: output times ``linspace(0, t1, num_points)``, ``≥ 2`` (start and end).

    Returns:
        An :class:`IntegrationResult`; the status is ``nonfinite`` where the state is not finite.

    Example:
        >>> import torch
        >>> res = rk4(lambda y: -y, torch.ones(2, 1, dtype=torch.float64), 1.0, 20)
        >>> exact = torch.exp(torch.tensor(-1.0, dtype=torch.float64))
        >>> err = (res.states[0, -1, 0] - exact).abs()
        >>> bool(err < 1e-7), bool(1 < res.error[0, 0] / err < 4)  # the estimate is close
        (True, True)
    """
    check_int(steps, "steps")
    check_int(num_points, "num_points", minimum=2)
    if not isinstance(t1, (int, float)) or isinstance(t1, bool) or not abs(t1) < float("inf"):
        raise ValueError(f"t1 must be a finite number, got {t1!r}")
    every = -(-steps // (num_points - 1))
    total = every * (num_points - 1)
    h = t1 / total
    y = y0
    out = [y0]
    for i in range(total):
        y = _rk4_step(fn, y, h)
        if (i + 1) % every == 0:
            out.append(y)
    states = torch.stack(out, dim=1)
    coarse = -(-total // 2)
    with torch.no_grad():
        if total >= 2:
            yc = y0.detach()
            for _ in range(coarse):
                yc = _rk4_step(fn, yc, t1 / coarse)
            error = SAFETY * (y.detach() - yc).abs() / ((total / coarse) ** 4 - 1.0)
        else:  # one step: its difference from an Euler step, a cruder bound
            error = (y.detach() - y0.detach() - h * fn(y0.detach())).abs()
        error = error + torch.finfo(y0.dtype).eps * total * y.detach().abs()  # rounding
    finite = torch.isfinite(states).flatten(1).all(-1) & torch.isfinite(error).all(-1)
    status = torch.where(finite, _OK, _NON_FINITE).to(torch.long)
    error = torch.where(finite[:, None], error, torch.inf)
    times = torch.linspace(0.0, t1, num_points, dtype=y0.dtype, device=y0.device)
    steps_t = torch.full((y0.shape[0],), total, dtype=torch.long, device=y0.device)
    n_evals = 4 * total + (4 * coarse if total >= 2 else 1)
    return IntegrationResult(times, states, status, steps_t, n_evals, error)


# at least this many steps over the whole interval: the embedded error estimate of a
# longer step can miss the error by far (its asymptotic regime has not set in)
MIN_STEPS = 4

# Dormand–Prince 5(4) tableau
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


@torch.no_grad()
def _initial_step(fn: RHS, y0: Tensor, f0: Tensor, rtol: Tensor, atol: Tensor) -> Tensor:
    """Hairer–Nørsett–Wanner's starting step, per row, shape ``(B,)``."""
    scale = atol[:, None] + rtol[:, None] * y0.abs()
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1.clamp_min(1e-300))
    h0 = torch.nan_to_num(h0, nan=1e-6, posinf=1e-6)
    f1 = fn(y0 + h0[:, None] * f0)
    d2 = _rms((f1 - f0) / scale) / h0
    big = torch.maximum(d1, d2)
    h1 = torch.where(big <= 1e-15, torch.clamp(h0 * 1e-3, min=1e-6), (0.01 / big) ** 0.2)
    h1 = torch.nan_to_num(h1, nan=1e-6, posinf=1e-6)
    return torch.minimum(100.0 * h0, h1)


def _check_times(t_eval: object, y0: Tensor) -> Tensor:
    if not isinstance(t_eval, Tensor) or t_eval.ndim != 1 or t_eval.shape[0] < 2:
        raise ValueError(
            f"t_eval must be a 1-d tensor of at least 2 times, got "
            f"{tuple(t_eval.shape) if isinstance(t_eval, Tensor) else type(t_eval).__name__}"
        )
    t = t_eval.detach().to(device=y0.device, dtype=y0.dtype)
    if not bool(torch.isfinite(t).all()) or float(t[0]) != 0.0 or not bool((t.diff() > 0).all()):
        raise ValueError(f"t_eval must be finite, start at 0 and increase strictly, got {t_eval}")
    return t


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
    square over its components of ``err / (atol + rtol·|y|)``), status and
    accumulated error; each iteration advances the unfinished ones in one
    batched call. Steps are shortened to land exactly on the output times.

    Args:
        fn: right-hand side, ``(N, D) -> (N, D)``, rows independent.
        y0: initial states ``(B, D)``.
        t_eval: output times ``(T,)``, ``T ≥ 2``, starting at 0, strictly increasing.
        rtol: relative tolerance per step, ``> 0``.
        atol: absolute tolerance per step, ``≥ 0``.
        max_steps: step attempts per solution (``≥ 1``) before giving up (status ``max_steps``).

    Returns:
        An :class:`IntegrationResult`; ``error`` sums the accepted steps' local
        error estimates (see the module documentation).

    Example:
        >>> import torch
        >>> y0 = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
        >>> res = dopri5(lambda y: -y, y0, torch.tensor([0.0, 1.0]), rtol=1e-10, atol=1e-12)
        >>> res.messages, torch.allclose(res.states[:, -1], y0 * torch.exp(torch.tensor(-1.0)))
        (['converged', 'converged'], True)
        >>> err = (res.states[:, -1] - y0 * torch.exp(torch.tensor(-1.0, dtype=y0.dtype))).abs()
        >>> bool((err <= res.error).all())
        True
    """
    rtol = check_number(rtol, "rtol")
    atol = check_number(atol, "atol", positive=False)
    check_int(max_steps, "max_steps")
    t_eval = _check_times(t_eval, y0)
    full = y0.new_full((y0.shape[0],), 1.0)
    return dopri5_rows(fn, y0, t_eval, rtol=rtol * full, atol=atol * full, max_steps=max_steps)


def dopri5_rows(
    fn: RHS, y0: Tensor, t_eval: Tensor, *, rtol: Tensor, atol: Tensor, max_steps: int
) -> IntegrationResult:
    """:func:`dopri5` with a tolerance per solution, ``rtol`` and ``atol`` of shape ``(B,)``
    (unchecked: ``t_eval`` of ``y0``'s dtype and device, tolerances positive)."""
    b, dim = y0.shape
    n_out = t_eval.shape[0]
    device, dtype = y0.device, y0.dtype
    t_end = float(t_eval[-1])
    states = torch.cat([y0[:, None], y0.new_full((b, n_out - 1, dim), torch.nan)], 1)
    status = torch.full((b,), _OK, dtype=torch.long, device=device)
    steps = torch.zeros(b, dtype=torch.long, device=device)
    attempts = torch.zeros(b, dtype=torch.long, device=device)
    nxt = torch.ones(b, dtype=torch.long, device=device)  # index of the next output time
    t = torch.zeros(b, dtype=dtype, device=device)
    error = torch.zeros(b, dim, dtype=dtype, device=device)
    y = y0
    f = fn(y)
    evaluations = 1
    bad = ~torch.isfinite(f.detach()).all(-1)
    status[bad] = _NON_FINITE
    nxt[bad] = n_out
    h = _initial_step(fn, y.detach(), torch.where(bad[:, None], 0.0, f.detach()), rtol, atol)
    h_max = abs(t_end) / MIN_STEPS
    h = h.clamp(max=h_max)
    evaluations += 1
    eps = torch.finfo(dtype).eps
    h_min = 1e2 * eps * max(abs(t_end), 1e-300)
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
        with torch.no_grad():  # the step size control sees values, never derivatives
            err_vec = hs * sum(e * k.detach() for e, k in zip(_E, ks, strict=True))
            scale = atol[idx, None] + rtol[idx, None] * torch.maximum(
                yi.detach().abs(), y_new.detach().abs()
            )
            err = _rms(err_vec / scale)
            finite = (
                torch.isfinite(err)
                & torch.isfinite(y_new.detach()).all(-1)
                & torch.isfinite(f_new.detach()).all(-1)
            )
            accept = finite & (err <= 1.0)
            factor = torch.where(finite, (0.9 * err.clamp_min(1e-10) ** -0.2).clamp(0.2, 5.0), 0.2)
            h_prop = hs[:, 0] * factor
            h_next = torch.where(accept & clipped, torch.maximum(hi, h_prop), h_prop)
            h_next = h_next.clamp(max=h_max)
            t_next = torch.where(clipped, target, ti + hs[:, 0])
        # commit accepted steps (out of place: gradients flow through y, f and states)
        acc_idx = idx[accept]
        y = y.index_put((acc_idx,), y_new[accept])
        f = f.index_put((acc_idx,), f_new[accept])
        t[acc_idx] = t_next[accept]
        # the truncation estimate, and the rounding of the update (eps·|y| per step)
        error[acc_idx] += err_vec[accept].abs() + eps * y_new.detach()[accept].abs()
        steps[acc_idx] += 1
        hit = accept & clipped
        hit_idx = idx[hit]
        states = states.index_put((hit_idx, nxt[hit_idx]), y_new[hit])
        nxt[hit_idx] += 1
        h[idx] = h_next
        attempts[idx] += 1
        # failures: a rejected step, or an accepted one whose successor, that does not reach
        # an output time, is under the floor (a solution blowing up in finite time keeps
        # being accepted at ever smaller steps until it overflows: 3,164 steps to a NaN)
        ahead = torch.where(clipped, 0.0, target - t_next)  # (0: it reached an output time)
        under = (h_next < h_min) & (~accept | (ahead > h_min))
        status[idx[under]] = torch.where(finite[under], _UNDERFLOW, _NON_FINITE)
        nxt[idx[under]] = n_out
        out_of_budget = (attempts[idx] >= max_steps) & (nxt[idx] < n_out)
        status[idx[out_of_budget]] = _MAX_STEPS
        nxt[idx[out_of_budget]] = n_out
    error = torch.where((status == _OK)[:, None], error, torch.inf)
    return IntegrationResult(t_eval, states, status, steps, evaluations, error)
