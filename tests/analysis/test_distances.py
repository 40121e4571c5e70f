"""Geodesic distances, pairwise tables and round-robin rounds, against great circles."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from latentgeo.analysis import (
    geodesic_distances,
    pairwise_geodesic_distances,
    pairwise_geodesics,
    round_robin,
)
from latentgeo.exceptions import NumericsWarning
from latentgeo.solvers import Status
from latentgeo.testing import StereographicSphere


def test_pairwise_distances_on_the_sphere_match_great_circles(
    dtype: torch.dtype, sphere_points: Callable[..., torch.Tensor]
) -> None:
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


def test_chunking_does_not_change_distances(sphere_points: Callable[..., torch.Tensor]) -> None:
    sphere = StereographicSphere()
    z_a, z_b = sphere_points(5), sphere_points(10)[5:]
    one = geodesic_distances(sphere, z_a, z_b, chunk_size=None)
    many = geodesic_distances(sphere, z_a, z_b, chunk_size=2, progress=False)
    torch.testing.assert_close(one, many, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(one, sphere.distance(z_a, z_b), rtol=1e-5, atol=1e-6)


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


def test_unconverged_distances_are_counted_in_a_warning() -> None:
    # the plain tensors cannot carry statuses: they used to come back without a word
    sphere = StereographicSphere()
    z = torch.tensor([[1.0, 0.5], [-0.5, 2.0], [-1.0, 1.0], [0.3, -1.2]], dtype=torch.float64)
    with pytest.warns(NumericsWarning, match=r"pairwise_geodesic_distances: 6 of 6 .*max_iter 6"):
        dist = pairwise_geodesic_distances(sphere, z, chunk_size=4, max_iter=1)
    stopped = pairwise_geodesics(sphere, z, chunk_size=4, max_iter=1)
    torch.testing.assert_close(dist, stopped.distances)  # the curves' lengths, upper bounds
    exact = sphere.distance(z[:, None], z[None])
    assert bool((dist >= exact - 1e-9).all())
    ends = torch.stack([z[0], z[3], z[2]])  # pairs 0 and 2 coincide: converged at once
    with pytest.warns(NumericsWarning, match=r"^geodesic_distances: 1 of 3 .*\(max_iter 1\)"):
        one = geodesic_distances(sphere, z[:3], ends, max_iter=1, chunk_size=2)
    assert one[0] == 0 and one[2] == 0 and one[1] > 0


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
    # every pair's length settled across a full refinement, to refine_tol / 2 = 5e-5 relative
    # (pair (0, 1)'s energy had not: its graph start's uneven speed still evened out)
    assert graph.num_pairs == 21 and graph.num_converged == 21
    exact = sphere.distance(z[:, None], z[None])
    for table in (plain, graph):
        torch.testing.assert_close(table.distances, exact, rtol=5e-5, atol=1e-9)


def test_input_errors() -> None:
    sphere = StereographicSphere()
    with pytest.raises(ValueError, match="same shape"):
        geodesic_distances(sphere, torch.zeros(3, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        pairwise_geodesic_distances(sphere, torch.zeros(3))
