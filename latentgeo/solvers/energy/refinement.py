"""Knot refinement: which pairs are done after a level, and where the others get knots.

After each level of optimisation, a spline pair is done when refining changed
its length by less than ``refine_tol / 2`` relative (or it failed, or reached
``max_knots``), and is split off the batch, so that only the pairs that need
more knots get them. The others get new knots where the curve moves fastest
in latent space (the spans of largest latent arc length are halved, one knot
per span), and optimisation resumes. This is how geodesics that need long
latent excursions get their knots without slowing the others down.

Every refinement is full: it inserts one knot per span (the mesh about
halved), so that the change of the length from it estimates the error of the
coarser level; a refinement that would exceed ``max_knots`` is not made
(:func:`can_refine`). It used to be made with fewer knots, up to
``max_knots``, and its small change was taken for settling: on the
stereographic sphere, 55 → 64 knots changed the energy by 9e-5 relative while
it was still 4e-4 above the geodesic's, and the pair was reported converged,
its length 1.3e-4 off; every pair that reached ``max_knots`` was reported
converged, settled or not. Now a pair that cannot be refined further after a
refinement without its length settling is not converged: its status is
``max_iter`` (the knot budget ran out), unless ``refine_tol`` is 0 (refine as
far as ``max_knots`` allows, as asked: the optimiser's ``tol`` is then the only
tolerance stated).

Two things make the levels cheap. The first level is solved only to
:data:`FIRST_LEVEL_TOL` (no pair can settle on it, and its length can only
come out longer, which makes the comparison of levels more conservative).
And the L-BFGS memory is carried across a refinement (see
:meth:`~latentgeo.solvers.energy.lbfgs.LBFGSMemory.refined`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from latentgeo.curves import CubicSpline
from latentgeo.metrics import Metric
from latentgeo.solvers.energy.problem import PairState
from latentgeo.solvers.energy.report import Finished, Report, quadrature_length, report
from latentgeo.solvers.status import Status, code

__all__ = ["FIRST_LEVEL_TOL", "Levels", "can_refine", "level_tolerance", "refine_fastest_spans"]

FIRST_LEVEL_TOL = 1e-3  # least tolerance of the first refinement level


def can_refine(interior: int, max_knots: int) -> bool:
    """Whether a spline of ``interior`` knots can be refined: a full refinement inserts
    one knot per span (``interior + 1``) and must stay within ``max_knots``."""
    return 2 * interior + 1 <= max_knots


def level_tolerance(tol: float, *, first: bool, can_refine: bool) -> float:
    """The tolerance of a level: the first of several levels only has to bring the curves
    close (at least :data:`FIRST_LEVEL_TOL`); a level after which no pair can be refined
    is solved to ``tol``, since its pairs are reported converged at it."""
    return max(tol, FIRST_LEVEL_TOL) if first and can_refine else tol


@dataclass
class Levels:
    """The comparison of refinement levels for a batch of B pairs.

    A pair settles when a full refinement changed its length by at most
    ``refine_tol / 2`` relative: the relative change of the energy at constant
    speed (``E = L²``), measured on the length, which the speed of the
    parametrisation does not change. The energy is not a good measure of it: a
    curve whose shape has settled can still even out its speed from level to
    level, which lowers ``E`` and leaves ``L``; on the demo's RBF model the mean
    length agreed to 1e-5 at 223 and 895 knots while the energy still changed
    by 3.6e-4 per refinement.

    Attributes:
        length: ``(B,)`` each pair's length (Gauss–Legendre quadrature of the
            metric, whatever the estimator) at its last converged level (``inf``
            before the first).
        refine_tol: twice the relative length change below which a pair is done.
        max_knots: most interior knots.
        change: ``(B,)`` the relative length change of the last refinement of the
            pairs that could not be refined further without their length settling
            (status ``max_iter``), ``|L_{k−1} − L_k| / L_k``, NaN for the others
            (``None`` while there are none): the evidence of their message.
        quadrature: ``(B,)`` for the same pairs, the relative difference of their
            length's quadrature on twice its pieces, ``|L'_k − L_k| / L_k`` (the
            other evidence: it must be at most ``refine_tol / 4``).
        refined: ``(B,)`` bool, the pairs whose length was compared across a full
            refinement at least once; a converged pair that never was (its start had
            too many knots for one within ``max_knots``) is converged at ``tol`` alone.
    """

    length: Tensor
    refine_tol: float
    max_knots: int
    change: Tensor | None = None
    quadrature: Tensor | None = None
    refined: Tensor | None = None

    @property
    def unsettled(self) -> Tensor | None:
        """``(B,)`` bool, the pairs with a :attr:`change` (``None`` while there are none)."""
        return None if self.change is None else ~self.change.isnan()

    def first(self, pairs: Tensor) -> bool:
        """Whether no pair of ``pairs`` has finished a level yet."""
        return not bool(torch.isfinite(self.length[pairs]).any())

    def settle(
        self,
        metric: Metric,
        curve: CubicSpline,
        pairs: Tensor,
        state: PairState,
        z0: Tensor,
        z1: Tensor,
    ) -> tuple[Tensor, list[Finished]]:
        """Which of the level's pairs are done, and those grouped with their curves.

        A converged pair settles when its length changed by at most
        ``refine_tol / 2`` relative since its last level (a full refinement), and
        the quadrature on twice its pieces agrees with it to ``refine_tol / 4``
        (the quadrature's error is at most twice that difference once it converges,
        at first order or faster). A
        converged pair that cannot be refined further (:func:`can_refine`) and did
        not settle after a refinement gets status ``max_iter`` in ``state`` and is
        marked in :attr:`unsettled` (unless ``refine_tol`` is 0).

        Args:
            metric: the metric.
            curve: the level's splines (their parameters written back).
            pairs: their rows ``(n,)`` in the batch.
            state: the level's outcome.
            z0: the batch's end points ``(B, d)`` the reported lengths depend on.
            z1: as ``z0``.

        Returns:
            ``final`` ``(n,)`` bool and the finished groups (pairs with and without
            a report already computed).
        """
        converged = state.status == code(Status.CONVERGED)
        measured = converged & ~state.coincident
        prev = self.length[pairs]
        length = torch.full_like(prev, math.nan)
        reported = None
        sel = measured.nonzero()[:, 0]
        if sel.numel() > 0:
            if bool(torch.isfinite(prev[sel]).any()):  # kept by the pairs that settle
                reported = report(metric, curve, sel, z0[pairs[sel]], z1[pairs[sel]])
                length[sel] = reported.length.detach()
            else:  # the first level: no pair can settle yet, only the length is needed
                with torch.no_grad():
                    length[sel] = quadrature_length(metric, curve, sel)
        change, quadrature = (prev - length).abs(), torch.zeros_like(length)
        later = sel[torch.isfinite(prev[sel])]
        if later.numel() > 0:  # the quadrature's own error: at most twice the difference
            with torch.no_grad():  # from twice its pieces when it converges at first order
                finer = quadrature_length(metric, curve, later, finer=True)
            quadrature[later] = (finer - length[later]).abs()
        # 0 <= 0 where G vanishes
        settled = torch.maximum(change, 2 * quadrature) <= (self.refine_tol / 2) * length
        change, quadrature = change / length, quadrature / length
        self.length[pairs] = torch.where(measured, length, prev)
        if self.refined is None:
            self.refined = torch.zeros_like(self.length, dtype=torch.bool)
        self.refined[pairs] |= measured & torch.isfinite(prev)
        # failures are final; so is reaching the knot limit
        capped = not can_refine(curve.breakpoints().shape[1] - 2, self.max_knots)
        final = settled | ~converged | state.coincident | capped
        if capped and self.refine_tol > 0:
            # refined, at the limit, not settled: the stated tolerance is not shown to hold
            which = measured & ~settled & torch.isfinite(prev)
            self._unsettled(pairs, state, which, change, quadrature)
        return final, _finished(curve, pairs, final, sel, reported)

    def _unsettled(
        self, pairs: Tensor, state: PairState, which: Tensor, change: Tensor, quadrature: Tensor
    ) -> None:
        """Mark the level's pairs ``which`` ``(n,)`` max_iter, with their ``change`` and
        ``quadrature`` difference."""
        if not bool(which.any()):
            return
        state.status[which] = code(Status.MAX_ITERATIONS)
        if self.change is None or self.quadrature is None:
            self.change = torch.full_like(self.length, math.nan)
            self.quadrature = torch.full_like(self.length, math.nan)
        self.change[pairs[which]] = change[which].to(self.change.dtype)
        self.quadrature[pairs[which]] = quadrature[which].to(self.quadrature.dtype)


def _finished(
    curve: CubicSpline, pairs: Tensor, final: Tensor, sel: Tensor, reported: Report | None
) -> list[Finished]:
    """The ``final`` pairs of a level grouped with their curves: those with a row in
    ``reported`` (the report of the level's pairs ``sel``, ``(n,)`` positions) and the others.

    Args:
        curve: the level's ``n`` splines.
        pairs: their rows ``(n,)`` in the batch.
        final: ``(n,)`` bool, the pairs that are done.
        sel: ``(k,)`` positions of the pairs ``reported`` covers, in its row order.
        reported: a report of ``k`` rows, or ``None``.
    """
    position = torch.full_like(pairs, -1)  # each pair's row in ``reported`` (-1: none)
    if reported is not None:
        position[sel] = torch.arange(sel.numel(), device=pairs.device)
    groups = []
    for with_report in (True, False):
        group = (final & ((position >= 0) == with_report)).nonzero()[:, 0]
        if group.numel() == 0:
            continue
        group_curve = curve if group.numel() == pairs.numel() else curve.subset(group)
        rows = reported.rows(position[group]) if reported is not None and with_report else None
        groups.append(Finished(pairs[group], group_curve, rows))
    return groups


@torch.no_grad()
def refine_fastest_spans(curve: CubicSpline, knots: int, arc: Tensor) -> Tensor:
    """Insert ``knots`` knots per curve, each halving the piece of largest latent arc length.

    Greedy halving (split the largest piece, repeat) picks, among the candidate
    pieces ``a_j / 2^l`` (span ``j`` of latent arc ``a_j`` halved ``l`` times:
    ``2^l`` pieces), the ``knots`` largest: a piece is larger than its halves, so
    it is always chosen before them. All of them are found by one ``topk``.

    Args:
        curve: the splines to refine (in place).
        knots: the number of knots to insert per curve.
        arc: the latent arc length of every span ``(B, S)``.

    Returns:
        The refinement matrices (see :meth:`CubicSpline.insert_knots`).
    """
    bp = curve.breakpoints()
    if knots == 0:
        return curve.insert_knots(bp[:, :0])
    # candidate l-th halving of a span: its 2^l pieces, piece m centred at (m + 1/2) / 2^l
    levels = math.ceil(math.log2(knots + 1))
    level = torch.cat([torch.full((2**q,), q, device=bp.device) for q in range(levels)])
    piece = torch.cat([torch.arange(2**q, device=bp.device) for q in range(levels)])
    size = torch.exp2(-level.to(bp.dtype))  # (P,) fraction of the span per piece
    chosen = (arc[..., None] * size).flatten(1).topk(knots, dim=1).indices  # (B, knots)
    span, cand = chosen // size.numel(), chosen % size.numel()
    lo, hi = bp[:, :-1].gather(1, span), bp[:, 1:].gather(1, span)
    return curve.insert_knots(lo + ((piece + 0.5) * size)[cand] * (hi - lo))
