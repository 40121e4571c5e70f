"""Arvanitidis et al.'s clustering: the recipe's settings, one algorithm on both sides."""

from __future__ import annotations

import pytest

from latentgeo.experiments import KMeansSettings
from latentgeo.experiments.kmeans import PAPER, TRIPLES


def test_budgets_and_the_papers_numbers() -> None:
    paper = KMeansSettings.for_budget("paper")
    assert (paper.per_digit, paper.subsets, paper.points) == (1000, 10, 300)
    r = paper.recipe
    assert r.hidden == (32, 64) and r.activation == "tanh" and r.weight_decay == 1e-5
    assert (r.centres, r.a, r.bandwidth) == (64, 2.0, "mean_dist")
    assert TRIPLES == ((0, 1, 2), (3, 4, 7), (5, 6, 9))
    assert PAPER["012"]["geodesic"] == (94.28, 1.14) and PAPER["569"]["euclidean"][0] == 64.93
    cpu = KMeansSettings.for_budget("cpu")
    assert cpu.max_repeats < cpu.graph_k  # a point's copies never fill its neighbourhood
    with pytest.raises(ValueError, match="points"):
        KMeansSettings(points=2)


def _triple(converged: int, used: list[int]) -> dict:
    return {
        "geodesic": {"mean": 0.9, "std": 0.01, "values": [0.9]},
        "euclidean": {"mean": 0.8, "std": 0.01, "values": [0.8]},
        "converged": converged,
        "num_pairs": 100,
        "status_counts": {"converged": converged, "max_iter": 100 - converged},
        "points_used": used,
        "points": 60,
        "training": {"final_val_loss": 1.0},
        "compute_seconds": 1.0,
    }


def test_the_summary_counts_pairs_and_points_and_warns_below_90_percent() -> None:
    from latentgeo.experiments.kmeans import _summary

    s = KMeansSettings.for_budget("cpu")
    ok = _summary(s, {name: _triple(95, [60]) for name in PAPER})
    assert ok["converged"] == 285 and ok["num_pairs"] == 300 and ok["warning"] is None
    assert ok["include_all"] is False
    assert any("converged 95/100 pairs, points used 60/60" in line for line in ok["report"])
    low = _summary(s, {name: _triple(80, [41]) for name in PAPER})
    assert low["warning"] == "WARNING: only 240/300 pairs converged (< 90 %)"
    assert low["report"][-1] == low["warning"]
    assert any("points used 41/60" in line for line in low["report"])


def test_both_sides_cluster_the_points_whose_geodesics_converged() -> None:
    import torch

    from latentgeo.experiments.kmeans import _cluster, _converged_matrix

    i, j = torch.triu_indices(6, 6, offset=1)
    status = ["converged"] * i.numel()
    status[int(((i == 0) & (j == 5)).nonzero())] = "max_iter"
    ok = _converged_matrix(status, 6)
    assert not bool(ok[0, 5]) and not bool(ok[5, 0]) and bool(ok.diagonal().all())
    z = torch.tensor([0.0, 0.1, 5.0, 5.1, 10.0, 10.1], dtype=torch.float64)
    dist = (z[:, None] - z[None]).abs()
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    s = KMeansSettings.for_budget("cpu")
    f, used = _cluster(dist, labels, s, 0, ok)
    assert used == 5 and f == 1.0
    f_all, used_all = _cluster(dist, labels, KMeansSettings.for_budget("quick"), 0, ok)
    assert used_all == 6 and f_all == 1.0  # the smoke test clusters every point
    none = torch.eye(6, dtype=torch.bool)
    f_none, used_none = _cluster(dist, labels, s, 0, none)
    assert used_none == 1 and f_none != f_none  # nan: nothing to cluster
