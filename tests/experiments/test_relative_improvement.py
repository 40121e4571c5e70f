"""Michelis et al.'s Algorithm 1: the recipe's settings and the independent score."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
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


def _table(statuses: list[str]) -> dict:
    n = len(statuses)
    line = [1.0 + 0.1 * p for p in range(n)]
    geo = [(0.95 - 0.001 * p) * v for p, v in enumerate(line)]
    return {
        "line": line,
        "geodesic": geo,
        "relative_improvement": [(a - b) / a for a, b in zip(line, geo, strict=True)],
        "status": statuses,
        "seconds": 1.0,
    }


TRAINING = {"final_val_loss": 1.0, "epochs": 3, "stopped_early": False, "seconds": 1.0}


def test_a_run_with_no_converged_pair_says_so_and_quotes_no_mean(tmp_path: Path) -> None:
    from latentgeo.experiments.relative_improvement import _summarise
    from latentgeo.experiments.rundir import RunDir

    s = RISettings.for_budget("cpu", data="digits")
    summary = _summarise(RunDir(tmp_path / "a"), s, TRAINING, _table(["max_iter"] * 30))
    assert summary["converged"] == 0 and summary["num_pairs"] == 30 and summary["pairs_used"] == 0
    assert summary["status_counts"] == {"max_iter": 30}
    assert summary["warning"] == "WARNING: only 0/30 pairs converged (< 90 %)"
    assert summary["report"][-1] == summary["warning"]
    assert any("no pair converged (converged 0/30 pairs" in line for line in summary["report"])
    assert np.isnan(summary["mean"]) and np.isnan(summary["mean_geodesic_length"])


def test_means_are_over_converged_pairs_and_the_report_counts_them(tmp_path: Path) -> None:
    from latentgeo.experiments.relative_improvement import _summarise
    from latentgeo.experiments.rundir import RunDir

    table = _table(["converged"] * 27 + ["max_iter"] * 3)
    table["relative_improvement"][-3:] = [0.9, 0.9, 0.9]  # the non-converged pairs: outliers
    s = RISettings.for_budget("cpu", data="digits")
    summary = _summarise(RunDir(tmp_path / "a"), s, TRAINING, table)
    assert summary["pairs_used"] == 27 and summary["warning"] is None
    rel = np.asarray(table["relative_improvement"])
    assert summary["mean"] == pytest.approx(rel[:27].mean())
    assert summary["mean_straight_line_length"] == pytest.approx(np.mean(table["line"][:27]))
    assert not any(line.startswith("WARNING") for line in summary["report"])
    assert any("over 27 converged pairs; converged 27/30 pairs" in ln for ln in summary["report"])
    every = _summarise(RunDir(tmp_path / "b"), replace(s, include_all=True), TRAINING, table)
    assert every["pairs_used"] == 30 and every["mean"] == pytest.approx(rel.mean())
