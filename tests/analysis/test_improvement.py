"""Relative improvement of geodesics over straight lines (Michelis et al.), against closed forms."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from latentgeo.analysis import (
    michelis_pairs,
    monte_carlo_relative_improvement,
    relative_improvement,
    straight_line_length,
)
from latentgeo.metrics import ExplicitMetric, as_metric
from latentgeo.solvers import Status
from latentgeo.testing import LinearMap, StereographicSphere


def test_relative_improvement_is_zero_for_a_linear_decoder(
    sphere_points: Callable[..., torch.Tensor],
) -> None:
    lin = LinearMap(torch.tensor([[2.0, 1.0], [0.0, 1.0], [1.0, -1.0]], dtype=torch.float64))
    z0, z1 = sphere_points(4), -sphere_points(8)[4:]
    res = relative_improvement(lin, z0, z1)
    torch.testing.assert_close(res.line_length, lin.distance(z0, z1))
    assert float(res.relative_improvement.abs().max()) < 1e-6


def test_relative_improvement_is_positive_on_the_sphere(dtype: torch.dtype) -> None:
    sphere = StereographicSphere()
    # pairs whose straight line misses the origin: not great circles in the chart
    z0 = torch.tensor([[1.0, 0.5], [-1.0, 1.0]], dtype=dtype)
    z1 = torch.tensor([[-0.5, 2.0], [1.0, 1.5]], dtype=dtype)
    res = relative_improvement(sphere, z0, z1)
    tol = 1e-5 if dtype == torch.float64 else 1e-3
    torch.testing.assert_close(res.geodesic_length, sphere.distance(z0, z1), rtol=tol, atol=tol)
    expected = 1 - sphere.distance(z0, z1) / straight_line_length(sphere, z0, z1)
    torch.testing.assert_close(res.relative_improvement, expected, rtol=10 * tol, atol=tol)
    assert bool((res.relative_improvement > 1e-3).all())
    assert 0 < res.mean < 1 and res.standard_error > 0


def test_michelis_pairs_step_along_the_top_eigenvector_towards_the_origin() -> None:
    lin = LinearMap(torch.diag(torch.tensor([1.0, 5.0, 2.0], dtype=torch.float64)))
    gen = torch.Generator().manual_seed(0)
    z0, z1 = michelis_pairs(
        lin, 20, step_size=0.5, generator=gen, dtype=torch.float64, latent_dim=3
    )
    step = z1 - z0
    torch.testing.assert_close(step[:, 1].abs(), torch.full((20,), 0.5, dtype=torch.float64))
    assert float(step[:, [0, 2]].abs().max()) < 1e-12
    assert bool((torch.sign(step[:, 1]) == -torch.sign(z0[:, 1])).all())


def test_monte_carlo_protocol_on_the_sphere() -> None:
    sphere = StereographicSphere()
    gen = torch.Generator().manual_seed(1)
    res = monte_carlo_relative_improvement(
        sphere, 6, latent_dim=2, generator=gen, dtype=torch.float64
    )
    assert res.relative_improvement.shape == (6,)
    assert bool(res.converged.all())
    assert bool((res.relative_improvement >= 0).all())
    # the sphere's metric is conformal: the top eigenvector is arbitrary, but the
    # geodesic is never longer than the line and matches the great circle
    torch.testing.assert_close(
        res.geodesic_length, sphere.distance(res.z0, res.z1), rtol=1e-5, atol=1e-6
    )


def test_independent_chord_score_measures_line_and_curve_alike() -> None:
    sphere = StereographicSphere()
    z0 = torch.tensor([[1.0, 0.5], [-1.0, 1.0]], dtype=torch.float64)
    z1 = torch.tensor([[-0.5, 2.0], [1.0, 1.5]], dtype=torch.float64)
    res = relative_improvement(sphere, z0, z1, score="chord", score_points=2048)
    assert res.score == "chord" and res.status == ["converged", "converged"]
    # a dense polyline in R^3 is within ~h^2 of the arc length: both curves, one estimator
    torch.testing.assert_close(
        res.line_length, straight_line_length(sphere, z0, z1), rtol=1e-5, atol=0
    )
    torch.testing.assert_close(res.geodesic_length, sphere.distance(z0, z1), rtol=1e-5, atol=0)
    assert bool((res.relative_improvement > 1e-3).all())
    with pytest.raises(ValueError, match="score"):
        relative_improvement(sphere, z0, z1, score="nope")
    with pytest.raises(ValueError, match="score_points"):
        relative_improvement(sphere, z0, z1, score="chord", score_points=1)


def test_means_are_over_converged_pairs_unless_asked() -> None:
    sphere = StereographicSphere()
    z0 = torch.tensor([[1.0, 0.5], [-1.0, 1.0], [0.3, -1.2]], dtype=torch.float64)
    z1 = torch.tensor([[-0.5, 2.0], [1.0, 1.5], [-1.5, 0.2]], dtype=torch.float64)
    stopped = relative_improvement(sphere, z0, z1, max_iter=1)
    assert stopped.num_converged == 0 and stopped.num_pairs == 3
    assert all(s == Status.MAX_ITERATIONS for s in stopped.status)
    assert math.isnan(stopped.mean) and math.isnan(stopped.standard_error)
    every = relative_improvement(sphere, z0, z1, max_iter=1, include_all=True)
    assert every.mean == pytest.approx(float(every.relative_improvement.mean()))
    done = relative_improvement(sphere, z0, z1)
    keep = done.converged
    assert done.num_converged == int(keep.sum()) > 0
    assert done.mean == pytest.approx(float(done.relative_improvement[keep].mean()))


def _indefinite() -> ExplicitMetric:
    """``G = diag(1, −1)``: ``vᵀ G v = v₁² − v₂²``, negative along ``e₂``."""

    def tensor(z: torch.Tensor) -> torch.Tensor:
        one = torch.ones_like(z[..., 0])
        return torch.diag_embed(torch.stack([one, -one], -1))

    return ExplicitMetric(tensor)


def test_an_indefinite_metric_is_reported_not_clamped_into_a_length() -> None:
    z0 = torch.zeros(4, 2, dtype=torch.float64)
    z1 = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.3, 1.0], [1.0, 0.5]], dtype=torch.float64)
    line = straight_line_length(_indefinite(), z0, z1)
    assert line[0].item() == pytest.approx(2.0) and line[3].item() == pytest.approx(0.75**0.5)
    assert torch.isnan(line[1:3]).all()  # was clamped to 0 (a "length" of an invalid metric)
    res = relative_improvement(_indefinite(), z0, z1, max_iter=20)
    assert res.status[1] is Status.INVALID_METRIC and res.status[2] is Status.INVALID_METRIC
    assert not bool(res.converged[1:3].any()) and torch.isnan(res.relative_improvement[1:3]).all()
    assert res.num_converged <= 2 and res.num_pairs == 4
    assert res.warning is not None and res.warning.startswith("WARNING:")
    # the means never see the invalid pairs, whether or not the others are included
    for include_all in (False, True):
        r = relative_improvement(_indefinite(), z0, z1, max_iter=20, include_all=include_all)
        assert not bool(r.used[1:3].any()) and math.isfinite(r.mean)


def test_improvement_counts_come_from_the_statuses_and_agree_with_converged() -> None:
    # ImprovementResult counts through ConvergenceCounts (its statuses), like every analysis
    # result; they must agree with the per-pair converged flags, invalid pairs included
    z0 = torch.zeros(4, 2, dtype=torch.float64)
    z1 = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.3, 1.0], [1.0, 0.5]], dtype=torch.float64)
    res = relative_improvement(_indefinite(), z0, z1, max_iter=20)
    assert res.num_pairs == res.relative_improvement.numel() == 4
    assert res.num_converged == int(res.converged.sum())
    flags = [s is Status.CONVERGED for s in res.status]
    assert flags == res.converged.tolist()


def test_monte_carlo_passes_include_all() -> None:
    sphere = StereographicSphere()
    gen = torch.Generator().manual_seed(1)
    res = monte_carlo_relative_improvement(
        sphere, 4, latent_dim=2, generator=gen, dtype=torch.float64, max_iter=1, include_all=True
    )
    assert res.include_all and res.num_converged == 0 and res.num_used == 4
    assert math.isfinite(res.mean) and res.converged_note == (
        "converged 0/4 pairs (WARNING: < 90 % converged)"
    )


def test_michelis_pairs_need_a_latent_dimension() -> None:
    with pytest.raises(ValueError, match="latent_dim"):
        michelis_pairs(StereographicSphere(), 3)


def test_michelis_pairs_refuse_a_latent_dim_the_metric_does_not_have() -> None:
    """It said ``z must have last dimension d=2 ... got (2, 3)``: an argument never passed."""
    metric = as_metric(torch.nn.Linear(2, 3))  # knows its latent dimension
    assert metric.latent_dim == 2
    with pytest.raises(
        ValueError, match=r"latent_dim=3 disagrees with the metric's latent dimension 2"
    ):
        michelis_pairs(metric, 2, latent_dim=3)
    assert michelis_pairs(metric, 2, latent_dim=2)[0].shape == (2, 2)
