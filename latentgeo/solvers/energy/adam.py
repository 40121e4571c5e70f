"""Per-pair Adam: the optimiser for stochastic energies (``estimator="sampled"``)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from latentgeo.solvers.energy.problem import Objective, PairState
from latentgeo.solvers.status import Status, code

__all__ = ["run_adam"]

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


def run_adam(
    objective: Objective,
    state: PairState,
    *,
    max_iter: int,
    tol: float,
    lr: float,
    patience: int,
    on_step: Callable[[], None] | None = None,
) -> None:
    """Per-pair Adam with learning rate ``lr · scale`` (in place; keeps the best iterate).

    A pair stops, converged, after ``patience`` steps without a relative
    improvement of ``tol``, or at ``max_iter`` iterations; a pair that never
    had a finite energy is non-finite.
    """
    x, f, g, status, iterations = state.x, state.f, state.g, state.status, state.iterations
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    best_x, best_f = x.clone(), f.clone()
    since = torch.zeros_like(iterations)
    step_count = torch.zeros_like(f)
    while True:
        running = state.running(max_iter)
        if not bool(running.any()):
            break
        idx = running.nonzero()[:, 0]
        step_count[idx] += 1
        k = step_count[idx][:, None]
        m[idx] = BETA1 * m[idx] + (1 - BETA1) * g[idx]
        v[idx] = BETA2 * v[idx] + (1 - BETA2) * g[idx] ** 2
        mhat, vhat = m[idx] / (1 - BETA1**k), v[idx] / (1 - BETA2**k)
        x[idx] = x[idx] - lr * state.scale[idx, None] * mhat / (vhat.sqrt() + EPS)
        fi, gi = objective.value_and_grad(x[idx], idx)
        f[idx], g[idx] = fi, gi
        iterations[idx] += 1
        nan = ~torch.isfinite(fi)
        better = (best_f[idx] - fi > tol * fi.abs()) & ~nan
        since[idx] = torch.where(better, 0, since[idx] + 1)
        improved = idx[(fi < best_f[idx]) & ~nan]
        best_x[improved], best_f[improved] = x[improved], f[improved]
        status[idx[since[idx] >= patience]] = code(Status.CONVERGED)
        status[idx[nan & ~torch.isfinite(best_f[idx])]] = code(Status.NON_FINITE)
        if on_step is not None:
            on_step()
    x.copy_(best_x)
    f.copy_(best_f)
