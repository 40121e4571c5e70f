"""Armijo backtracking line search, per pair, for A independent problems at once."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentgeo.solvers.energy.problem import Objective

__all__ = ["ARMIJO", "MAX_TRIALS", "LineSearchStep", "armijo_search"]

ARMIJO = 1e-4  # sufficient decrease: f(x + a d) ≤ f(x) + ARMIJO · a · gᵀd
MAX_TRIALS = 30  # energy evaluations per pair and line search, at most


@dataclass(frozen=True)
class LineSearchStep:
    """Where the line search took each pair.

    Attributes:
        x: the new parameters ``(A, p)`` (the old ones where the search failed).
        f: their energies ``(A,)``.
        g: their gradients ``(A, p)``.
        failed: ``(A,)`` bool, the pairs for which no trial decreased the
            energy enough; ``None`` when every pair found a step.
    """

    x: Tensor
    f: Tensor
    g: Tensor
    failed: Tensor | None


def armijo_search(
    objective: Objective,
    idx: Tensor,
    x: Tensor,
    f: Tensor,
    g: Tensor,
    direction: Tensor,
    slope: Tensor,
) -> LineSearchStep:
    """Backtrack along ``direction`` from ``x`` until the Armijo condition holds, per pair.

    The unit step is tried first for every pair (one evaluation for all: the
    usual case); a pair that rejects it tries the minimiser of the quadratic
    through ``f(0)``, ``f'(0)`` and the rejected trial, kept within ``[0.1,
    0.5]`` of the last step; at most :data:`MAX_TRIALS` trials.

    Args:
        objective: the energies.
        idx: the pairs ``(A,)`` (rows of the objective's batch).
        x: their parameters ``(A, p)``.
        f: their energies ``(A,)``.
        g: their gradients ``(A, p)``.
        direction: descent directions ``(A, p)``.
        slope: ``gᵀ direction`` ``(A,)``, negative.
    """
    trial = x + direction
    f_trial, g_trial = objective.value_and_grad(trial, idx)
    ok = f_trial <= f + ARMIJO * slope
    if bool(ok.all()):
        return LineSearchStep(trial, f_trial, g_trial, failed=None)
    step = torch.ones_like(f)
    pending = torch.ones_like(f, dtype=torch.bool)
    sub = torch.arange(idx.numel(), device=idx.device)
    x_new, f_new, g_new = x.clone(), f.clone(), g.clone()
    trials = 1
    while True:
        accepted = sub[ok]
        x_new[accepted], f_new[accepted], g_new[accepted] = trial[ok], f_trial[ok], g_trial[ok]
        pending[accepted] = False
        rejected = sub[~ok]
        step[rejected] = _next_step(step[rejected], f_trial[~ok], f[rejected], slope[rejected])
        if trials == MAX_TRIALS:
            break
        sub = pending.nonzero()[:, 0]
        if sub.numel() == 0:
            break
        trial = x[sub] + step[sub, None] * direction[sub]
        f_trial, g_trial = objective.value_and_grad(trial, idx[sub])
        ok = f_trial <= f[sub] + ARMIJO * step[sub] * slope[sub]
        trials += 1
    return LineSearchStep(x_new, f_new, g_new, failed=pending if bool(pending.any()) else None)


def _next_step(step: Tensor, f_trial: Tensor, f0: Tensor, slope: Tensor) -> Tensor:
    """The next trial after ``step`` was rejected: the minimiser of the quadratic through
    ``f(0) = f0``, ``f'(0) = slope`` and ``f(step) = f_trial``, within ``[0.1, 0.5] · step``
    (``0.1 · step`` where the quadratic has no minimum or ``f_trial`` is not finite)."""
    denom = 2.0 * (f_trial - f0 - slope * step)
    quad = -slope * step * step / torch.where(denom > 0, denom, 1.0)
    quad = torch.where(torch.isfinite(f_trial) & (denom > 0), quad, 0.1 * step)
    return torch.minimum(torch.maximum(quad, 0.1 * step), 0.5 * step)
