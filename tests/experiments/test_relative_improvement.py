"""Michelis et al.'s Algorithm 1: the recipe's settings and the independent score."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from latentgeo.data import LabeledData
from latentgeo.experiments import RISettings, run_relative_improvement
from latentgeo.experiments.relative_improvement import _first_per_digit


def test_budgets() -> None:
    paper = RISettings.for_budget("paper")
    assert (paper.latent_dim, paper.step, paper.per_digit) == (16, 1.0, 3000)
    r = paper.recipe
    assert (r.centres, r.zeta, r.a, r.bandwidth, r.rbf_codes) == (
        64,
        1e-2,
        1.0,
        "mean_dist",
        "mean",
    )
    assert r.output_activation == "tanh"  # their data in [-1, 1]
    cpu = RISettings.for_budget("cpu")
    assert cpu.latent_dim == 16 and cpu.pairs == 100 and not cpu.include_all
    with pytest.raises(ValueError, match="budget"):
        RISettings.for_budget("gpu")
    with pytest.raises(ValueError, match="pairs"):
        RISettings(pairs=1)


def test_first_images_of_every_digit_in_file_order() -> None:
    y = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2])
    data = _first_per_digit(LabeledData(torch.arange(8.0)[:, None], y), 2)
    assert data.x[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 6.0]


def test_every_pair_is_scored_by_one_chord_estimator(tmp_path: Path) -> None:
    s = RISettings.quick(data="digits", latent_dim=2, pairs=4)
    summary = run_relative_improvement(tmp_path / "ri", s, progress=False)
    with open(tmp_path / "ri" / "pairs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and summary["num_pairs"] == 4
    for row in rows:  # (line − geodesic) / line with both from the same estimator
        line, geo = float(row["straight_line_length"]), float(row["geodesic_length"])
        assert float(row["relative_improvement"]) == pytest.approx((line - geo) / line, abs=3e-5)
    assert summary["converged"] == sum(row["status"] == "converged" for row in rows)
    assert "NOT A RESULT" in summary["report"][0]
