"""What converged: counts, notes, the WARNING line below 90 %, and the results carrying them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentgeo.analysis import (
    CONVERGED_SHARE,
    DistanceMatrixResult,
    PairwiseDistances,
    compare_retrainings,
    converged_note,
    convergence_warning,
    status_counts,
)
from latentgeo.solvers import Status


def test_the_warning_starts_below_90_percent() -> None:
    assert CONVERGED_SHARE == 0.9
    assert convergence_warning(27, 30) is None and convergence_warning(9, 10) is None
    line = convergence_warning(26, 30)
    assert line is not None and line.startswith("WARNING:") and "26/30" in line
    assert convergence_warning(0, 30, "solves") == "WARNING: only 0/30 solves converged (< 90 %)"
    assert convergence_warning(0, 0) is None  # nothing to count
    with pytest.raises(ValueError, match="converged must be at most total=2"):
        convergence_warning(3, 2)
    assert converged_note(26, 30).startswith(
        "converged 26/30 pairs"
    ) and "WARNING" in converged_note(26, 30)
    assert status_counts(["max_iter", Status.CONVERGED, "converged", "invalid_metric"]) == {
        "converged": 2,
        "max_iter": 1,
        "invalid_metric": 1,
    }


def test_pairwise_table_counts_its_pairs() -> None:
    status = [Status.CONVERGED] * 2 + [Status.MAX_ITERATIONS]
    table = PairwiseDistances(torch.zeros(3, 3), torch.eye(3, dtype=torch.bool), status)
    assert (table.num_pairs, table.num_converged) == (3, 2)
    assert table.converged_fraction == pytest.approx(2 / 3)
    assert table.status_counts() == {"converged": 2, "max_iter": 1}
    assert table.converged_note.startswith("converged 2/3") and table.warning is not None


def _matrix_result(status: list[Status]) -> DistanceMatrixResult:
    length = torch.tensor([1.0, 2.0, 10.0, float("nan")], dtype=torch.float64)
    line = torch.tensor([2.0, 2.0, 10.0, 3.0], dtype=torch.float64)
    i, j = torch.tensor([0, 0, 0, 1]), torch.tensor([1, 2, 3, 2])
    return DistanceMatrixResult(
        torch.zeros(4, 4), i, j, length, line, status, torch.zeros(4, dtype=torch.long)
    )


def test_distance_matrix_summary_is_over_converged_pairs_unless_asked() -> None:
    res = _matrix_result([Status.CONVERGED, Status.CONVERGED, Status.MAX_ITERATIONS, Status.FAILED])
    assert res.num_converged == 2 and res.num_pairs == 4
    s = res.summary()
    assert s["mean_length"] == pytest.approx(1.5) and s["pairs_used"] == 2
    assert s["mean_length_over_straight_line"] == pytest.approx(0.75)
    assert s["converged"] == 2 and s["failed"] == 2 and s["include_all"] is False
    assert s["warning"] is not None and s["warning"].startswith("WARNING: only 2/4")
    every = res.summary(include_all=True)  # the NaN length of the failed tile stays out
    assert every["mean_length"] == pytest.approx(13 / 3) and every["pairs_used"] == 3
    ok = _matrix_result([Status.CONVERGED] * 4).summary()
    assert ok["warning"] is None


def test_retraining_comparison_keeps_statuses_and_counts_pairs_converged_everywhere() -> None:
    rng = np.random.default_rng(0)
    a = 1 + 0.05 * rng.random((4, 6))
    b = 1 + 0.5 * rng.random((4, 6))
    st = np.full((4, 6), "converged", dtype=object)
    st[1, 2], st[3, 4] = "max_iter", Status.INVALID_METRIC
    res = compare_retrainings(a, b, st, None)
    assert res.used.tolist() == [True, True, False, True, False, True]
    assert res.converged_pairs == 4 and res.num_pairs == 6 and res.converged_a == 22
    assert res.status_a is not None and res.status_a[1][2] is Status.MAX_ITERATIONS
    assert res.status_counts()["a"] == {"converged": 22, "max_iter": 1, "invalid_metric": 1}
    assert res.status_b is None and res.status_counts()["b"] == {}
    assert res.warning is not None and "4/6 pairs" in res.warning  # 67 % everywhere
    # booleans give the same selection, without statuses
    same = compare_retrainings(a, b, st == "converged", None)
    assert same.used.tolist() == res.used.tolist() and same.status_a is None
    assert res.test is not None and same.test is not None
    assert res.test.statistic == pytest.approx(same.test.statistic)
    every = compare_retrainings(a, b, st, None, include_all=True)
    assert every.num_used == 6 and every.converged_pairs == 4
    with pytest.raises(ValueError, match="converged_a must hold booleans or"):
        compare_retrainings(a, b, np.full((4, 6), "done", dtype=object), None)


def test_no_converged_pair_gives_nan_not_a_number_from_the_others() -> None:
    st = np.full((3, 2), "max_iter", dtype=object)
    res = compare_retrainings(np.ones((3, 2)), np.ones((3, 2)), st, st)
    assert res.num_used == 0 and res.test is None and math.isnan(res.cv_a[0])
    assert res.warning is not None and res.warning.startswith("WARNING:")
