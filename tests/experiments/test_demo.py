"""The demo's printed report: means over converged pairs, converged k/n, a WARNING below 90 %."""

from __future__ import annotations

from latentgeo.experiments.demo import DemoSettings, report_lines


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
