"""What ``minimize_energy`` reports: quadrature lengths and energies, and the result.

Whatever energy was minimised, the reported ``length`` and ``energy`` are
Gauss–Legendre quadratures of the metric (:data:`REPORT_NODES` nodes per
piece, every span cut into :data:`REPORT_PIECES_PER_SPAN` pieces, at least
:data:`REPORT_PIECES` in all), with the end points put in so that they are
differentiable with respect to ``z0``, ``z1``.

Every span gets its own pieces, so a full knot refinement (one knot per span)
also halves the quadrature's pieces, and the change of the length across it
measures the quadrature's error as well as the curve's. When the pieces stayed
the same (a fixed total of them: 14 at both 6 and 13 knots) the change missed
it: on a transposed-convolution decoder with ELU activations (whose metric has
kinks in its derivative, which Gauss–Legendre resolves slowly) pairs settled at
lengths 7.6e-5 short of their own curves', beyond ``refine_tol / 2 = 5e-5``.
A change can still cancel the quadrature's error by chance, so a pair also
settles only when the quadrature on twice its pieces agrees to ``refine_tol / 4``
(:func:`quadrature_length` with ``finer=True``, in
:class:`~latentgeo.solvers.energy.refinement.Levels`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import functional_call

from latentgeo.curves import Curve, CurveStack, LinearInControlPoints
from latentgeo.curves.length import speeds_squared
from latentgeo.curves.reparam import arc_length_nodes, reparametrize_by_speeds
from latentgeo.metrics import Metric
from latentgeo.solvers.energy.problem import CurvePoints, over_pairs
from latentgeo.solvers.result import GeodesicResult
from latentgeo.solvers.status import Status, code, statuses_from_codes
from latentgeo.solvers.validity import invalid_squared_norms

__all__ = [
    "REPORT_NODES",
    "REPORT_PIECES",
    "REPORT_PIECES_ONE_SPAN",
    "REPORT_PIECES_PER_SPAN",
    "UNRESOLVED_RTOL",
    "Finished",
    "Report",
    "assemble_result",
    "quadrature_length",
    "report",
]

REPORT_NODES = 3  # Gauss–Legendre nodes per piece for the reported length and energy
REPORT_PIECES = 8  # at least this many pieces (spans are cut into equal pieces)
REPORT_PIECES_PER_SPAN = 2  # and at least this many per span (see the module doc)
#: pieces of a curve of one span that is not refined (a neural curve: no knots to add
#: pieces with; a spline of one span is refined, its pieces halve as above): with 8,
#: converged sphere geodesics' lengths were 5.7e-6 off their own curves' (``curve_length``
#: at 4096 points), more than they were off the exact distance
REPORT_PIECES_ONE_SPAN = 32
#: a pair that did not converge, whose length on twice the quadrature's pieces differs by
#: more than this (relative), has an unresolved length: it gets the larger of the two
UNRESOLVED_RTOL = 1e-3


@dataclass
class Report:
    """The reported quadrature of some curves: energies and lengths (differentiable in the
    end points), and the speeds the constant-speed reparametrisation needs."""

    u: Tensor  # piece boundaries (A, M + 1)
    w: Tensor  # quadrature weights (A, M · q)
    energy: Tensor  # (A,)
    length: Tensor  # (A,)
    speed: Tensor  # |γ̇|_G at the quadrature times (A, M · q), detached
    node_speed: Tensor  # |γ̇|_G at u (A, M + 1), detached
    invalid: Tensor  # a negative or non-finite γ̇ᵀ G γ̇ at a finite point (A,) bool

    def rows(self, idx: Tensor) -> Report:
        return Report(*(v[idx] for v in vars(self).values()))


@dataclass
class Finished:
    """Pairs that are done: their rows ``pairs`` in the batch, their final curves, and
    their report if it was already computed (when comparing refinement levels)."""

    pairs: Tensor
    curve: Curve
    report: Report | None = None


def _quadrature(
    metric: Metric, curve: Curve, idx: Tensor, z0: Tensor, z1: Tensor, t: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """``(γ̇ᵀ G γ̇, |γ̇|_G, invalid)`` at times ``t`` ``(A, T)`` of the curves ``idx``, with
    the end points replaced by ``z0``, ``z1`` ``(A, d)`` (so gradients reach them), in
    chunks; ``invalid`` ``(A,)``: :func:`~latentgeo.solvers.validity.invalid_squared_norms`."""
    params = {f"curve.{n}": p.detach() for n, p in curve.named_parameters()}
    buffers = dict(curve.named_buffers())

    def chunk(sl: slice) -> Tensor:
        rows = idx[sl]
        state = {k: v[rows] for k, v in params.items()}
        state.update({f"curve.{n}": b[rows] for n, b in buffers.items()})
        state.update({"curve.z0": z0[sl], "curve.z1": z1[sl]})
        pos, vel = functional_call(CurvePoints(curve), state, (t[sl], True))
        assert vel is not None
        finite = torch.isfinite(pos).all(-1) & torch.isfinite(vel).all(-1)
        return torch.stack([speeds_squared(metric, pos, vel), finite.to(pos.dtype)], -1)

    parts = over_pairs(metric, "report", chunk, idx.numel(), t.shape[1], t)
    both = torch.cat(parts) if len(parts) > 1 else parts[0]
    sq, finite = both[..., 0], both[..., 1] > 0
    return sq, sq.clamp_min(0.0).sqrt(), invalid_squared_norms(sq, finite)


def _nodes(curve: Curve, factor: int = 1) -> tuple[Tensor, ...]:
    """:func:`~latentgeo.curves.reparam.arc_length_nodes` of the reported quadrature
    (``factor`` times its pieces in every span: ``2`` for its error estimate)."""
    spans = curve.breakpoints().shape[1] - 1
    per_span = max(REPORT_PIECES_PER_SPAN, math.ceil(REPORT_PIECES / spans))
    if spans == 1 and not isinstance(curve, LinearInControlPoints):  # never refined
        per_span = REPORT_PIECES_ONE_SPAN
    return arc_length_nodes(curve, min_pieces=1, nodes=REPORT_NODES, per_span=factor * per_span)


def quadrature_length(metric: Metric, curve: Curve, idx: Tensor, *, finer: bool = False) -> Tensor:
    """The reported (Gauss–Legendre) lengths ``(A,)`` of the curves ``idx``, alone
    (``finer``: on twice the pieces, whose difference estimates the quadrature's error)."""
    t, w = (v[idx] for v in _nodes(curve, 2 if finer else 1)[1:])
    speed = _quadrature(metric, curve, idx, curve.z0[idx], curve.z1[idx], t)[1]
    return (w * speed).sum(-1)


def report(metric: Metric, curve: Curve, idx: Tensor, z0: Tensor, z1: Tensor) -> Report:
    """Gauss–Legendre energies and lengths of the curves ``idx`` with end points ``z0``,
    ``z1`` ``(A, d)`` put in (so that gradients reach them); one metric evaluation at the
    quadrature times and the piece boundaries together."""
    u, t, w = (v[idx] for v in _nodes(curve))
    sq, speed, invalid = _quadrature(metric, curve, idx, z0, z1, torch.cat([t, u], 1))
    n = t.shape[1]
    return Report(
        u=u,
        w=w,
        energy=(w * sq[:, :n]).sum(-1),
        length=(w * speed[:, :n]).sum(-1),
        speed=speed[:, :n].detach(),
        node_speed=speed[:, n:].detach(),
        invalid=invalid,
    )


def _resolved(
    metric: Metric, curve: Curve, length: Tensor, status: Tensor
) -> tuple[Tensor, Tensor]:
    """``length`` ``(A,)`` of a group's curves, checked on twice the quadrature's pieces where
    the pair did not converge (a converged pair of a refined solve was checked as it
    settled): the optimiser can leave a curve whose speed varies between the nodes it
    sees (a new user's float64 FeatureMetric: 0.00065 reported, 1.91 by ``curve_length``),
    and a length that changes by more than :data:`UNRESOLVED_RTOL` is replaced by the
    larger. Returns the lengths and which were replaced ``(A,)`` bool."""
    rows = ((status != code(Status.CONVERGED)) & torch.isfinite(length)).nonzero()[:, 0]
    flags = torch.zeros_like(length, dtype=torch.bool)
    if rows.numel() > 0:
        with torch.no_grad():
            finer = quadrature_length(metric, curve, rows, finer=True)
        coarse = length[rows].detach()
        off = (finer - coarse).abs() > UNRESOLVED_RTOL * torch.maximum(finer, coarse)
        flags[rows] = off
        if bool(off.any()):
            length = length.clone()
            length[rows[off]] = torch.maximum(finer, coarse)[off].to(length.dtype)
    return length, flags


def assemble_result(
    metric: Metric,
    finished: list[Finished],
    z0: Tensor,
    z1: Tensor,
    status: Tensor,
    iterations: Tensor,
    *,
    reparametrize: bool,
    info: dict[str, object],
) -> GeodesicResult:
    """The result for the whole batch from its finished groups, in the batch's order.

    Each group's curves stop tracking gradients; lengths and energies are the
    reported quadrature on them (deterministic, differentiable in ``z0``,
    ``z1`` ``(B, d)``). ``status`` ``(B,)`` holds status codes; a pair whose
    length is not finite is not converged, and a pair whose curve meets a
    negative or non-finite squared norm has status ``invalid_metric`` and NaN
    length and energy.
    """
    parts: list[Curve] = []
    lengths, energies, invalids = [], [], []
    unresolved: list[Tensor] = []
    for group in finished:
        curve = group.curve
        curve.requires_grad_(False)  # the result is a fixed curve: it tracks no gradients
        rep = group.report
        if rep is None:
            every = torch.arange(curve.num_curves, device=z0.device)
            rep = report(metric, curve, every, z0[group.pairs], z1[group.pairs])
        energies.append(rep.energy)
        length, flags = _resolved(metric, curve, rep.length, status[group.pairs])
        lengths.append(length)
        unresolved.append(flags)
        invalids.append(rep.invalid)
        if reparametrize:
            curve = reparametrize_by_speeds(curve, rep.u, rep.w, rep.speed, rep.node_speed)
        parts.append(curve)
    order = torch.cat([group.pairs for group in finished])
    inverse = order.argsort()
    length, energy = torch.cat(lengths)[inverse], torch.cat(energies)[inverse]
    converged = status == code(Status.CONVERGED)
    status[~torch.isfinite(length) & converged] = code(Status.NON_FINITE)
    # a negative or non-finite squared norm on the curve: no length, whatever the optimiser said
    flags = torch.cat(unresolved)[inverse]
    if bool(flags.any()):  # (minimize_energy always gives it)
        info["unresolved_length"] = flags
    invalid = torch.cat(invalids)[inverse]
    status[invalid] = code(Status.INVALID_METRIC)
    length = torch.where(invalid, torch.nan, length)
    energy = torch.where(invalid, torch.nan, energy)
    index = [group.pairs for group in finished]
    return GeodesicResult(
        curve=parts[0] if len(parts) == 1 else CurveStack(parts, index),
        length=length,
        energy=energy,
        converged=status == code(Status.CONVERGED),
        iterations=iterations,
        status=statuses_from_codes(status),
        method="",
        info=info,
    )
