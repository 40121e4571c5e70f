"""Sparse mode pieces: k-nearest-neighbour pairs and their completion by shortest paths."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import floyd_warshall

from latentgeo.analysis.distributed import complete_by_shortest_paths, knn_pairs


def test_knn_pairs_match_brute_force() -> None:
    z = np.random.default_rng(0).normal(size=(30, 3))
    k = 4
    dist = np.linalg.norm(z[:, None] - z[None], axis=-1)
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1)[:, :k]
    expected = {(min(a, b), max(a, b)) for a in range(30) for b in nearest[a]}
    i, j = knn_pairs(z, k)
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected
    assert (i < j).all() and len(expected) == i.size <= 30 * k


def test_completion_equals_floyd_warshall_and_bounds_euclidean() -> None:
    z = np.random.default_rng(1).normal(size=(25, 2))
    i, j = knn_pairs(z, 3)
    length = np.linalg.norm(z[i] - z[j], axis=-1)
    got = complete_by_shortest_paths(25, i, j, length)
    dense = np.full((25, 25), np.inf)
    dense[i, j] = dense[j, i] = length
    np.fill_diagonal(dense, 0.0)
    np.testing.assert_allclose(got, floyd_warshall(dense), rtol=1e-12)
    euclid = np.linalg.norm(z[:, None] - z[None], axis=-1)
    finite = np.isfinite(got)
    assert (got[finite] >= euclid[finite] - 1e-12).all()  # a path is never shorter than a chord
    np.testing.assert_allclose(got[i, j], length, rtol=1e-12)  # straight edges are shortest


def test_failed_edges_are_left_out_and_components_give_inf() -> None:
    i, j = np.array([0, 1, 2]), np.array([1, 2, 3])
    got = complete_by_shortest_paths(4, i, j, np.array([1.0, np.nan, 0.0]))
    assert got[0, 1] == 1.0 and np.isinf(got[0, 2]) and np.isinf(got[1, 3])
    assert got[2, 3] == pytest.approx(0.0, abs=1e-300)  # a zero-length edge stays an edge


@pytest.mark.parametrize("k", [0, 5, 2.0])
def test_bad_k(k: object) -> None:
    with pytest.raises(ValueError, match="neighbours"):
        knn_pairs(np.zeros((5, 2)), k)  # type: ignore[arg-type]
