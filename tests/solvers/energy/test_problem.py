"""The energy solver's problem: packed parameters, per-pair energies, basis rows, chunks."""

from __future__ import annotations

import pytest
import torch

from latentgeo.curves import CubicSpline, DiscreteCurve, NeuralGeodesic
from latentgeo.exceptions import PerformanceWarning
from latentgeo.metrics import as_metric
from latentgeo.solvers import connecting_geodesic
from latentgeo.solvers.energy import problem
from latentgeo.solvers.energy.problem import DenseRows, Objective, start_level
from latentgeo.testing import StereographicSphere

SPHERE = StereographicSphere()


def _pairs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z0 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    z1 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return z0, z1


def test_chunked_evaluation_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    z0, z1 = _pairs(5, seed=4)
    whole = connecting_geodesic(SPHERE, z0, z1)
    with pytest.warns(PerformanceWarning) as caught:  # one pair per chunk, run and group
        chunked = connecting_geodesic(SPHERE, z0, z1, memory_budget=1)
    said = sorted(str(w.message).split(" (")[0] for w in caught)  # once each per call
    solver = [m for m in said if m.startswith("one pair's")]
    assert solver == ["one pair's L-BFGS memory", "one pair's solver state"]
    assert all("one item" in m for m in said if m not in solver)  # the energy's chunks
    torch.testing.assert_close(chunked.length, whole.length, rtol=1e-12, atol=0)
    assert chunked.status == whole.status
    # too many pairs for dense basis rows of all: sparse rows, dense ones per running set
    monkeypatch.setattr(problem, "DENSE_ENTRIES", 300)
    sparse = connecting_geodesic(SPHERE, z0, z1)
    torch.testing.assert_close(sparse.length, whole.length, rtol=1e-12, atol=0)
    assert sparse.status == whole.status


def _curves(z0: torch.Tensor, z1: torch.Tensor) -> dict[str, object]:
    spline = CubicSpline(z0, z1, num_knots=3)
    polyline = DiscreteCurve(z0, z1, num_points=7)
    neural = NeuralGeodesic(z0, z1, hidden=(8,), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # bend the linear curves away from the straight line
        spline.inner.add_(0.3 * torch.randn_like(spline.inner))
        polyline.inner.add_(0.3 * torch.randn_like(polyline.inner))
    return {"spline": spline, "polyline": polyline, "neural": neural}


def _reference_energy(curve, objective: Objective) -> torch.Tensor:
    """The energy straight from the curve's public evaluation and the sphere's embedding."""
    if objective.estimator == "metric":
        pos, vel = curve.points_and_velocities(objective.times)
        return (objective.weights * as_metric(SPHERE).squared_norm(pos, vel)).sum(-1)
    x = SPHERE(curve(objective.times))
    n = objective.times.shape[1]
    return (n - 1) * ((x[:, 1:] - x[:, :-1]) ** 2).sum((-1, -2))


@pytest.mark.parametrize("kind", ["spline", "polyline", "neural"])
@pytest.mark.parametrize("estimator", ["metric", "chord"])
@pytest.mark.parametrize("dense", [True, False])
def test_energies_and_gradients_match_the_curve_itself(
    kind: str, estimator: str, dense: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not dense:
        monkeypatch.setattr(problem, "DENSE_ENTRIES", 0)
    z0, z1 = _pairs(4, seed=1)
    curve = _curves(z0, z1)[kind]
    objective = Objective(as_metric(SPHERE), curve, estimator, None, 4, None)
    assert objective.linear == (kind != "neural")
    assert objective.tested_by_shape == (kind == "neural")  # no preconditioner: its shape
    t = torch.linspace(0, 1, 9, dtype=torch.float64).expand(4, -1)
    x, idx = objective.packing.flatten(curve), torch.tensor([2, 0])
    torch.testing.assert_close(objective.positions(x[idx], idx, t[:2]), curve(t)[idx])
    if kind != "neural":  # every pair's dense rows kept, or none (sparse rows then)
        assert isinstance(objective.all_rows, DenseRows) == dense
    x = objective.packing.flatten(curve)
    idx = torch.arange(4)
    f, g = objective.value_and_grad(x, idx)
    reference = _reference_energy(curve, objective)
    torch.testing.assert_close(f, reference.detach(), rtol=1e-12, atol=0)
    grads = torch.autograd.grad(reference.sum(), list(curve.parameters()))
    expect = torch.cat([gr.reshape(4, -1) for gr in grads], 1)
    torch.testing.assert_close(g, expect, rtol=1e-10, atol=1e-12)
    # any subset of the pairs: the same rows (every pair depends on its own block only)
    sub = torch.tensor([3, 1])
    f_sub, g_sub = objective.value_and_grad(x[sub], sub)
    torch.testing.assert_close(f_sub, f[sub], rtol=1e-14, atol=0)
    torch.testing.assert_close(g_sub, g[sub], rtol=1e-14, atol=0)


def test_packing_round_trip() -> None:
    z0, z1 = _pairs(3)
    curve = _curves(z0, z1)["neural"]
    packing = problem.Packing.of(curve)
    assert len(packing.names) > 1  # several parameter tensors, each (B, ...)
    x = packing.flatten(curve)
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    before = curve(t).detach()
    packing.write(curve, x + 0.1)
    torch.testing.assert_close(packing.flatten(curve), x + 0.1)
    assert not torch.allclose(curve(t), before)
    for key, value in packing.unflatten(x).items():
        assert key.startswith("curve.") and value.shape[0] == 3


def test_start_level_settles_coincident_zero_and_nonfinite_pairs() -> None:
    from latentgeo.metrics import ExplicitMetric
    from latentgeo.solvers.status import Status, statuses_from_codes

    metric = ExplicitMetric(
        lambda z: torch.where(z[..., :1, None] > 5.0, torch.nan, 1.0) * torch.eye(2, dtype=z.dtype)
    )
    z0 = torch.tensor([[0.0, 0.0], [1.0, 1.0], [6.0, 0.0]], dtype=torch.float64)
    z1 = torch.tensor([[1.0, 0.0], [1.0, 1.0], [7.0, 0.0]], dtype=torch.float64)
    curve = CubicSpline(z0, z1)
    objective = Objective(metric, curve, "metric", None, 4, None)
    state = start_level(objective, curve, torch.zeros(3, dtype=torch.long))
    assert statuses_from_codes(state.status) == [
        Status.MAX_ITERATIONS,  # still to be solved
        Status.CONVERGED,  # coincident end points
        Status.NON_FINITE,
    ]
    assert state.coincident.tolist() == [False, True, False]
    assert state.running(max_iter=5).tolist() == [True, False, False]
    assert state.running(max_iter=0).tolist() == [False, False, False]
    torch.testing.assert_close(state.f[0], torch.tensor(1.0, dtype=torch.float64))
