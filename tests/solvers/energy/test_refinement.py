"""Knot refinement: levels, the first level's tolerance, and where knots go."""

from __future__ import annotations

import re

import pytest
import torch

from latentgeo.curves import CubicSpline, CurveStack
from latentgeo.metrics import as_metric
from latentgeo.solvers import connecting_geodesic, minimize_energy
from latentgeo.solvers.energy.problem import PairState
from latentgeo.solvers.energy.refinement import (
    FIRST_LEVEL_TOL,
    Levels,
    can_refine,
    level_tolerance,
    refine_fastest_spans,
)
from latentgeo.solvers.energy.report import quadrature_length
from latentgeo.solvers.status import Status, code, statuses_from_codes
from latentgeo.testing import StereographicSphere

SPHERE = StereographicSphere()


def _pairs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z0 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    z1 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return z0, z1


def test_level_tolerance() -> None:
    assert level_tolerance(1e-5, first=True, can_refine=True) == FIRST_LEVEL_TOL
    assert level_tolerance(1e-5, first=False, can_refine=True) == 1e-5
    assert level_tolerance(1e-5, first=True, can_refine=False) == 1e-5
    assert level_tolerance(1e-2, first=True, can_refine=True) == 1e-2


def test_no_room_to_refine_means_the_stated_tolerance() -> None:
    """With ``max_knots`` already reached, the first level is the last: its pairs are
    reported converged, so it is solved to ``tol``, as without refinement (it used to be
    solved to 1e-3 only and reported converged)."""
    z0, z1 = _pairs(8)
    full = connecting_geodesic(SPHERE, z0, z1, num_knots=6, max_knots=6)
    plain = minimize_energy(as_metric(SPHERE), CubicSpline(z0, z1, num_knots=6), refine=False)
    assert full.all_converged and plain.all_converged
    torch.testing.assert_close(full.iterations, plain.iterations)
    torch.testing.assert_close(full.energy, plain.energy, rtol=1e-12, atol=0)
    # converged at tol alone, and each pair says so (its message was empty, found by a
    # user: lengths 12x refine_tol / 2 off with nothing but info["refined"] to tell)
    assert full.info["refined"].tolist() == [False] * 8
    assert all(
        m.startswith("converged at tol alone: max_knots=6 leaves no room") for m in full.message
    )
    assert plain.message == [""] * 8  # refine=False: tol is all that was asked
    zero = connecting_geodesic(SPHERE, z0, z1, num_knots=6, max_knots=6, refine_tol=0.0)
    assert zero.message == [""] * 8  # refine_tol=0: as far as max_knots allows, as asked


def test_refinement_keeps_the_curve_and_halves_the_longest_spans() -> None:
    z0 = torch.tensor([[0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    z1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    curve = CubicSpline(z0, z1, num_knots=3)  # spans [0, .25, .5, .75, 1]
    t = torch.linspace(0, 1, 33, dtype=torch.float64)
    before = curve(t)
    # pair 0: span 2 is by far the longest, so it is halved, then its halves (3 knots:
    # 0.625, then 0.5625 and 0.6875); pair 1: spans 0 and 3 tie for first, then span 1
    arcs = torch.tensor([[1.0, 1.0, 8.0, 1.0], [4.0, 3.0, 1.0, 4.0]], dtype=torch.float64)
    refinement = refine_fastest_spans(curve, 3, arcs)
    torch.testing.assert_close(curve(t), before, rtol=0, atol=1e-14)
    inner = curve.breakpoints()[:, 1:-1]
    expect = torch.tensor(
        [[0.25, 0.5, 0.5625, 0.625, 0.6875, 0.75], [0.125, 0.25, 0.375, 0.5, 0.75, 0.875]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(inner, expect)
    # acting on the free control points: 5 before, 8 after
    assert refinement.shape == (2, curve.num_control_points - 2, curve.num_control_points - 5)


def test_pairs_that_settle_stop_getting_knots() -> None:
    """A straight geodesic (a linear map) settles at once; a sphere pair through a far
    excursion needs knots: one call, different numbers of knots per pair."""
    z0 = torch.tensor([[3.0, 0.2], [0.1, 0.1]], dtype=torch.float64)
    z1 = torch.tensor([[-3.0, 0.5], [0.2, 0.1]], dtype=torch.float64)
    result = connecting_geodesic(SPHERE, z0, z1, max_knots=128)  # the first needs 111
    assert result.all_converged
    assert isinstance(result.curve, CurveStack)  # split: the pairs ended with different knots
    knots = [part.breakpoints().shape[1] for part in result.curve.curves()]
    assert len(knots) == 2 and knots[0] != knots[1]
    torch.testing.assert_close(result.length, SPHERE.distance(z0, z1), rtol=1e-5, atol=0)


def _level(f: torch.Tensor, statuses: list[Status]) -> PairState:
    n = len(statuses)
    status = torch.tensor([code(s) for s in statuses])
    zeros = torch.zeros(n, 1, dtype=torch.float64)
    ones = torch.ones(n, dtype=torch.float64)
    return PairState(zeros, f, zeros, status, status * 0, ones, status < 0)


def test_settle_compares_reported_lengths_and_groups_pairs_by_their_report() -> None:
    """Two levels by hand: the first only measures (no report, only the failed pair is
    done); at the second, after a full refinement (knot insertion keeps the curves),
    unchanged curves settle and keep their rows of the level's report (in their order),
    the failed pair is done without one. The lengths compared are the reported
    quadrature's, whatever the level's optimiser minimised (``f`` plays no part)."""
    metric = as_metric(SPHERE)
    z0, z1 = _pairs(5, seed=1)
    curve = CubicSpline(z0, z1, num_knots=2)
    quadrature = quadrature_length(metric, curve, torch.arange(5)).detach()
    levels = Levels(torch.full((5,), float("inf"), dtype=torch.float64), 1e-4, max_knots=10)
    pairs = torch.tensor([0, 2, 3, 4])
    ok, failed = Status.CONVERGED, Status.NON_FINITE
    first = _level(torch.full((4,), 7.0, dtype=torch.float64), [ok, ok, ok, failed])
    final, groups = levels.settle(metric, curve.subset(pairs), pairs, first, z0, z1)
    assert final.tolist() == [False, False, False, True]
    assert len(groups) == 1 and groups[0].pairs.tolist() == [4] and groups[0].report is None
    torch.testing.assert_close(levels.length[[0, 2, 3]], quadrature[[0, 2, 3]])
    assert levels.length[[1, 4]].isinf().all()
    refine_fastest_spans(curve, 3, torch.ones(5, 3, dtype=torch.float64))  # 2 -> 5 knots
    pairs = torch.tensor([0, 2, 3])
    second = _level(torch.full((3,), 7.0, dtype=torch.float64), [ok, failed, ok])
    final, groups = levels.settle(metric, curve.subset(pairs), pairs, second, z0, z1)
    assert final.all()
    settled, done = groups
    assert settled.pairs.tolist() == [0, 3] and done.pairs.tolist() == [2]
    assert settled.report is not None and done.report is None
    torch.testing.assert_close(settled.report.length, quadrature[[0, 3]])
    torch.testing.assert_close(settled.curve.z0, z0[[0, 3]])
    torch.testing.assert_close(done.curve.z1, z1[[2]])
    assert levels.refined is not None and levels.refined.tolist() == [
        True,
        False,
        False,
        True,
        False,
    ]


def test_a_curve_of_length_zero_settles() -> None:
    """Where the metric vanishes (a constant decoder) every curve has length 0: the length
    did not change across the refinement, so the pair settled (a relative change, 0/0, is
    not a reason to refine up to ``max_knots`` and call it unsettled)."""
    z0 = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    z1 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    result = connecting_geodesic(lambda z: 0.0 * z, z0, z1)
    assert result.status == [Status.CONVERGED] and result.info["refined"].tolist() == [True]
    assert result.length.tolist() == [0.0] and result.message == [""]  # one per pair


def test_refinements_are_full_and_stop_before_max_knots() -> None:
    """A refinement inserts a knot per span (6 -> 13 -> 27 -> 55 knots); 111 would
    exceed ``max_knots=64``, so 55 is the last level (it used to go on to 64 with 9
    knots, whose small energy change was taken for settling)."""
    assert [can_refine(k, 64) for k in (6, 13, 27, 55)] == [True, True, True, False]
    assert can_refine(0, 1) and not can_refine(1, 2)


def test_a_pair_that_cannot_be_refined_further_and_did_not_settle_is_max_iter() -> None:
    """At the last level (55 knots under ``max_knots=64``) a pair whose length changed by
    1e-4 since the level before (more than ``refine_tol / 2``) is done but not converged;
    one that changed by 4e-5 settled; a pair that never got refined stays converged (its
    only stated tolerance is ``tol``, as without refinement)."""
    metric = as_metric(SPHERE)
    z0, z1 = _pairs(3)
    ok = Status.CONVERGED
    curve = CubicSpline(z0, z1, num_knots=55)
    now = quadrature_length(metric, curve, torch.arange(3)).detach()
    prev = now * torch.tensor([1 + 1e-4, 1 + 4e-5, float("inf")], dtype=torch.float64)
    levels = Levels(prev.clone(), 1e-4, max_knots=64)
    state = _level(torch.ones(3, dtype=torch.float64), [ok] * 3)
    final, _ = levels.settle(metric, curve, torch.arange(3), state, z0, z1)
    assert final.all()
    assert statuses_from_codes(state.status) == [Status.MAX_ITERATIONS, ok, ok]
    assert levels.unsettled is not None and levels.unsettled.tolist() == [True, False, False]
    assert levels.change is not None and levels.change[1:].isnan().all()
    torch.testing.assert_close(levels.change[0], torch.tensor(1e-4, dtype=prev.dtype))
    finer = quadrature_length(metric, curve, torch.arange(1), finer=True)[0].detach()
    assert levels.quadrature is not None and levels.quadrature[1:].isnan().all()
    torch.testing.assert_close(levels.quadrature[0], (finer - now[0]).abs() / now[0])
    assert levels.refined is not None and levels.refined.tolist() == [True, True, False]
    # refine_tol = 0: refine as far as max_knots allows, as asked, and report at tol
    levels = Levels(prev.clone(), 0.0, max_knots=64)
    state = _level(torch.ones(3, dtype=torch.float64), [ok] * 3)
    levels.settle(metric, curve, torch.arange(3), state, z0, z1)
    assert statuses_from_codes(state.status) == [ok] * 3 and levels.unsettled is None


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_pair_that_reaches_max_knots_unsettled_is_not_converged(dtype: torch.dtype) -> None:
    """A sphere pair whose geodesic passes near the north pole (far out in the chart) needs
    more than 64 knots: with ``max_knots=64`` its energy has not settled at 55 knots (the
    last full refinement within ``max_knots``), its length more than the 5e-5 that a settled
    energy allows above the great-circle distance, so it says ``max_iter`` and why (it
    used to go on to 64 knots, 9.4e-5 off, and say converged). With the default ``max_knots=256`` it
    settles, to 1e-5; with ``refine_tol=0`` (refine as far as ``max_knots`` allows, as
    asked) the optimiser's tolerance is the one stated, and it is converged."""
    z0 = torch.tensor([[0.45, 1.55]], dtype=dtype)
    z1 = torch.tensor([[-0.43, -2.24]], dtype=dtype)
    error = lambda r: float((r.length.double() / SPHERE.distance(z0, z1).double() - 1).abs())  # noqa: E731
    capped = connecting_geodesic(SPHERE, z0, z1, max_knots=64)
    assert capped.status == [Status.MAX_ITERATIONS]
    # the message gives the evidence: the last refinement's change, above refine_tol
    found = re.fullmatch(
        r"max_knots=64 reached before the length settled: the last refinement changed it by "
        r"(\S+) relative, more than refine_tol / 2 = 5e-05; raise max_knots \(or refine_tol\)",
        capped.message[0],
    )
    assert found is not None and float(found.group(1)) > 5e-5, capped.message
    assert error(capped) > 5e-5
    assert capped.info["refined"].tolist() == [True]
    unrefined = connecting_geodesic(SPHERE, z0, z1, num_knots=40, max_knots=64)  # none fits
    assert unrefined.info["refined"].tolist() == [False] and unrefined.status == [Status.CONVERGED]
    more = connecting_geodesic(SPHERE, z0, z1)  # the default max_knots=256
    assert more.status == [Status.CONVERGED] and more.message == [""]
    assert error(more) < 2e-5
    asked = connecting_geodesic(SPHERE, z0, z1, refine_tol=0.0, max_knots=64)
    assert asked.status == [Status.CONVERGED]
