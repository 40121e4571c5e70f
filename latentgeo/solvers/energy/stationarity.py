"""Whether a curve that is not linear in its parameters (a neural curve) is stationary.

L-BFGS on a neural curve has no preconditioner and often converges slowly:
many small steps, each below the step test's ``tol``, whose sum is not (a new
user's audit: curves reported converged with 30-110 times ``tol`` of their
energy still to lose, their lengths 5e-5 to 5e-4 off). What the curve's own
parameters cannot tell, the curve's shape can: the cubic spline with
:data:`KNOTS` interior knots fitted to it is as good as the curve (a smooth
curve is fitted to far below the tolerances), and for a spline the energy's
Hessian with the metric frozen, ``K``, is a good model (the spline solver's
preconditioner). The energy a Newton step on that spline would remove,
``½ gᵀ H⁻¹ g`` with ``H = 2K``, estimates what the curve still has to lose,
whatever its parametrisation; a pair is stationary when ``gᵀ H⁻¹ g ≤ tol·|E|``
(the spline solver's own test, its direction ``−H⁻¹ g``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from latentgeo._chunked import TARGET
from latentgeo.curves import CubicSpline
from latentgeo.exceptions import PerformanceWarning, warn_once
from latentgeo.memory import current_memory_budget
from latentgeo.solvers.energy.preconditioner import (
    RIDGE,
    frozen_metric_hessian,
    pair_bytes,
    pairs_per_chunk,
)
from latentgeo.solvers.energy.problem import Objective

__all__ = ["KNOTS", "newton_decrement"]

#: interior knots of the spline fitted to a curve to test it (its decrement changed by
#: less than 10% between 16 and 32 knots on the sphere's neural curves; 8 were too few)
KNOTS = 16


def newton_decrement(objective: Objective, x: Tensor, idx: Tensor) -> Tensor:
    """``gᵀ H⁻¹ g / |E|`` ``(A,)`` of the cubic spline fitted to each curve of the pairs
    ``idx`` with parameters ``x`` ``(A, p)``: twice the relative energy a Newton step in
    the space of splines would still remove (see the module docstring).

    Args:
        objective: the energies of the curves (the spline's are measured alike: the same
            metric, estimator, points and nodes).
        x: the pairs' parameters ``(A, p)``.
        idx: their rows in the objective's batch ``(A,)``.
    """
    z0, z1 = objective.buffers["curve.z0"][idx], objective.buffers["curve.z1"][idx]
    t = torch.linspace(0.0, 1.0, 8 * (KNOTS + 1) + 1, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        points = objective.positions(x, idx, t.expand(len(idx), -1))
    spline = CubicSpline(z0, z1, num_knots=KNOTS)
    spline.fit(t, points)
    fitted = Objective(
        objective.metric, spline, objective.estimator, objective.num_points, objective.nodes,
        objective.generator,
    )  # fmt: skip
    xs = fitted.packing.flatten(spline)
    _announce_over_budget(fitted, xs)
    rows = torch.arange(len(idx), device=x.device)
    f, g = fitted.value_and_grad(xs, rows)
    decrement = torch.empty_like(f)
    for chunk in rows.split(pairs_per_chunk(fitted, xs)):  # (a Cholesky solve: no inverse)
        hess = frozen_metric_hessian(fitted, xs[chunk], chunk)
        ridge = RIDGE * hess.diagonal(dim1=-2, dim2=-1).abs().mean(-1).clamp_min(1e-300)
        eye = torch.eye(hess.shape[-1], dtype=hess.dtype, device=hess.device)
        hess = hess + ridge[:, None, None] * eye
        chol, info = torch.linalg.cholesky_ex(hess)
        step = torch.cholesky_solve(g[chunk, :, None], chol)[..., 0]
        decrement[chunk] = torch.where(info == 0, (g[chunk] * step).sum(-1), torch.nan)
    return decrement / f.abs().clamp_min(torch.finfo(f.dtype).tiny)


def _announce_over_budget(fitted: Objective, xs: Tensor) -> None:
    """Warn once per metric when one pair's test alone exceeds its share of the budget
    (its ``p × p`` matrices, ``p = KNOTS · d``: about 2 GB at d = 1000)."""
    per_pair = pair_bytes(fitted, xs)
    budget = TARGET * current_memory_budget(xs.device)
    if per_pair > budget:
        p = xs.shape[1]
        warn_once(
            fitted.metric,
            PerformanceWarning(
                f"the stationarity test of one neural curve ({per_pair:,} bytes: {p} x {p} "
                f"matrices, p = {KNOTS} x d) exceeds {TARGET:.0%} of the memory budget "
                f"({round(budget / TARGET):,} bytes); each is tested over the budget: use "
                "method='spline' at this latent dimension, or raise memory_budget"
            ),
            key="a neural curve's stationarity test over the memory budget",
        )
