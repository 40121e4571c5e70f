"""TilePlan: tiles cover every pair once, in the order of the in-process computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentgeo.analysis.distributed import TilePlan


@pytest.mark.parametrize(("n", "tile"), [(2, 1), (5, 3), (10, 7), (13, 256), (40, 64)])
def test_symmetric_tiles_are_triu_order_in_consecutive_chunks(n: int, tile: int) -> None:
    plan = TilePlan(n, tile_size=tile)
    ref_i, ref_j = (t.numpy() for t in torch.triu_indices(n, n, offset=1))
    assert plan.num_pairs == n * (n - 1) // 2 == ref_i.size
    assert plan.num_tiles == -(-ref_i.size // tile)
    got = [plan.pairs(k) for k in range(plan.num_tiles)]
    np.testing.assert_array_equal(np.concatenate([g[0] for g in got]), ref_i)
    np.testing.assert_array_equal(np.concatenate([g[1] for g in got]), ref_j)
    for k in range(plan.num_tiles):  # tile k is chunk k of pairwise_geodesic_distances
        start, stop = plan.tile_range(k)
        np.testing.assert_array_equal(plan.pairs(k)[0], ref_i[start:stop])
        assert plan.tile_size_of(k) == stop - start <= tile


def test_rectangular_and_explicit_plans() -> None:
    plan = TilePlan(3, 4, tile_size=5)
    i, j = plan.all_pairs()
    assert plan.kind == "rectangular" and plan.num_pairs == 12 and plan.num_tiles == 3
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [
        (a, b) for a in range(3) for b in range(4)
    ]
    edges = (np.array([0, 2, 1]), np.array([1, 3, 3]))
    plan = TilePlan(4, tile_size=2, pairs=edges)
    assert plan.kind == "explicit" and plan.num_tiles == 2
    np.testing.assert_array_equal(plan.pairs(1)[0], [1])
    assert plan.describe() == {
        "kind": "explicit", "n_a": 4, "n_b": None, "num_pairs": 3, "tile_size": 2,
    }  # fmt: skip


def test_large_plan_needs_no_pair_list() -> None:
    plan = TilePlan(100_000, tile_size=4096)
    assert plan.num_pairs == 4_999_950_000
    i, j = plan.pairs(plan.num_tiles - 1)  # the last pairs: (N-3, N-2), (N-3, N-1), (N-2, N-1)
    assert (i[-3:].tolist(), j[-3:].tolist()) == (
        [99_997, 99_997, 99_998],
        [99_998, 99_999, 99_999],
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((0,), {"tile_size": 4}, "n_a"),
        ((4,), {"tile_size": 0}, "tile_size"),
        ((4, 0), {"tile_size": 4}, "n_b"),
        ((4, 2), {"tile_size": 4, "pairs": (np.zeros(1), np.ones(1))}, "symmetric"),
        ((4,), {"tile_size": 4, "pairs": (np.zeros(2), np.ones(3))}, "pairs"),
        ((4,), {"tile_size": 4, "pairs": (np.zeros(1), np.full(1, 4))}, r"\[0, 4\)"),
    ],
)
def test_bad_plans_are_refused(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TilePlan(*args, **kwargs)


def test_tile_out_of_range() -> None:
    with pytest.raises(IndexError, match="tile 2"):
        TilePlan(3, tile_size=2).pairs(2)
