"""The level loop of :func:`~latentgeo.solvers.energy.minimize_energy`: optimise the
pairs of a level, split off those that settled, refine the others and repeat.

The L-BFGS memory of the pairs that go on is carried into their refined
parametrisation (see :meth:`LBFGSMemory.refined`). It is held for every pair of
a level at once, so a batch whose memory would exceed
:data:`~latentgeo.solvers.energy.pair_budget.CARRY_SHARE` of the memory budget goes
on in groups that fit (:func:`~latentgeo.solvers.energy.pair_budget.pairs_per_carry`),
sized for the most parameters a pair can reach so that no group splits again,
each group through all its remaining levels before the next: every pair's
result is its own, so only rounding depends on the grouping. What is held is
then at most the splitting level's memory and one group's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from latentgeo.curves import CubicSpline, Curve
from latentgeo.metrics import Metric
from latentgeo.solvers.energy.adam import run_adam
from latentgeo.solvers.energy.lbfgs import LBFGSMemory, run_lbfgs
from latentgeo.solvers.energy.options import EnergyOptions
from latentgeo.solvers.energy.pair_budget import pairs_per_carry
from latentgeo.solvers.energy.problem import Objective, PairState, start_level
from latentgeo.solvers.energy.refinement import (
    Levels,
    can_refine,
    level_tolerance,
    refine_fastest_spans,
)
from latentgeo.solvers.energy.report import Finished

__all__ = ["LevelLoop"]


@dataclass
class LevelLoop:
    """One call's optimisation, level by level, and the batch-wide outcome it updates.

    Attributes:
        metric: the metric.
        opts: the checked options.
        estimator: the energy's estimator.
        levels: the comparison of refinement levels (``None``: one level, no refinement).
        z0: the batch's start points ``(B, d)`` (the reported lengths depend on them).
        z1: the batch's end points ``(B, d)``.
        status: ``(B,)`` status codes, updated in place.
        iterations: ``(B,)`` iterations, updated in place.
        on_step: called after every iteration (the progress bar), or ``None``.
    """

    metric: Metric
    opts: EnergyOptions
    estimator: str
    levels: Levels | None
    z0: Tensor
    z1: Tensor
    status: Tensor
    iterations: Tensor
    on_step: Callable[[], None] | None

    @property
    def carries(self) -> bool:
        """Whether the L-BFGS memory is carried across refinements."""
        return self.levels is not None and self.opts.optimizer == "lbfgs"

    def run(
        self, curve: Curve, pairs: Tensor, carried: LBFGSMemory | None = None
    ) -> list[Finished]:
        """Solve the curves of the batch's rows ``pairs`` to the end of their levels.

        Args:
            curve: their curves (refined in place).
            pairs: their rows in the batch ``(A,)``.
            carried: their L-BFGS memory from the previous level, or ``None``.

        Returns:
            The pairs in groups, with their final curves.
        """
        active, finished = curve, []
        while True:
            objective = Objective(
                self.metric, active, self.estimator, self.opts.num_points, self.opts.nodes,
                self.opts.generator,
            )  # fmt: skip
            if carried is None and self.carries:
                assert isinstance(active, CubicSpline)  # refinement needs splines
                x = objective.packing.flatten(active)
                group = self._group_size(len(pairs), x.shape[1], x)
                if group < len(pairs):
                    del objective, x  # nothing of this level is kept while the groups run
                    return self._in_groups(active, pairs, group)
                carried = LBFGSMemory(x, self.opts.history)
            state = self._optimise(objective, active, pairs, carried)
            if self.levels is None:
                return [Finished(pairs, active)]
            assert isinstance(active, CubicSpline)
            final, groups = self.levels.settle(self.metric, active, pairs, state, self.z0, self.z1)
            self.status[pairs] = state.status  # pairs at max_knots whose length did not settle
            finished += groups
            if bool(final.all()):
                return finished
            keep = (~final).nonzero()[:, 0]
            arcs = objective.span_arcs(state.x[keep], keep)
            active, pairs = active.subset(keep), pairs[keep]
            refinement = refine_fastest_spans(active, _interior(active) + 1, arcs)  # one per span
            if carried is None:
                continue
            p_next = refinement.shape[1] * active.dim  # parameters per pair once refined
            size = self._group_size(len(pairs), p_next, state.x)
            carried = carried.rows(keep)
            if size < len(pairs):  # each group takes its rows of the memory in its turn
                del state, objective, arcs  # only the kept pairs' memory stays meanwhile
                return finished + self._in_groups(active, pairs, size, carried, refinement)
            carried = carried.refined(refinement, active.dim)

    def _group_size(self, pairs: int, p: int, like: Tensor) -> int:
        """``pairs`` if their carried memory at ``p`` parameters each fits the budget,
        else groups sized for the most parameters a pair can reach (``max_knots``), so
        that no group splits again: what is held is at most the level's memory and
        one group's."""
        size = pairs_per_carry(self.metric, p, self.opts.history, like)
        if size >= pairs:
            return pairs
        most = (self.opts.max_knots + 2) * self.z0.shape[1]
        at_most = pairs_per_carry(self.metric, most, self.opts.history, like, announce=False)
        return min(size, at_most)

    def _in_groups(
        self,
        curve: CubicSpline,
        pairs: Tensor,
        size: int,
        memory: LBFGSMemory | None = None,
        refinement: Tensor | None = None,
    ) -> list[Finished]:
        """:meth:`run` on consecutive groups of ``size`` pairs; with ``memory`` (theirs,
        row for row), each carries its rows of it through ``refinement``."""
        finished = []
        for idx in range(0, len(pairs), size):
            sl = slice(idx, idx + size)
            carried = None
            if memory is not None:
                assert refinement is not None
                group = _range(pairs, sl)
                carried = memory.rows(group).refined(refinement[sl], curve.dim)
            finished += self.run(curve.subset(_range(pairs, sl)), pairs[sl], carried)
        return finished

    def _optimise(
        self, objective: Objective, curve: Curve, pairs: Tensor, memory: LBFGSMemory | None
    ) -> PairState:
        """Optimise one level of the pairs ``pairs`` (their status and iterations are
        written to the batch's); the curves get the final parameters."""
        opts, levels = self.opts, self.levels
        state = start_level(objective, curve, self.iterations[pairs])
        self.status[pairs] = state.status
        tol = opts.tol
        if levels is not None:
            more = can_refine(_interior(curve), opts.max_knots)
            tol = level_tolerance(opts.tol, first=levels.first(pairs), can_refine=more)
        step = self._level_step(pairs, state)
        if opts.optimizer == "lbfgs":
            run_lbfgs(
                objective, state,
                max_iter=opts.max_iter, tol=tol, history=opts.history,
                precondition_every=opts.precondition_every, on_step=step, memory=memory,
            )  # fmt: skip
        else:
            run_adam(
                objective, state,
                max_iter=opts.max_iter, tol=tol, lr=opts.lr, patience=opts.patience, on_step=step,
            )  # fmt: skip
        self.status[pairs], self.iterations[pairs] = state.status, state.iterations
        objective.packing.write(curve, state.x)
        return state

    def _level_step(self, pairs: Tensor, state: PairState) -> Callable[[], None] | None:
        """The optimiser's per-iteration callback: copy the level's outcome into the batch's
        ``status`` and ``iterations``, then ``on_step`` (only the progress bar reads them)."""
        on_step = self.on_step
        if on_step is None:
            return None

        def step() -> None:
            self.status[pairs], self.iterations[pairs] = state.status, state.iterations
            on_step()

        return step


def _range(pairs: Tensor, sl: slice) -> Tensor:
    """The positions ``sl`` of ``pairs`` as an index tensor (for ``subset``)."""
    return torch.arange(len(pairs), device=pairs.device)[sl]


def _interior(curve: Curve) -> int:
    """The interior knots of a spline (breakpoints less its two ends)."""
    return curve.breakpoints().shape[1] - 2
