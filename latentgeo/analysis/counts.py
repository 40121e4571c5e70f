"""What converged: the counts every analysis result carries, and the warning below 90 %.

Every analysis result holds one :class:`~latentgeo.solvers.Status` per pair
and derives its counts from them through :class:`ConvergenceCounts`; its
means and tests are taken over the converged pairs unless the caller passed
``include_all=True``. :func:`converged_note` is the ``"converged k/n"`` printed
next to every figure, :func:`convergence_warning` the line a summary prints
when fewer than :data:`CONVERGED_SHARE` of the pairs converged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import ClassVar

from latentgeo._options import check_int
from latentgeo.solvers import Status

__all__ = [
    "CONVERGED_SHARE",
    "ConvergenceCounts",
    "converged_note",
    "convergence_warning",
    "status_counts",
]

#: Below this share of converged pairs a summary prints a ``WARNING:`` line.
CONVERGED_SHARE = 0.9


def status_counts(statuses: Iterable[Status | str]) -> dict[str, int]:
    """Number of pairs per status value (only those that occur, in the enum's order).

    Example:
        >>> status_counts(["max_iter", "converged", "converged"])
        {'converged': 2, 'max_iter': 1}
    """
    found = Counter(Status(s) for s in statuses)
    return {s.value: found[s] for s in Status if found[s]}


def _check_counts(converged: object, total: object) -> None:
    check_int(converged, "converged", minimum=0)
    check_int(total, "total", minimum=0)
    if converged > total:  # type: ignore[operator]
        raise ValueError(f"converged must be at most total={total}, got {converged}")


def converged_note(converged: int, total: int, what: str = "pairs") -> str:
    """``"converged k/n pairs"``, marked when fewer than 90 % converged.

    Example:
        >>> converged_note(27, 30), converged_note(26, 30)
        ('converged 27/30 pairs', 'converged 26/30 pairs (WARNING: < 90 % converged)')
    """
    _check_counts(converged, total)
    note = f"converged {converged}/{total} {what}"
    if total and converged < CONVERGED_SHARE * total:
        note += " (WARNING: < 90 % converged)"
    return note


def convergence_warning(converged: int, total: int, what: str = "pairs") -> str | None:
    """A line beginning ``"WARNING:"`` when fewer than 90 % of ``total`` converged, else ``None``.

    Example:
        >>> convergence_warning(0, 30)
        'WARNING: only 0/30 pairs converged (< 90 %)'
        >>> convergence_warning(29, 30) is None
        True
    """
    _check_counts(converged, total)
    if total and converged < CONVERGED_SHARE * total:
        return f"WARNING: only {converged}/{total} {what} converged (< 90 %)"
    return None


class ConvergenceCounts:
    """Mixin of a result with one :class:`~latentgeo.solvers.Status` per pair in the
    attribute named by ``pair_status_attr`` (``status`` unless a result says otherwise)."""

    pair_status_attr: ClassVar[str] = "status"

    @property
    def _pair_statuses(self) -> Sequence[Status]:
        statuses: Sequence[Status] = getattr(self, self.pair_status_attr)
        return statuses

    @property
    def num_pairs(self) -> int:
        """How many pairs the result holds."""
        return len(self._pair_statuses)

    @property
    def num_converged(self) -> int:
        """How many pairs converged."""
        return sum(1 for s in self._pair_statuses if s is Status.CONVERGED)

    @property
    def converged_fraction(self) -> float:
        """Share of the pairs that converged (``nan`` without pairs)."""
        return self.num_converged / self.num_pairs if self.num_pairs else float("nan")

    def status_counts(self) -> dict[str, int]:
        """Pairs per status value (:func:`status_counts`)."""
        return status_counts(self._pair_statuses)

    @property
    def converged_note(self) -> str:
        """``"converged k/n pairs"`` (:func:`converged_note`)."""
        return converged_note(self.num_converged, self.num_pairs)

    @property
    def warning(self) -> str | None:
        """The ``WARNING:`` line when fewer than 90 % converged (:func:`convergence_warning`)."""
        return convergence_warning(self.num_converged, self.num_pairs)
