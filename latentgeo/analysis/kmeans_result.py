"""What a clustering returns: :class:`KMeansResult`, and :func:`converged_points`.

Split from :mod:`latentgeo.analysis.kmeans` (which re-exports both): the result
and its convergence counts are one thing, the algorithms another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from latentgeo.analysis.counts import ConvergenceCounts, converged_note, convergence_warning
from latentgeo.solvers import Status
from latentgeo.solvers.status import count_converged

__all__ = ["KMeansResult", "converged_points"]


@dataclass
class KMeansResult(ConvergenceCounts):
    """A clustering.

    Attributes:
        labels: cluster of each point, shape ``(N,)`` (int64).
        medoids: index of each cluster's medoid, shape ``(k,)``.
        cost: sum of squared distances of the points to their medoids.
        iterations: iterations of the best restart (with ``centres="means"``: of the
            k-means refinement after the k-medoids start).
        distances: the ``(N, N)`` distance matrix used.
        centres: the cluster centres ``(k, d)``: the Fréchet means with
            ``centres="means"``, else ``None`` (the medoids are ``z[medoids]``).
        centre_distances: geodesic distances of the points to the centres, ``(N, k)``
            (``centres="means"`` only), the last assignment's.
        centre_status: the geodesic solver's :class:`~latentgeo.solvers.Status` of each
            of those ``N·k`` geodesics, row-major (point ``i``, centre ``c`` at ``i·k + c``;
            ``centres="means"`` only; empty otherwise). A distance that did not converge
            is its curve's length, an upper bound.
        status: per cluster, the Fréchet mean's :class:`~latentgeo.solvers.Status`
            (``centres="means"`` only; empty otherwise).
        pair_status: the geodesic solver's :class:`~latentgeo.solvers.Status` of every
            pair ``i < j`` of ``distances`` (order of ``torch.triu_indices``); empty
            for :func:`kmedoids` on a given matrix without statuses.
        used: ``(N,)`` bool, the points the clustering was fitted on: all of them with
            ``include_all``, else those whose pairs among themselves all converged
            (:func:`converged_points`); the other points are assigned to their nearest
            medoid afterwards. ``cost`` is over the used points.
        include_all: whether pairs that did not converge entered the fit.
        settled: whether the alternation stopped because nothing changed (the best
            restart's k-medoids; with ``centres="means"``, the k-means iterations),
            not because it reached ``max_iter``.
    """

    labels: Tensor
    medoids: Tensor
    cost: float
    iterations: int
    distances: Tensor
    centres: Tensor | None = None
    centre_distances: Tensor | None = None
    status: list[Status] = field(default_factory=list)
    pair_status: list[Status] = field(default_factory=list)
    used: Tensor | None = None
    include_all: bool = False
    centre_status: list[Status] = field(default_factory=list)
    settled: bool = True

    pair_status_attr: ClassVar[str] = "pair_status"

    def _counts(self) -> list[tuple[int, int, str]]:
        """(converged, total, what) of the distance matrix, then, with ``centres="means"``,
        of the point–centre geodesics and the Fréchet means."""
        counts = [(self.num_converged, self.num_pairs, "pairs")]
        for statuses, what in ((self.centre_status, "point-centre geodesics"),
                               (self.status, "Fréchet means")):  # fmt: skip
            if statuses:
                counts.append((count_converged(statuses), len(statuses), what))
        return counts

    @property
    def converged_note(self) -> str:
        """``"converged k/n pairs"``; with ``centres="means"`` the point–centre geodesics'
        and the Fréchet means' counts follow, and an unsettled clustering says so."""
        notes = [converged_note(*c) for c in self._counts()]
        return "; ".join(notes + ([] if self.settled else [self._unsettled]))

    @property
    def warning(self) -> str | None:
        """The ``WARNING:`` lines of every count below 90 % and of an unsettled
        clustering, or ``None``."""
        lines = [w for c in self._counts() if (w := convergence_warning(*c)) is not None]
        lines += [] if self.settled else [f"WARNING: {self._unsettled}"]
        return "\n".join(lines) or None

    @property
    def _unsettled(self) -> str:
        return f"the assignment still changed after {self.iterations} iterations (max_iter)"

    @property
    def num_used(self) -> int:
        """How many points the clustering was fitted on."""
        return int(self.labels.numel() if self.used is None else self.used.sum())


def converged_points(converged: Tensor) -> Tensor:
    """The points to keep so that every pair among them converged (greedy).

    Repeatedly sets aside the point with the most non-converged pairs (the lowest
    index among ties) until none is left among the rest.

    Args:
        converged: ``(N, N)`` bool, symmetric (the diagonal is ignored).

    Returns:
        ``(N,)`` bool: the points kept.

    Example:
        >>> ok = torch.ones(4, 4, dtype=torch.bool)
        >>> ok[0, 2] = ok[2, 0] = ok[1, 2] = ok[2, 1] = False
        >>> converged_points(ok).tolist()
        [True, True, False, True]
    """
    if converged.ndim != 2 or converged.shape[0] != converged.shape[1]:
        raise ValueError(f"converged must have shape (N, N), got {tuple(converged.shape)}")
    bad = ~converged.detach().to("cpu", torch.bool)
    bad = bad | bad.T
    bad.fill_diagonal_(False)
    keep = torch.ones(bad.shape[0], dtype=torch.bool)
    while True:
        counts = (bad & keep[None] & keep[:, None]).sum(1)
        if counts.numel() == 0 or int(counts.max()) == 0:
            return keep
        keep[int(counts.argmax())] = False
