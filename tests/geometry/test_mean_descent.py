"""The Fréchet mean's descent: its pairs' bookkeeping and what it asks of log maps."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from latentgeo.geometry import frechet_mean
from latentgeo.geometry.mean_descent import SetPairs
from latentgeo.solvers import Status
from latentgeo.testing import StereographicSphere


def test_set_pairs_keep_positive_weights_and_average_per_set() -> None:
    x = torch.arange(12, dtype=torch.float64).reshape(2, 3, 2)
    w = torch.tensor([[1.0, 0.0, 3.0], [2.0, 2.0, 0.0]], dtype=torch.float64)
    pairs = SetPairs(x, w)
    assert pairs.set_idx.tolist() == [0, 0, 1, 1] and pairs.pt_idx.tolist() == [0, 2, 0, 1]
    values = torch.tensor([1.0, 5.0, 2.0, torch.inf], dtype=torch.float64)
    torch.testing.assert_close(pairs.weighted_mean(values)[0], torch.tensor(4.0).double())
    assert pairs.weighted_mean(values)[1] == torch.inf  # an unbounded error stays unbounded
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    length = torch.tensor([1.0, 2.0, 3.0, 1.0], dtype=torch.float64)
    f, vbar = pairs.summarise(torch.arange(4), v, length)
    torch.testing.assert_close(f, torch.tensor([0.5 * (1 + 12) / 4, 0.5 * (18 + 2) / 4]).double())
    torch.testing.assert_close(vbar, torch.tensor([[0.25, 0.75], [1.0, 1.0]]).double())


def test_no_step_goes_beyond_the_farthest_point() -> None:
    # six points about 2 rad from their mean on the unit sphere: Barzilai–Borwein proposed
    # steps of 16 rad and more (around the sphere) before each was halved back
    sphere = StereographicSphere()
    torch.manual_seed(0)
    centre = 0.5 * torch.randn(3, 2, dtype=torch.float64)
    tangents = 0.9 * torch.randn(3, 6, 2, dtype=torch.float64)
    x = sphere.exp(centre[:, None].expand(-1, 6, -1), tangents)
    for points in x:  # one set at a time: the steps are those of that set
        steps: list[tuple[Tensor, Tensor]] = []

        def exp(mu: Tensor, step: Tensor, steps: list[tuple[Tensor, Tensor]] = steps) -> Tensor:
            steps.append((mu, step))
            return sphere.exp(mu, step)

        res = frechet_mean(sphere, points[None], method=sphere.log, exp=exp, tol=1e-10)
        assert res.status == [Status.CONVERGED] and len(steps) < 100
        for mu, step in steps:  # ‖step‖ in G(μ) = 4 / (1 + |μ|²)² I
            length = 2 * step.norm(dim=-1) / (1 + (mu * mu).sum(-1))
            farthest = sphere.distance(mu.expand_as(points), points).amax()
            assert float(length) <= float(farthest) * (1 + 1e-9), (length, farthest)


def test_warm_starts_far_beyond_the_straight_segment_start_straight() -> None:
    from latentgeo.curves import DiscreteCurve, curve_length
    from latentgeo.geometry.mean_descent import MeanDescent
    from latentgeo.metrics import as_metric
    from latentgeo.solvers.logmap_start import MAX_START_STRETCH

    sphere = StereographicSphere()
    metric = as_metric(sphere)
    x = torch.tensor([[[0.3, 0.1], [-0.2, 0.4]]], dtype=torch.float64)
    w = torch.ones(1, 2, dtype=torch.float64)
    mu = x.mean(1)
    descent = MeanDescent(metric, x, w, mu, "log", 1.0, None, sphere.exp, 1e-8)
    rows, sets = torch.arange(2), torch.zeros(2, dtype=torch.long)
    base = mu.expand(2, -1) + 0.05
    with torch.no_grad():
        segment = curve_length(metric, DiscreteCurve(base, x[0], num_points=2))
    for step, straight in ((1.0, False), (50.0, True)):  # a modest step; a huge one
        descent.step = torch.tensor([step], dtype=torch.float64)
        warm = descent._within_reach(base, rows, sets)
        first_order = descent.v - step * descent.vbar
        long = metric.norm(base, first_order) > MAX_START_STRETCH * segment
        assert bool((long == straight).all())
        torch.testing.assert_close(warm, x[0] - base if straight else first_order)


def test_steps_are_capped_where_the_gradient_is_a_number_and_warm_starts_are_used() -> None:
    from latentgeo.geometry.mean_descent import MeanDescent
    from latentgeo.metrics import as_metric

    sphere = StereographicSphere()
    x = torch.tensor([[[0.3, 0.1], [-0.2, 0.4]], [[0.1, 0.1], [0.2, 0.1]]], dtype=torch.float64)
    w = torch.ones(2, 2, dtype=torch.float64)
    descent = MeanDescent(as_metric(sphere), x, w, x.mean(1), "log", 1.0, None, None, 1e-8)
    descent.step = torch.tensor([1e3, 1e3], dtype=torch.float64)
    reach = descent._reach() / descent.gradient_norm()
    torch.testing.assert_close(descent._capped_steps(), reach)  # 1000 is far beyond
    descent.vbar[1] = torch.nan  # a gradient that is not a number: the step is kept
    assert descent._capped_steps().tolist() == [float(reach[0]), 1e3]
    # the log maps of a trial step start from _within_reach's warm starts
    sentinel, seen = torch.full((4, 2), 0.125, dtype=torch.float64), []
    descent._within_reach = lambda base, rows, sets: sentinel  # type: ignore[method-assign]

    def log_maps(base: Tensor, rows: Tensor, warm: Tensor | None, **_: object) -> object:
        seen.append(warm)
        raise StopIteration

    descent._log_maps = log_maps  # type: ignore[method-assign,assignment]
    with pytest.raises(StopIteration):
        descent._accept_or_halve(descent.mu.clone(), torch.arange(4))
    assert seen == [sentinel]
