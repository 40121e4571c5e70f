"""Result types: statuses from strings, counts, and ``raise_if_failed`` with the right error."""

from __future__ import annotations

import pytest
import torch

from latentgeo.curves import CubicSpline
from latentgeo.solvers import ExpMapResult, GeodesicError, GeodesicResult, ShootingError, Status


def _geodesics(status: list[str], message: list[str] | None = None) -> GeodesicResult:
    n = len(status)
    return GeodesicResult(
        curve=CubicSpline(torch.zeros(n, 2), torch.ones(n, 2), num_knots=1),
        length=torch.ones(n),
        energy=torch.ones(n),
        converged=torch.tensor([s == "converged" for s in status]),
        iterations=torch.full((n,), 3),
        status=status,  # type: ignore[arg-type]
        method="spline",
        message=message or [],
    )


def test_geodesic_result_counts_and_takes_statuses_as_strings() -> None:
    res = _geodesics(["converged", "max_iter", "converged"])
    assert res.status == [Status.CONVERGED, Status.MAX_ITERATIONS, Status.CONVERGED]
    assert (res.num_pairs, res.num_converged, res.all_converged) == (3, 2, False)
    _geodesics(["converged"]).raise_if_failed()  # nothing failed


def test_geodesic_result_has_one_message_per_pair() -> None:
    # documented as "" where there is none; it was [] when no pair had one
    assert _geodesics(["converged", "converged"]).message == ["", ""]
    with pytest.raises(ValueError, match=r"one string per pair \(2\), got 1"):
        _geodesics(["converged", "max_iter"], message=["only one"])


def test_geodesic_errors_carry_the_result_and_the_messages() -> None:
    res = _geodesics(["converged", "unreachable"], message=["", "components 0 and 3"])
    with pytest.raises(GeodesicError, match=r"1 of 2 pairs failed: pair 1: unreachable \(comp"):
        res.raise_if_failed()
    try:
        res.raise_if_failed()
    except GeodesicError as err:
        assert err.result is res


def test_exp_map_results_raise_shooting_errors() -> None:
    res = ExpMapResult(
        point=torch.zeros(2, 2),
        velocity=torch.zeros(2, 2),
        converged=torch.tensor([True, False]),
        status=[Status.CONVERGED, Status.MAX_STEPS],
        steps=torch.tensor([10, 10_000]),
    )
    with pytest.raises(ShootingError, match="pair 1: max_steps") as info:
        res.raise_if_failed()
    assert info.value.result is res
