"""The stationarity test of curves without a preconditioner (neural curves)."""

from __future__ import annotations

import pytest
import torch

from latentgeo.curves import CubicSpline, NeuralGeodesic, curve_length
from latentgeo.metrics import as_metric
from latentgeo.solvers import Status, connecting_geodesic
from latentgeo.solvers.energy import lbfgs
from latentgeo.solvers.energy.problem import Objective
from latentgeo.solvers.energy.stationarity import KNOTS, newton_decrement
from latentgeo.testing import LinearMap, StereographicSphere


def test_the_decrement_is_twice_the_energy_a_flat_metric_still_has_to_lose() -> None:
    """Under a constant metric the energy is quadratic in a spline's control points, so
    ``½ gᵀ K⁻¹ g`` is what the straight line at constant speed (the minimum) lies below a
    bent spline of :data:`KNOTS` knots, up to ``K``'s quadrature (two Gauss–Legendre nodes
    per span, which integrate the quartic ``|γ̇|²`` short): 8% over, on the safe side,
    however far the spline is bent."""
    a = torch.tensor([[2.0, 0.5], [0.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    metric = as_metric(LinearMap(a))
    z0 = torch.tensor([[0.0, 0.0], [1.0, -1.0]], dtype=torch.float64)
    z1 = torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=torch.float64)
    curve = CubicSpline(z0, z1, num_knots=KNOTS)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        curve.inner.add_(0.2 * torch.randn(curve.inner.shape, generator=gen, dtype=torch.float64))
    objective = Objective(metric, curve, "metric", None, 4, None)
    x, idx = objective.packing.flatten(curve), torch.arange(2)
    energy = objective(x, idx)
    minimum = (((z1 - z0) @ a.mT) ** 2).sum(-1)
    ratio = 0.5 * newton_decrement(objective, x, idx) * energy / (energy - minimum)
    assert bool(((ratio > 1.0) & (ratio < 1.1)).all()), ratio
    assert bool((energy - minimum > 0.1 * energy).all())  # far from the minimum


def test_a_straight_neural_curve_under_a_flat_metric_is_stationary() -> None:
    metric = as_metric(LinearMap(torch.eye(2, dtype=torch.float64)))
    z0, z1 = torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)
    curve = NeuralGeodesic(z0, z1, hidden=(4,), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in curve.parameters():
            p.zero_()  # the network adds nothing: the straight line at constant speed
    objective = Objective(metric, curve, "metric", None, 4, None)
    decrement = newton_decrement(objective, objective.packing.flatten(curve), torch.arange(1))
    assert float(decrement) < 1e-14  # rounding (the fit's ridge)


def _sphere_pairs(rows: list[int], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    z0 = (torch.rand(8, 2, generator=gen, dtype=torch.float64) - 0.5) * 4
    z1 = (torch.rand(8, 2, generator=gen, dtype=torch.float64) - 0.5) * 4
    return z0[rows].to(dtype), z1[rows].to(dtype)


@pytest.mark.parametrize(("dtype", "bound"), [(torch.float64, 2e-5), (torch.float32, 1e-4)])
def test_neural_curves_reported_converged_are_stationary(dtype: torch.dtype, bound: float) -> None:
    """Sphere pairs whose neural curves passed the step test with far more than ``tol``
    of their energy to lose (lengths 4e-5 and 4e-4 off in float64, the worst of a new
    user's audit; 3e-4 in float32): now converged only once stationary, their lengths
    within a few ``tol`` of the exact distance (a relative energy gap ``δE`` makes a
    length error ``δE / 2``; in float32 the test holds to ``√eps = 3.5e-4``)."""
    sphere = StereographicSphere()
    z0, z1 = _sphere_pairs([2, 7, 0], dtype)
    torch.manual_seed(0)
    res = connecting_geodesic(sphere, z0, z1, method="neural")
    assert res.converged.all()
    exact = sphere.distance(z0.double(), z1.double())
    error = ((res.length.double() - exact) / exact).abs()
    assert bool((error < bound).all()), error
    if dtype == torch.float64:  # reported at the curve's own length (REPORT_PIECES_ONE_SPAN)
        with torch.no_grad():
            fine = curve_length(sphere, res.curve, num_points=4096)
        torch.testing.assert_close(res.length, fine, rtol=1e-9, atol=0)


def test_a_curve_that_stops_improving_unstationary_is_not_converged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shape test that never passes (a decrement of 1): the pair is not converged, and
    not kept to ``max_iter`` either: once its energy stops falling between two tests it
    stops, ``line_search_failed``."""
    monkeypatch.setattr(lbfgs, "newton_decrement", lambda obj, x, idx: torch.ones_like(x[:, 0]))
    z0, z1 = _sphere_pairs([0], torch.float32)
    torch.manual_seed(0)
    res = connecting_geodesic(StereographicSphere(), z0, z1, method="neural", max_iter=3000)
    assert res.status == [Status.LINE_SEARCH_FAILED]
    assert int(res.iterations[0]) < 1000


def test_an_unknown_decrement_is_tested_again_only_after_check_at_most(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A NaN decrement (a failed factorisation) says nothing of the energy left: the pair
    is tested again :data:`~latentgeo.solvers.energy.lbfgs.CHECK_AT_MOST` iterations on,
    not at every iteration that passes the step test."""
    calls = []

    def unknown(obj: object, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        calls.append(len(idx))
        return torch.full_like(x[:, 0], torch.nan)

    monkeypatch.setattr(lbfgs, "newton_decrement", unknown)
    z0, z1 = _sphere_pairs([0], torch.float64)
    torch.manual_seed(0)
    res = connecting_geodesic(StereographicSphere(), z0, z1, method="neural", max_iter=400)
    assert not res.converged.any()
    assert 2 <= len(calls) <= int(res.iterations[0]) // lbfgs.CHECK_AT_MOST + 2


def test_a_test_over_the_memory_budget_is_announced_once() -> None:
    """One pair's test needs ``(16 d)²``-sized matrices: over the budget it still runs
    (the answer is the same), and says so once per metric."""
    from latentgeo.exceptions import PerformanceWarning
    from latentgeo.memory import memory_budget

    metric = as_metric(LinearMap(torch.eye(2, dtype=torch.float64)))
    z0, z1 = torch.zeros(2, 2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)
    curve = NeuralGeodesic(z0, z1, hidden=(4,), generator=torch.Generator().manual_seed(0))
    objective = Objective(metric, curve, "metric", None, 4, None)
    x, idx = objective.packing.flatten(curve), torch.arange(2)
    free = newton_decrement(objective, x, idx)
    with memory_budget(10_000), pytest.warns(PerformanceWarning) as w:
        tight = newton_decrement(objective, x, idx)
        newton_decrement(objective, x, idx)
    # once; the energy's own pairs (27 KiB each) are announced over the budget too
    assert sum("stationarity test" in str(x.message) for x in w) == 1
    torch.testing.assert_close(tight, free)
