"""The one status vocabulary: values, hints, severity, codes, counts and the exception."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from latentgeo.exceptions import LatentgeoError
from latentgeo.solvers import Status
from latentgeo.solvers.status import (
    CODES,
    SolverError,
    code,
    converged_mask,
    count_converged,
    raise_if_failed,
    statuses_from_codes,
)


def test_members_print_compare_and_serialise_as_their_values() -> None:
    assert Status.MAX_ITERATIONS == "max_iter" and str(Status.NON_FINITE) == "nonfinite"
    assert repr(Status.CONVERGED) == "Status.CONVERGED"
    assert json.dumps([Status.CONVERGED]) == '["converged"]'
    assert [s for s in Status if s.ok] == [Status.CONVERGED]
    assert all(isinstance(s.hint, str) and s.hint for s in Status)


def test_combine_keeps_the_more_severe_and_is_symmetric() -> None:
    order = [
        Status.CONVERGED, Status.MAX_ITERATIONS, Status.LINE_SEARCH_FAILED, Status.MAX_STEPS,
        Status.INTEGRATION_ERROR, Status.STEP_UNDERFLOW, Status.NOT_MINIMIZING,
        Status.NOT_SOLVED, Status.FAILED,
        Status.NON_FINITE, Status.UNREACHABLE, Status.INVALID_METRIC,
    ]  # fmt: skip
    assert set(order) == set(Status)
    for a, b in itertools.product(order, order):
        want = a if order.index(a) >= order.index(b) else b
        assert Status.combine(a, b) is want and Status.combine(b, a) is want


def test_codes_round_trip() -> None:
    codes = torch.tensor([code(s) for s in Status])
    assert statuses_from_codes(codes) == list(Status) == list(CODES)
    assert statuses_from_codes([0, 0]) == [Status.CONVERGED] * 2


def test_counts_and_masks_accept_members_and_strings() -> None:
    statuses = [Status.CONVERGED, "max_iter", "converged", Status.FAILED]
    assert count_converged(statuses) == 2
    assert converged_mask(statuses).tolist() == [True, False, True, False]
    with pytest.raises(ValueError):
        count_converged(["done"])


def test_raise_if_failed_names_the_first_failures_and_carries_the_result() -> None:
    result = object()
    raise_if_failed([Status.CONVERGED] * 3, result)  # nothing failed: no exception

    class PairError(SolverError):
        pass

    statuses = [Status.CONVERGED, *[Status.MAX_ITERATIONS] * 6]
    with pytest.raises(PairError) as info:
        raise_if_failed(
            statuses, result, PairError, what="curves", messages=["", "slow", *[""] * 5]
        )
    text = str(info.value)
    assert text.startswith("6 of 7 curves failed: curve 1: max_iter (slow); curve 2: max_iter (")
    assert Status.MAX_ITERATIONS.hint in text and "curve 6" not in text  # five shown
    assert info.value.result is result
    assert isinstance(info.value, LatentgeoError) and isinstance(info.value, RuntimeError)
