"""Per-pair Adam: budget, patience, best iterate, non-finite energies."""

from __future__ import annotations

import torch

from latentgeo.curves import CubicSpline
from latentgeo.metrics import ExplicitMetric, as_metric
from latentgeo.solvers import Status
from latentgeo.solvers.energy.adam import run_adam
from latentgeo.solvers.energy.problem import Objective, start_level
from latentgeo.solvers.status import statuses_from_codes
from latentgeo.testing import StereographicSphere


def _level(metric, z0: torch.Tensor, z1: torch.Tensor):
    curve = CubicSpline(z0, z1, num_knots=3)
    objective = Objective(metric, curve, "metric", None, 4, None)
    return objective, start_level(objective, curve, torch.zeros(z0.shape[0], dtype=torch.long))


def test_adam_lowers_every_energy_within_its_budget() -> None:
    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    z1 = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    objective, state = _level(as_metric(StereographicSphere()), z0, z1)
    start = state.f.clone()
    run_adam(objective, state, max_iter=15, tol=1e-5, lr=0.05, patience=20)
    assert state.iterations.tolist() == [15] * 3  # patience not reached: the budget ran out
    assert statuses_from_codes(state.status) == [Status.MAX_ITERATIONS] * 3
    assert bool((state.f < start).all())
    # the kept iterate is the best one seen, and its energy is its own
    f, _ = objective.value_and_grad(state.x, torch.arange(3))
    torch.testing.assert_close(f, state.f, rtol=1e-14, atol=0)


def test_patience_and_non_finite_energies() -> None:
    # no progress is possible with a vanishing learning rate: stops after `patience` steps
    metric = ExplicitMetric(
        lambda z: torch.where(z[..., :1, None] > 5.0, torch.nan, 1.0) * torch.eye(2, dtype=z.dtype)
    )
    z0 = torch.tensor([[0.0, 0.0], [6.0, 0.0]], dtype=torch.float64)
    objective, state = _level(metric, z0, z0 + 1.0)
    run_adam(objective, state, max_iter=50, tol=1e-5, lr=1e-12, patience=4)
    assert statuses_from_codes(state.status) == [Status.CONVERGED, Status.NON_FINITE]
    assert state.iterations.tolist() == [4, 0]
