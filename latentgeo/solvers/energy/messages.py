"""The messages of pairs whose length is not shown to hold, with the evidence: the last
refinement's length change, or the quadrature's difference on twice its pieces."""

from __future__ import annotations

import math

from torch import Tensor

from latentgeo.solvers.energy.options import EnergyOptions
from latentgeo.solvers.energy.refinement import Levels
from latentgeo.solvers.energy.report import UNRESOLVED_RTOL
from latentgeo.solvers.result import GeodesicResult
from latentgeo.solvers.status import Status

__all__ = ["refinement_messages", "unsettled_message", "with_unresolved_lengths"]


def unsettled_message(
    change: float, max_knots: int, refine_tol: float, quadrature: float = 0.0
) -> str:
    """The message of a pair whose knots reached ``max_knots`` before its length settled:
    its last refinement's relative length change, or, where that was within
    ``refine_tol / 2``, its quadrature's relative difference on twice the pieces (the
    quadrature's error is up to twice it): the evidence that ``refine_tol`` is not
    shown to hold."""
    start = f"max_knots={max_knots} reached before the length settled: the last refinement "
    end = "; raise max_knots (or refine_tol)"
    if not change <= refine_tol / 2:
        return (
            f"{start}changed it by {change:.1e} relative, more than refine_tol / 2 = "
            f"{refine_tol / 2:g}{end}"
        )
    return (
        f"{start}changed it by {change:.1e} relative, within refine_tol / 2, but its "
        f"quadrature on twice the pieces differs by {quadrature:.1e} relative, more than "
        f"refine_tol / 4 = {refine_tol / 4:g}{end}"
    )


def refinement_messages(
    levels: Levels, result: GeodesicResult, opts: EnergyOptions, coincident: list[bool]
) -> list[str]:
    """Per pair, why ``refine_tol`` is not shown to hold: unsettled at ``max_knots``
    (``max_iter``), or converged at ``tol`` alone, never compared across a refinement
    (a start with too many knots for one within ``max_knots``); else ``""``."""
    b = len(result.status)
    change = [math.nan] * b if levels.change is None else levels.change.tolist()
    quadrature = [math.nan] * b if levels.quadrature is None else levels.quadrature.tolist()
    refined = [False] * b if levels.refined is None else levels.refined.tolist()
    messages = []
    rows = zip(change, quadrature, result.status, refined, coincident, strict=True)
    for c, q, s, r, same in rows:
        if not math.isnan(c) and s is Status.MAX_ITERATIONS:
            messages.append(unsettled_message(c, opts.max_knots, opts.refine_tol, q))
        elif s is Status.CONVERGED and not r and opts.refine_tol > 0 and not same:
            messages.append(
                f"converged at tol alone: max_knots={opts.max_knots} leaves no room for a "
                "full refinement of the start's knots, so the length was not compared "
                "across one (refine_tol not checked); raise max_knots to check it"
            )
        else:
            messages.append("")
    return messages


def with_unresolved_lengths(messages: list[str], unresolved: object) -> list[str]:
    """``messages`` (one per pair, or none) with the pairs whose length the quadrature did
    not resolve told so (``unresolved``: ``(B,)`` bool, see
    :func:`~latentgeo.solvers.energy.report.assemble_result`)."""
    assert isinstance(unresolved, Tensor)
    flags = unresolved.tolist()
    messages = messages or [""] * len(flags)
    note = (
        "its length is not resolved by the quadrature (it changes by more than "
        f"{UNRESOLVED_RTOL:g} relative on twice the pieces; the larger is reported): the "
        "curve is not a geodesic and its length is uncertain (check it with "
        "curve_length(metric, result.curve, num_points=...))"
    )
    return [
        f"{m}; {note}" if m and f else note if f else m
        for m, f in zip(messages, flags, strict=True)
    ]
