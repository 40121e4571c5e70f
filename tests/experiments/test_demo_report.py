"""The demo's printed report: means over converged pairs, converged k/n, a WARNING below 90 %."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from latentgeo.experiments.demo import DemoSettings
from latentgeo.experiments.demo_report import PairLengths, csv_rows, model_summary, report_lines
from latentgeo.solvers import Status


def _model(converged: int, warning: str | None) -> dict:
    return {
        "mean_geodesic_length": 1.0,
        "mean_straight_line_length": 2.0,
        "mean_relative_improvement": 0.5,
        "converged": converged,
        "num_pairs": 12,
        "pairs_used": converged,
        "include_all": False,
        "warning": warning,
    }


def test_report_puts_the_converged_count_beside_the_means_and_warns() -> None:
    assert DemoSettings().include_all is False
    lines = report_lines(
        {"rbf": _model(12, None), "ensemble": _model(9, "WARNING: only 9/12 pairs converged")}
    )
    assert lines[0].startswith("rbf: geodesic 1.000") and "converged 12/12 pairs" in lines[0]
    assert "(means over 12 converged pairs)" in lines[0]
    assert "converged 9/12 pairs (WARNING: < 90 % converged)" in lines[1]
    assert lines[2] == "WARNING: only 9/12 pairs converged (ensemble)" and len(lines) == 3
    assert (
        "(means over 12 pairs, converged or not)"
        in report_lines({"rbf": _model(12, None)}, True)[0]
    )


def _lengths() -> PairLengths:
    geo = torch.tensor([1.0, 2.0, 3.0])
    line = torch.tensor([2.0, 2.0, 4.0])
    return PairLengths(geo, line, geo, line, torch.zeros(3), torch.ones(3))


def test_model_summary_means_over_converged_pairs_unless_include_all() -> None:
    res = SimpleNamespace(
        converged=torch.tensor([True, False, True]),
        num_converged=2,
        num_pairs=3,
        status=[Status.CONVERGED, Status.MAX_ITERATIONS, Status.CONVERGED],
    )
    extras = {"geodesic_method": "m", "length_estimator": "e", "seconds": {}}
    m = model_summary(res, _lengths(), False, extras)  # type: ignore[arg-type]
    assert m["mean_geodesic_length"] == 2.0 and m["pairs_used"] == 2
    assert m["mean_relative_improvement"] == (0.5 + 0.25) / 2
    assert m["warning"] and m["statuses"] == {"converged": 2, "max_iter": 1}
    assert m["geodesic_method"] == "m" and m["seconds"] == {}
    every = model_summary(res, _lengths(), True, extras)  # type: ignore[arg-type]
    assert every["mean_geodesic_length"] == 2.0 and every["pairs_used"] == 3
    rows = csv_rows(
        "rbf",
        (torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])),
        (torch.zeros(3, 2), torch.ones(3, 2)),
        res,  # type: ignore[arg-type]
        _lengths(),
    )
    assert rows[1][:4] == ["rbf", 1, 1, 4] and rows[1][-2:] == [False, "max_iter"]
