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
