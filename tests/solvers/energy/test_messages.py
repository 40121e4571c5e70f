"""The messages of pairs whose length did not settle: the evidence that decided."""

from __future__ import annotations

import re

import torch

from latentgeo.curves import CubicSpline
from latentgeo.metrics import as_metric
from latentgeo.solvers.energy.messages import unsettled_message
from latentgeo.solvers.energy.problem import PairState
from latentgeo.solvers.energy.refinement import Levels
from latentgeo.solvers.energy.report import quadrature_length
from latentgeo.solvers.status import Status, code, statuses_from_codes
from latentgeo.testing import StereographicSphere


def test_the_message_names_the_refinement_change_when_it_is_too_large() -> None:
    message = unsettled_message(1.2e-4, 64, 1e-4, quadrature=3e-7)
    assert message == (
        "max_knots=64 reached before the length settled: the last refinement changed it "
        "by 1.2e-04 relative, more than refine_tol / 2 = 5e-05; raise max_knots (or "
        "refine_tol)"
    )


def test_the_message_names_the_quadrature_when_the_change_was_within() -> None:
    message = unsettled_message(1e-5, 64, 1e-4, quadrature=4e-5)
    assert "changed it by 1.0e-05 relative, within refine_tol / 2" in message
    assert "quadrature on twice the pieces differs by 4.0e-05 relative, more than " in message
    assert "refine_tol / 4 = 2.5e-05; raise max_knots" in message


def test_a_pair_held_back_by_its_quadrature_alone_is_told_so() -> None:
    """A length that did not change across the refinement (the previous level's is set to
    it) but whose quadrature on twice the pieces differs by more than ``refine_tol / 4``:
    ``max_iter`` with the quadrature's figure, not a change of 0 "more than" the limit."""
    sphere = as_metric(StereographicSphere())
    z0 = torch.tensor([[0.45, 1.55]], dtype=torch.float64)
    z1 = torch.tensor([[-0.43, -2.24]], dtype=torch.float64)  # near the pole: hard to integrate
    curve = CubicSpline(z0, z1, num_knots=3)
    now = quadrature_length(sphere, curve, torch.arange(1)).detach()
    finer = quadrature_length(sphere, curve, torch.arange(1), finer=True).detach()
    difference = float((finer - now).abs() / now)
    refine_tol = difference  # the quadrature's difference is twice refine_tol / 4
    levels = Levels(now.clone(), refine_tol, max_knots=4)
    one = torch.ones(1, dtype=torch.float64)
    zero = torch.zeros(1, dtype=torch.long)
    state = PairState(curve.inner.detach().reshape(1, -1), one, one.reshape(1, 1),
                      torch.full((1,), code(Status.CONVERGED)), zero, one, zero.bool())  # fmt: skip
    levels.settle(sphere, curve, torch.arange(1), state, z0, z1)
    assert statuses_from_codes(state.status) == [Status.MAX_ITERATIONS]
    assert levels.change is not None and levels.quadrature is not None
    change, quadrature = float(levels.change[0]), float(levels.quadrature[0])
    assert change <= refine_tol / 2 and quadrature == difference
    message = unsettled_message(change, 4, refine_tol, quadrature)
    assert re.search(r"within refine_tol / 2, but its quadrature", message), message
