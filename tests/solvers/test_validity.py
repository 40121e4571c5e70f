"""Metrics that are not metrics: every solver reports ``invalid_metric`` and no length.

Two explicit metrics that are fine for ``z₀ > −1`` and not beyond:
``G = diag(1, 1 + z₀)`` (indefinite: vertical motion has a negative squared
norm) and ``G = diag(1, sqrt(1 + z₀))`` (NaN). In each batch pair 0 lies where
the metric is valid (it must still converge, with a finite length), pair 1
where it is not.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from latentgeo.metrics import ExplicitMetric
from latentgeo.solvers import (
    Status,
    connecting_geodesic,
    exp_map,
    exp_map_result,
    log_map,
    log_map_result,
)
from latentgeo.solvers.graph import segment_lengths
from latentgeo.solvers.validity import invalid_squared_norms, negative_rtol

DTYPES = [torch.float64, torch.float32]


def _diag(second: Callable[[Tensor], Tensor]) -> ExplicitMetric:
    def tensor(z: Tensor) -> Tensor:
        return torch.diag_embed(torch.stack([torch.ones_like(z[..., 0]), second(z[..., 0])], -1))

    return ExplicitMetric(tensor, latent_dim=2)


METRICS = {
    "indefinite": _diag(lambda x: 1.0 + x),
    "nan": _diag(lambda x: torch.sqrt(1.0 + x)),
}


def _pairs(dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    z0 = torch.tensor([[1.0, 0.0], [-3.0, 0.0]], dtype=dtype)
    z1 = torch.tensor([[1.0, 0.5], [-3.0, 0.5]], dtype=dtype)
    return z0, z1


def _check(status: list[Status], length: Tensor | None = None) -> None:
    assert status == [Status.CONVERGED, Status.INVALID_METRIC]
    if length is not None:
        assert bool(torch.isfinite(length[0])) and bool(length[0] > 0)
        assert bool(torch.isnan(length[1]))  # never a length


# ------------------------------------------------------------------ the test itself
def test_invalid_squared_norms_tells_rounding_from_a_negative_norm() -> None:
    eps = torch.finfo(torch.float64).eps
    sq = torch.tensor(
        [
            [1.0, 0.0, -eps],  # rounding of a semi-definite G along a null direction
            [1.0, 0.5, -1e-3],  # indefinite
            [1.0, float("inf"), 1.0],
            [float("nan"), 1.0, 1.0],
            [-1.0, -2.0, -3.0],  # all negative: no scale to hide behind
            [0.0, 0.0, 0.0],
        ],
        dtype=torch.float64,
    )
    assert invalid_squared_norms(sq).tolist() == [False, True, True, True, True, False]
    # entries at states that were not finite (a diverged solver) are the solver's failure
    valid = torch.ones_like(sq, dtype=torch.bool)
    valid[3, 0] = False
    assert not bool(invalid_squared_norms(sq, valid)[3])
    assert negative_rtol(torch.float32) > negative_rtol(torch.float64)


# ------------------------------------------------------------------ exp and log maps
@pytest.mark.parametrize("name", list(METRICS))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_exp_map_reports_invalid_metric(name: str, dtype: torch.dtype, method: str) -> None:
    z0, z1 = _pairs(dtype)
    res = exp_map_result(METRICS[name], z0, z1 - z0, method=method)  # type: ignore[arg-type]
    _check(res.status)
    assert res.converged.tolist() == [True, False]
    assert bool(torch.isnan(exp_map(METRICS[name], z0, z1 - z0)[1]).all())


@pytest.mark.parametrize("name", list(METRICS))
def test_log_map_reports_invalid_metric(name: str) -> None:
    z0, z1 = _pairs(torch.float64)
    res = log_map_result(METRICS[name], z0, z1)
    _check(res.status, res.length)
    assert bool(torch.isnan(log_map(METRICS[name], z0, z1)[1]).all())


# ------------------------------------------------------------------ connecting_geodesic
@pytest.mark.parametrize("name", list(METRICS))
@pytest.mark.parametrize("method", ["spline", "discrete", "shooting", "bvp"])
def test_connecting_geodesic_reports_invalid_metric(name: str, method: str) -> None:
    z0, z1 = _pairs(torch.float64)
    res = connecting_geodesic(METRICS[name], z0, z1, method=method)
    _check(res.status, res.length)
    assert res.converged.tolist() == [True, False]
    assert res.num_converged == 1


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_energy_solver_drawn_into_the_indefinite_region_reports_it(dtype: torch.dtype) -> None:
    # the straight line from (0, 0) to (−3, 1) is valid everywhere (γ̇ᵀGγ̇ = 10 + z₀ ≥ 7),
    # but its energy is unbounded below: the optimiser pulls the curve where it is negative
    z0 = torch.tensor([[0.0, 0.0]], dtype=dtype)
    z1 = torch.tensor([[-3.0, 1.0]], dtype=dtype)
    res = connecting_geodesic(METRICS["indefinite"], z0, z1, method="spline", max_iter=100)
    assert res.status == [Status.INVALID_METRIC]
    assert bool(torch.isnan(res.length).all()) and bool(torch.isnan(res.energy).all())


@pytest.mark.parametrize("name", list(METRICS))
@pytest.mark.parametrize("refine", [True, False])
def test_graph_reports_invalid_metric(name: str, refine: bool) -> None:
    z0, z1 = _pairs(torch.float64)
    x = torch.linspace(-4.0, 2.0, 13, dtype=torch.float64)
    points = torch.cartesian_prod(x, torch.linspace(-1.0, 1.0, 9, dtype=torch.float64))
    res = connecting_geodesic(METRICS[name], z0, z1, method="graph", points=points, refine=refine)
    first = Status.CONVERGED if refine else Status.NOT_SOLVED
    assert res.status == [first, Status.INVALID_METRIC]
    assert bool(torch.isfinite(res.length[0])) and bool(torch.isnan(res.length[1]))


def test_graph_names_edges_left_out_for_an_invalid_metric() -> None:
    # with a NaN metric for z₀ < −1 every edge there is left out: pair 1 is cut off by it
    metric = METRICS["nan"]
    a = torch.tensor([[1.0, 0.0], [-3.0, 0.0], [-3.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 0.5], [-3.0, 0.5], [-2.0, 0.0]], dtype=torch.float64)
    lengths = segment_lengths(metric, a, b)
    assert bool(torch.isfinite(lengths[0])) and bool(torch.isnan(lengths[1:]).all())
    z0, z1 = _pairs(torch.float64)
    x = torch.linspace(-4.0, 2.0, 13, dtype=torch.float64)
    points = torch.cartesian_prod(x, torch.linspace(-1.0, 1.0, 9, dtype=torch.float64))
    res = connecting_geodesic(metric, z0, z1, method="graph", points=points)
    assert res.status[1] is Status.INVALID_METRIC
    assert res.message is not None and "invalid" in res.message[1]
