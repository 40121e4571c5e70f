"""One vocabulary of outcomes for every solver, result and analysis: :class:`Status`.

A result holds one :class:`Status` per pair (or per point). ``Status`` is a
``str`` enum, so ``result.status[0] == "converged"`` holds, and statuses print,
compare and serialise as their short names. Free text (scipy's message, the
graph's component numbers) goes to a result's ``message``, never into the
status.

``CONVERGED`` means that the tolerance the solver states was met, nothing
less: a spent budget, a stalled line search or a pair on which no solver ran
each has its own member. :meth:`Status.combine` says which of two outcomes
wins when a pair went through two stages (a graph start, then the energy
solver), and :func:`raise_if_failed` turns failures into an exception for
callers that want one (``throw=True``).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from latentgeo.exceptions import LatentgeoError

__all__ = [
    "SolverError",
    "Status",
    "count_converged",
    "failure_summary",
    "raise_if_failed",
    "statuses_from_codes",
]


class Status(str, enum.Enum):
    """What happened to one pair (or point) in a solver or an analysis.

    Members, by the value that prints:

    * ``converged``: the stated tolerance holds.
    * ``max_iter``: the iteration budget ran out first (raise ``max_iter``).
    * ``max_steps``: an integrator's step budget ran out before the end time.
    * ``line_search_failed``: no step along the search direction decreased the
      objective (stalled; the best iterate is kept).
    * ``nonfinite``: NaN or Inf met (energy, state or residual).
    * ``step_underflow``: the adaptive step size fell below its minimum.
    * ``integration_error``: the integrator's own error estimate exceeds the
      requested tolerance, so the answer cannot be claimed to meet it.
    * ``invalid_metric``: a negative or non-finite squared norm (the metric is
      not positive semi-definite there).
    * ``unreachable``: no path joins the end points (graph components).
    * ``not_solved``: no solver ran on this pair (an initialisation reported
      as is); never a success.
    * ``failed``: another failure, explained in the result's ``message``.
    * ``not_minimizing``: a geodesic joins the end points to the tolerance, but a
      shorter curve is known to join them (the geodesic passed a conjugate
      point): it is not the log map nor a shortest path.

    Example:
        >>> Status.CONVERGED == "converged", Status("max_iter") is Status.MAX_ITERATIONS
        (True, True)
        >>> Status.combine(Status.CONVERGED, Status.UNREACHABLE)
        Status.UNREACHABLE
        >>> Status.MAX_ITERATIONS.hint
        'the iteration budget ran out: raise max_iter or loosen the tolerance'
    """

    CONVERGED = "converged"
    MAX_ITERATIONS = "max_iter"
    MAX_STEPS = "max_steps"
    LINE_SEARCH_FAILED = "line_search_failed"
    NON_FINITE = "nonfinite"
    STEP_UNDERFLOW = "step_underflow"
    INTEGRATION_ERROR = "integration_error"
    INVALID_METRIC = "invalid_metric"
    UNREACHABLE = "unreachable"
    NOT_SOLVED = "not_solved"
    FAILED = "failed"
    NOT_MINIMIZING = "not_minimizing"  # last: codes are member indices

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Status.{self.name}"

    @property
    def ok(self) -> bool:
        """Whether this is a success (only ``CONVERGED`` is)."""
        return self is Status.CONVERGED

    @property
    def hint(self) -> str:
        """What the outcome means and what to try."""
        return _HINTS[self]

    @staticmethod
    def combine(first: Status, second: Status) -> Status:
        """The status of a pair that went through two stages with these outcomes.

        The more severe wins (order: ``invalid_metric``, ``unreachable``,
        ``nonfinite``, ``failed``, ``not_solved``, ``not_minimizing`` (a wrong
        answer, not an unproven one), ``step_underflow``, ``integration_error``,
        ``max_steps``, ``line_search_failed``, ``max_iter``, ``converged``); two
        successes give a success.
        """
        return first if _SEVERITY[first] >= _SEVERITY[second] else second


_HINTS = {
    Status.CONVERGED: "the stated tolerance holds",
    Status.MAX_ITERATIONS: "the iteration budget ran out: raise max_iter or loosen the tolerance",
    Status.MAX_STEPS: "the integrator's step budget ran out: raise max_steps or loosen rtol/atol",
    Status.LINE_SEARCH_FAILED: (
        "no step decreased the objective (stalled): try another initialisation "
        "(method='graph') or a looser tolerance"
    ),
    Status.NON_FINITE: "NaN or Inf met: the metric is singular or the curve diverged",
    Status.STEP_UNDERFLOW: (
        "the adaptive step size fell below its minimum (a stiff or singular ODE, or a "
        "solution that blows up in finite time, such as a geodesic leaving the latent chart)"
    ),
    Status.INTEGRATION_ERROR: (
        "the integration error exceeds the requested tolerance: tighten the integrator's "
        "rtol/atol or ask for a looser tolerance"
    ),
    Status.INVALID_METRIC: (
        "a negative or non-finite squared norm: the metric is not positive semi-definite "
        "there (check it with Metric.check)"
    ),
    Status.UNREACHABLE: "no path joins the end points (different graph components)",
    Status.NOT_SOLVED: "no solver ran on this pair: the value is an initialisation",
    Status.FAILED: "the solver failed: see the result's message",
    Status.NOT_MINIMIZING: (
        "a geodesic, but longer than a curve known to join the end points (it passed a "
        "conjugate point): start nearer the shortest one (init='energy')"
    ),
}

_SEVERITY = {
    Status.CONVERGED: 0,
    Status.MAX_ITERATIONS: 1,
    Status.LINE_SEARCH_FAILED: 2,
    Status.MAX_STEPS: 3,
    Status.INTEGRATION_ERROR: 4,
    Status.STEP_UNDERFLOW: 5,
    Status.NOT_MINIMIZING: 6,
    Status.NOT_SOLVED: 7,
    Status.FAILED: 8,
    Status.NON_FINITE: 9,
    Status.UNREACHABLE: 10,
    Status.INVALID_METRIC: 11,
}

#: the members in a fixed order: ``CODES[i]`` is the status of integer code ``i``
CODES: tuple[Status, ...] = tuple(Status)


def statuses_from_codes(codes: Tensor | Sequence[int]) -> list[Status]:
    """Per-pair statuses from integer codes (``Status`` member ``i`` is ``CODES[i]``).

    Solvers keep codes in a ``(B,)`` integer tensor on the device while they
    run and turn them into members at the end.

    Example:
        >>> statuses_from_codes(torch.tensor([0, 1]))
        [Status.CONVERGED, Status.MAX_ITERATIONS]
    """
    values = codes.tolist() if isinstance(codes, Tensor) else list(codes)
    return [CODES[int(c)] for c in values]


def code(status: Status) -> int:
    """The integer code of a member (its index in :data:`CODES`)."""
    return CODES.index(status)


def count_converged(statuses: Iterable[Status | str]) -> int:
    """How many of ``statuses`` are ``converged``."""
    return sum(1 for s in statuses if Status(s) is Status.CONVERGED)


def failure_summary(statuses: Iterable[Status | str]) -> str:
    """``"max_iter 3, nonfinite 1"``: how many of ``statuses`` failed, per status, in the
    enum's order (``""`` when all converged).

    Example:
        >>> failure_summary(["nonfinite", "converged", "max_iter", "max_iter"])
        'max_iter 2, nonfinite 1'
    """
    found = Counter(Status(s) for s in statuses)
    return ", ".join(f"{s} {found[s]}" for s in Status if s is not Status.CONVERGED and found[s])


class SolverError(LatentgeoError, RuntimeError):
    """Raised when some pair of a result failed and the caller asked for an exception.

    Attributes:
        result: the whole result, with its per-pair statuses.
    """

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        self.result = result


def raise_if_failed(
    statuses: Sequence[Status | str],
    result: object,
    error: type[SolverError] = SolverError,
    *,
    what: str = "pairs",
    messages: Sequence[str] | None = None,
) -> None:
    """Raise ``error`` naming the first failures unless every status is ``converged``.

    Args:
        statuses: one status per pair.
        result: the result the error carries.
        error: the :class:`SolverError` subclass to raise.
        what: the plural noun in the message.
        messages: optional per-pair detail shown next to the status.

    Raises:
        SolverError: (the given subclass) if any status is not ``converged``.
    """
    failed = [i for i, s in enumerate(statuses) if Status(s) is not Status.CONVERGED]
    if not failed:
        return
    shown = []
    for i in failed[:5]:
        status = Status(statuses[i])
        detail = messages[i] if messages is not None and messages[i] else status.hint
        shown.append(f"{what[:-1] if what.endswith('s') else what} {i}: {status.value} ({detail})")
    raise error(f"{len(failed)} of {len(statuses)} {what} failed: " + "; ".join(shown), result)


def converged_mask(statuses: Sequence[Status | str], device: torch.device | None = None) -> Tensor:
    """A ``(B,)`` bool tensor: which statuses are ``converged``."""
    return torch.tensor([Status(s) is Status.CONVERGED for s in statuses], device=device)
