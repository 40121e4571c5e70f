"""Per-pair L-BFGS, batched: A independent problems in one set of tensors.

Every pair has its own curvature memory
(:class:`~latentgeo.solvers.energy.lbfgs_memory.LBFGSMemory`), its own line
search and its own stopping test; one energy evaluation per iteration serves
all running pairs. A pair that stops is dropped from the running set
(:class:`RunningPairs`), so solving B pairs together gives the same curves as
solving each alone.

A pair has converged when its last accepted step lowered its energy by less
than ``tol`` relative, *and* the quasi-Newton model predicts less than that
from the next step: a scale-aware test (energies scale like length², so
rescaling the metric or the latent space does not change it). A curve that is
not linear in its parameters (a neural curve) has no preconditioner and passes
that test long before it is stationary: it has converged only where the spline
fitted to it passes it too (:mod:`~latentgeo.solvers.energy.stationarity`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from latentgeo.solvers.energy.lbfgs_memory import LBFGSMemory
from latentgeo.solvers.energy.line_search import LineSearchStep, armijo_search
from latentgeo.solvers.energy.pair_budget import pairs_per_run
from latentgeo.solvers.energy.preconditioner import frozen_metric_preconditioner
from latentgeo.solvers.energy.problem import Objective, PairState
from latentgeo.solvers.energy.stationarity import newton_decrement
from latentgeo.solvers.status import Status, code

__all__ = ["MOVED", "LBFGSMemory", "RunningPairs", "run_lbfgs"]

#: a pair's preconditioner is recomputed (every ``precondition_every`` iterations) only if
#: one of its curve's parameters moved by more than this fraction of ``|z1 − z0|_∞`` since
MOVED = 0.01
#: the preconditioner's metric once per span (see frozen_metric_preconditioner): half the
#: cost, but the end velocities of the curves (energy log maps) come out less accurate at
#: the same energy tolerance (1.6e-4 against 3.9e-5 on the Poincaré disk), so off for now
PER_SPAN = False
#: a pair that passed the step test but not the stationarity test of curves without a
#: preconditioner (each test fits and measures a spline) is tested again once its energy
#: fell by this share of what that test found left to lose, or after :data:`CHECK_AT_MOST`
#: iterations (SiLU MLP d = 50, 6 neural pairs: 107 tests every 10 iterations took 10 of
#: the solve's 16 CPU-seconds)
CHECK_SHARE = 0.25
CHECK_AT_MOST = 50


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(-1)


@dataclass
class RunningPairs:
    """The pairs still being optimised, compact, so that an iteration costs no gathers or
    scatters while the set is unchanged; written back to the :class:`PairState` when
    pairs stop."""

    idx: Tensor  # (A,) their rows in the level's batch
    x: Tensor  # (A, p) parameters
    f: Tensor  # (A,) energies
    g: Tensor  # (A, p) gradients
    iterations: Tensor  # (A,)
    scale: Tensor  # (A,) |z1 − z0|_∞
    small_decrease: Tensor  # (A,) bool: the last step lowered f by at most tol (relative)
    restarted: Tensor  # (A,) bool: the memory was cleared after a failed line search
    next_check: Tensor  # (A,) the iteration from which a curve's stationarity is tested again
    check_below: Tensor  # (A,) or once its energy is below this
    f_tested: Tensor  # (A,) its energy at its last stationarity test

    def rows(self, keep: Tensor) -> RunningPairs:
        return RunningPairs(**{k: v[keep] for k, v in vars(self).items()})

    def first_scale(self) -> Tensor:
        """Step length ``(A,)`` of a first, steepest-descent step: ``0.1 · scale / |g|``."""
        return 0.1 * self.scale / self.g.norm(dim=-1).clamp_min(1e-300)


def run_lbfgs(
    objective: Objective,
    state: PairState,
    *,
    max_iter: int,
    tol: float,
    history: int,
    precondition_every: int,
    on_step: Callable[[], None] | None = None,
    memory: LBFGSMemory | None = None,
) -> None:
    """Run until every running pair has converged, stalled or hit ``max_iter`` (in place).

    Args:
        objective: the energies.
        state: the level's pairs; the running ones (see :meth:`PairState.running`)
            are optimised and their entries updated.
        max_iter: most iterations per pair (counted in ``state.iterations``).
        tol: relative energy tolerance.
        history: L-BFGS memory.
        precondition_every: recompute the preconditioner every this many iterations.
        on_step: called after every iteration, with ``state`` up to date.
        memory: the L-BFGS memory of all the level's pairs to start from; it is
            updated with the final one (default: start empty).
    """
    running = state.running(max_iter).nonzero()[:, 0]
    if running.numel() == 0:
        return
    size = pairs_per_run(objective, state.x, history)
    for idx in running.split(size):
        _run_group(
            objective, state, idx, history=history, memory=memory, on_step=on_step,
            max_iter=max_iter, tol=tol, precondition_every=precondition_every,
        )  # fmt: skip


def _run_group(
    objective: Objective,
    state: PairState,
    idx: Tensor,
    *,
    max_iter: int,
    tol: float,
    history: int,
    precondition_every: int,
    on_step: Callable[[], None] | None,
    memory: LBFGSMemory | None,
) -> None:
    """:func:`run_lbfgs` on the running pairs ``idx`` (in place)."""
    g = state.g[idx]
    x, f, iterations, scale = state.x[idx], state.f[idx], state.iterations[idx], state.scale[idx]
    fresh = torch.zeros_like(idx, dtype=torch.bool)
    # (a zero gradient: done at the first test)
    never = torch.full_like(f, torch.inf)  # (no stationarity test yet: due at once)
    pairs = RunningPairs(
        idx, x, f, g, iterations, scale, ~g.any(-1), fresh, 0 * iterations, never, never.clone()
    )  # fmt: skip
    run = _Run(
        objective,
        state,
        pairs,
        LBFGSMemory(pairs.x, history) if memory is None else memory.rows(idx),
        level_memory=memory,
        max_iter=max_iter,
        tol=tol,
        precondition_every=precondition_every,
    )
    while run.iterate():
        if on_step is not None:
            run.write_back()
            on_step()
    run.write_back()


class _Run:
    """One L-BFGS run: the running pairs and their memory, and the level's state (and
    memory) they came from and are written back to."""

    def __init__(
        self,
        objective: Objective,
        state: PairState,
        pairs: RunningPairs,
        memory: LBFGSMemory,
        *,
        level_memory: LBFGSMemory | None,
        max_iter: int,
        tol: float,
        precondition_every: int,
    ) -> None:
        self.objective, self.state, self.pairs = objective, state, pairs
        self.memory, self.level_memory = memory, level_memory
        self.max_iter, self.tol = max_iter, tol
        self.precondition_every = precondition_every
        self.age = precondition_every  # iterations since the preconditioner (same for all pairs)
        self.anchor: Tensor | None = None  # (A, p) each pair's parameters at its preconditioner
        self.most_iterations = int(pairs.iterations.max())  # (a Python int: no sync to test)
        self.eps = torch.finfo(pairs.x.dtype).eps

    def write_back(self) -> None:
        """Copy the running pairs into the level's state (and memory)."""
        p, state = self.pairs, self.state
        state.x[p.idx], state.f[p.idx], state.g[p.idx], state.iterations[p.idx] = (
            p.x, p.f, p.g, p.iterations
        )  # fmt: skip
        if self.level_memory is not None:
            self.level_memory.put(p.idx, self.memory)

    def keep(self, keep: Tensor) -> None:
        self.pairs = self.pairs.rows(keep)
        self.memory.keep(keep)
        if self.anchor is not None:
            self.anchor = self.anchor[keep]

    def _precondition(self) -> None:
        """Compute the preconditioner at the first iteration; then, every
        ``precondition_every`` iterations, recompute it for the pairs whose curve moved
        (see :data:`MOVED`) since theirs was computed: the metric is frozen at the curve, so
        a curve that barely moved keeps a preconditioner that is as good (most pairs, once
        they are near their minimum; each one costs a metric tensor at every node)."""
        if not self.objective.linear:
            return
        if self.age >= self.precondition_every:
            p = self.pairs
            if self.memory.h0 is None or self.anchor is None:
                h0 = frozen_metric_preconditioner(self.objective, p.x, p.idx, per_span=PER_SPAN)
                self.memory.precondition(h0, owned=True)
                self.anchor = p.x
            else:
                moved = ((p.x - self.anchor).abs().amax(-1) > MOVED * p.scale).nonzero()[:, 0]
                if moved.numel():
                    x, idx = p.x[moved], p.idx[moved]
                    h0 = frozen_metric_preconditioner(self.objective, x, idx, per_span=PER_SPAN)
                    assert h0 is not None
                    self.memory.precondition_rows(moved, h0)
                    self.anchor = self.anchor.clone()
                    self.anchor[moved] = x
            self.age = 0
        self.age += 1

    def iterate(self) -> bool:
        """One iteration of every running pair; ``False`` once none is left."""
        self._precondition()
        pairs = self.pairs
        direction = self.memory.direction(pairs.g, pairs.first_scale)
        slope = _dot(pairs.g, direction)
        if not bool((slope < 0).all()):  # not a descent direction: steepest descent
            steepest = -pairs.g * pairs.first_scale()[:, None]
            direction = torch.where((slope < 0)[:, None], direction, steepest)
            slope = _dot(pairs.g, direction)
        # (a gradient that becomes zero gives a zero step, accepted; done at the next test)
        done = (slope >= pairs.f.abs() * -self.tol) & pairs.small_decrease
        stop = done
        if self.objective.tested_by_shape and bool(done.any()):
            done, stalled = self._stationary(done)
            self.state.status[pairs.idx[stalled]] = code(Status.LINE_SEARCH_FAILED)
            stop = done | stalled
        if bool(stop.any()):
            self.state.status[pairs.idx[done]] = code(Status.CONVERGED)
            self.write_back()
            keep = (~stop).nonzero()[:, 0]
            self.keep(keep)
            direction, slope = direction[keep], slope[keep]
            if self.pairs.idx.numel() == 0:
                return False
        pairs = self.pairs
        step = armijo_search(self.objective, pairs.idx, pairs.x, pairs.f, pairs.g, direction, slope)
        pairs.iterations += 1
        self.most_iterations += 1
        return self._drop_stopped(self._accept(step, slope))

    def _stationary(self, passed: Tensor, *, always: bool = False) -> tuple[Tensor, Tensor]:
        """Which of the pairs that ``passed`` the step test are stationary as curves
        (:func:`newton_decrement` at most ``tol``, or ``√eps`` where that is larger: 3.5e-4
        in float32), and which are stuck: not stationary, and their energy did not fall
        since their last test (float32 rounding can leave the optimiser there). One that
        is neither is tested again once it lost :data:`CHECK_SHARE` of the energy the test
        found left to lose, or :data:`CHECK_AT_MOST` iterations later (``always``: test
        every pair that passed, due or not)."""
        p, tol = self.pairs, max(self.tol, math.sqrt(self.eps))
        due = (
            passed if always else passed & ((p.f <= p.check_below) | (p.iterations >= p.next_check))
        )
        rows = due.nonzero()[:, 0]
        ok, stalled = torch.zeros_like(passed), torch.zeros_like(passed)
        if rows.numel():
            decrement = newton_decrement(self.objective, p.x[rows], p.idx[rows])
            f = p.f[rows]
            ok[rows] = decrement <= tol
            stalled[rows] = ~ok[rows] & (f >= p.f_tested[rows] - 4 * self.eps * f.abs())
            left = 0.5 * decrement * f.abs()  # the energy still to lose (NaN: unknown)
            p.check_below[rows] = torch.where(left.isfinite(), f - CHECK_SHARE * left, -torch.inf)
            p.next_check[rows] = p.iterations[rows] + CHECK_AT_MOST
            p.f_tested[rows] = f
        return ok, stalled

    def _accept(self, step: LineSearchStep, slope: Tensor) -> Tensor | None:
        """Move the pairs to ``step`` and update their memory. A pair whose line search
        failed starts again from an empty memory (a stale curvature pair can make a
        direction that is descent in exact arithmetic useless); if it fails again before
        its next step, it stops: converged if its predicted decrease is at rounding
        level, else stalled. Returns the pairs that stop (``None``: none)."""
        p, tol = self.pairs, self.tol
        if step.failed is None:
            self.memory.update(step.x - p.x, step.g - p.g)
            p.small_decrease = p.f - step.f <= tol * step.f.abs()
            p.x, p.f, p.g = step.x, step.f, step.g
            p.restarted = torch.zeros_like(p.restarted)
            return None
        failed = step.failed
        tiny = -slope <= max(tol, math.sqrt(self.eps)) * p.f.abs()
        retry = failed & ~tiny & ~p.restarted
        if bool(retry.any()):
            self.memory.forget(retry)
        stop = failed & ~retry
        if self.objective.tested_by_shape and bool((stop & tiny).any()):
            tiny = tiny & self._stationary(stop & tiny, always=True)[0]
        outcome = torch.where(tiny[stop], code(Status.CONVERGED), code(Status.LINE_SEARCH_FAILED))
        self.state.status[p.idx[stop]] = outcome.to(self.state.status.dtype)
        moved = (~failed).nonzero()[:, 0]
        p.restarted = retry
        if moved.numel():
            xm, fm, gm = step.x[moved], step.f[moved], step.g[moved]
            self.memory.update(xm - p.x[moved], gm - p.g[moved], moved)
            p.small_decrease[moved] = p.f[moved] - fm <= tol * fm.abs()
            p.x, p.f, p.g = p.x.clone(), p.f.clone(), p.g.clone()
            p.x[moved], p.f[moved], p.g[moved] = xm, fm, gm
        return stop if bool(stop.any()) else None

    def _drop_stopped(self, failed: Tensor | None) -> bool:
        """Drop the pairs that failed their line search or spent their budget; ``False`` once
        none is left."""
        if failed is None and self.most_iterations < self.max_iter:
            return True
        stop = self.pairs.iterations >= self.max_iter
        if failed is not None:
            stop |= failed
        if bool(stop.any()):
            self.write_back()
            self.keep((~stop).nonzero()[:, 0])
            running = self.pairs.iterations
            self.most_iterations = int(running.max()) if running.numel() else 0
            if running.numel() == 0:
                return False
        return True
