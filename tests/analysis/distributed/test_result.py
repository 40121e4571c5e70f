"""What a distance job reports: its progress, and the summary of its result (counts from the
statuses, statistics over converged pairs unless asked, JSON-able)."""

from __future__ import annotations

import json
import math

import torch

from latentgeo.analysis.distributed.result import DistanceMatrixResult, JobProgress
from latentgeo.solvers import Status


def test_progress_rate_and_eta() -> None:
    running = JobProgress(2, 0, 5, pairs_done=300, pairs_left=450, elapsed=10.0)
    assert running.pairs_per_second == 30.0 and running.eta_seconds == 15.0
    starting = JobProgress(0, 0, 5, pairs_done=0, pairs_left=750, elapsed=0.0)
    assert starting.pairs_per_second == 0.0 and math.isinf(starting.eta_seconds)


def _result() -> DistanceMatrixResult:
    length = torch.tensor([1.0, 2.0, 4.0, float("nan")], dtype=torch.float64)
    status = [Status.CONVERGED, Status.CONVERGED, Status.MAX_ITERATIONS, Status.FAILED]
    return DistanceMatrixResult(
        matrix=torch.zeros(4, 4, dtype=torch.float64),
        i=torch.tensor([0, 0, 1, 2]),
        j=torch.tensor([1, 2, 3, 3]),
        length=length,
        line_length=torch.tensor([1.0, 1.0, 2.0, 1.0], dtype=torch.float64),
        status=status,
        iterations=torch.tensor([5, 6, 50, -1]),
        failed_tiles={3: "MemoryError"},
        tiles_total=4,
        tiles_computed=2,
        tiles_resumed=1,
    )


def test_summary_counts_statuses_and_averages_over_converged_pairs() -> None:
    result = _result()
    assert result.converged.tolist() == [True, True, False, False]
    summary = result.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert (summary["num_pairs"], summary["converged"], summary["failed"]) == (4, 2, 2)
    assert summary["not_converged"] == 2  # max_iter and failed alike (failed: its old name)
    assert summary["status_counts"] == {"converged": 2, "failed": 1, "max_iter": 1}
    assert summary["tiles"] == {"total": 4, "computed": 2, "resumed": 1, "failed": 1}
    assert summary["failed_tiles"] == {"3": "MemoryError"}
    assert summary["mean_length"] == 1.5 and summary["mean_length_over_straight_line"] == 1.5
    assert summary["pairs_used"] == 2 and summary["converged_note"].startswith(
        "converged 2/4 pairs"
    )
    assert summary["warning"] is not None and summary["warning"].startswith("WARNING:")


def test_summary_over_every_finite_pair_when_asked() -> None:
    summary = _result().summary(include_all=True)
    assert summary["pairs_used"] == 3 and summary["include_all"]
    assert summary["mean_length"] == (1.0 + 2.0 + 4.0) / 3
    assert summary["mean_length_over_straight_line"] == (1.0 + 2.0 + 2.0) / 3
