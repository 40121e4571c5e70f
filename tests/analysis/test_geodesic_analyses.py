"""Analyses that solve geodesics, against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from latentgeo.analysis import (
    f_measure,
    geodesic_distances,
    geodesic_kmeans,
    michelis_pairs,
    monte_carlo_relative_improvement,
    pairwise_geodesic_distances,
    pairwise_geodesics,
    relative_improvement,
    round_robin,
    straight_line_length,
)
from latentgeo.metrics import ExplicitMetric
from latentgeo.solvers import Status
from latentgeo.testing import LinearMap, StereographicSphere


def sphere_points(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    # points in the southern hemisphere's chart |z| < 1.5: well inside the projection
    gen = torch.Generator().manual_seed(3)
    return 1.5 * (torch.rand(n, 2, generator=gen, dtype=dtype) * 2 - 1) / math.sqrt(2)


def test_pairwise_distances_on_the_sphere_match_great_circles(dtype: torch.dtype) -> None:
    sphere = StereographicSphere()
    z = sphere_points(6, dtype)
    dist = pairwise_geodesic_distances(sphere, z, chunk_size=4)
    i, j = torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij")
    exact = sphere.distance(z[i], z[j])
    assert dist.shape == (6, 6)
    assert dist.dtype == dtype
    assert torch.equal(dist, dist.T)
    assert torch.equal(dist.diagonal(), torch.zeros(6, dtype=dtype))
    tol = 1e-5 if dtype == torch.float64 else 1e-3
    torch.testing.assert_close(dist, exact, rtol=tol, atol=tol)


def test_chunking_does_not_change_distances() -> None:
    sphere = StereographicSphere()
    z_a, z_b = sphere_points(5), sphere_points(10)[5:]
    one = geodesic_distances(sphere, z_a, z_b, chunk_size=None)
    many = geodesic_distances(sphere, z_a, z_b, chunk_size=2, progress=False)
    torch.testing.assert_close(one, many, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(one, sphere.distance(z_a, z_b), rtol=1e-5, atol=1e-6)


def test_relative_improvement_is_zero_for_a_linear_decoder() -> None:
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


def test_geodesic_kmeans_on_separated_clusters() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    labels = torch.arange(3).repeat_interleave(6)
    z = centres[labels] + 0.3 * torch.randn(18, 2, generator=gen, dtype=torch.float64)
    lin = LinearMap(torch.eye(2, dtype=torch.float64))
    res = geodesic_kmeans(lin, z, 3, generator=gen, chunk_size=64)
    assert f_measure(labels, res.labels) == 1.0
    torch.testing.assert_close(res.distances, torch.cdist(z, z), rtol=1e-6, atol=1e-8)


def test_input_errors() -> None:
    sphere = StereographicSphere()
    with pytest.raises(ValueError, match="same shape"):
        geodesic_distances(sphere, torch.zeros(3, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        pairwise_geodesic_distances(sphere, torch.zeros(3))
    with pytest.raises(ValueError, match="latent_dim"):
        michelis_pairs(sphere, 3)


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


def test_pairwise_geodesics_report_statuses_in_triu_order() -> None:
    sphere = StereographicSphere()
    z = torch.tensor([[1.0, 0.5], [-0.5, 2.0], [-1.0, 1.0], [0.3, -1.2]], dtype=torch.float64)
    table = pairwise_geodesics(sphere, z, chunk_size=4)
    assert table.num_pairs == 6 and table.num_converged == 6
    torch.testing.assert_close(table.distances, pairwise_geodesic_distances(sphere, z))
    assert bool(table.converged.all()) and bool((table.converged == table.converged.T).all())
    stopped = pairwise_geodesics(sphere, z, chunk_size=4, max_iter=1)
    assert stopped.num_converged == 0 and set(stopped.status) == {Status.MAX_ITERATIONS}
    assert bool(stopped.converged.diagonal().all()) and not bool(stopped.converged[0, 1])


@pytest.mark.parametrize("n", [2, 5, 8])
def test_round_robin_holds_every_pair_once_in_disjoint_rounds(n: int) -> None:
    rounds = round_robin(n)
    assert len(rounds) == n - 1 + n % 2
    seen = [tuple(p) for r in rounds for p in r.tolist()]
    assert sorted(seen) == [(i, j) for i in range(n) for j in range(i + 1, n)]
    for r in rounds:
        assert r.flatten().unique().numel() == r.numel()  # no index twice in a round
    with pytest.raises(ValueError, match="n must be"):
        round_robin(1)


def test_disjoint_rounds_give_the_same_table_and_serve_the_graph_method() -> None:
    sphere = StereographicSphere()
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(7, 2, generator=gen, dtype=torch.float64)
    plain = pairwise_geodesics(sphere, z)
    rounds = pairwise_geodesics(sphere, z, max_repeats=2)
    torch.testing.assert_close(rounds.distances, plain.distances, rtol=1e-6, atol=1e-9)
    assert rounds.status == plain.status
    with pytest.raises(ValueError, match="max_repeats"):
        pairwise_geodesics(sphere, z, max_repeats=0)
    # the graph method builds its graph on the end points: each point once per solve
    cloud = torch.randn(200, 2, generator=gen, dtype=torch.float64)
    graph = pairwise_geodesics(
        sphere, z, max_repeats=1, method="graph", points=cloud, k=8, max_iter=200
    )
    # pair (0, 1), 1.8e-4 off, has not settled to refine_tol when no refinement fits in
    # max_knots: max_iter (it used to be reported converged)
    assert graph.num_pairs == 21 and graph.num_converged == 20 and graph.status[0] == "max_iter"
    # both against the great-circle distance: the energy solver stops refining when the
    # energy changes by less than refine_tol = 1e-4, which leaves up to ~3e-4 relative on
    # pair (0, 1) of this draw whichever start it came from (the two used to agree to 1e-4
    # only by coincidence: each was 2e-4 off)
    exact = sphere.distance(z[:, None], z[None])
    for table in (plain, graph):
        torch.testing.assert_close(table.distances, exact, rtol=5e-4, atol=1e-6)


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
