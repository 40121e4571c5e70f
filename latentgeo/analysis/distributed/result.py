"""What a distance-matrix job returns (:class:`DistanceMatrixResult`) and reports while it runs."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from latentgeo.analysis.counts import ConvergenceCounts, converged_note
from latentgeo.solvers import Status

__all__ = ["DistanceMatrixResult", "JobProgress"]


@dataclass(frozen=True)
class JobProgress:
    """Where a running job stands (passed to the ``progress`` callback after each tile).

    Attributes:
        tiles_done: finished tiles, including those found in the output folder.
        tiles_failed: tiles that failed in this run (after their retries).
        tiles_total: tiles of the job.
        pairs_done: pairs solved in this run.
        pairs_left: pairs not solved yet.
        elapsed: seconds since this run submitted its first tile.
    """

    tiles_done: int
    tiles_failed: int
    tiles_total: int
    pairs_done: int
    pairs_left: int
    elapsed: float

    @property
    def pairs_per_second(self) -> float:
        """Throughput of this run so far (0 before the first tile)."""
        return self.pairs_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float:
        """Seconds left at the current throughput (``inf`` before the first tile)."""
        rate = self.pairs_per_second
        return self.pairs_left / rate if rate > 0 else math.inf


@dataclass
class DistanceMatrixResult(ConvergenceCounts):
    """Geodesic distances between points, with what happened to every pair.

    The pairs are those the job solved: ``i < j`` of one set of points, every
    ``(i, j)`` of two sets, or the k-nearest-neighbour edges in sparse mode.

    Attributes:
        matrix: distances ``(N_a, N_b)``: geodesic lengths of the solved pairs
            (symmetric with a zero diagonal for one set of points; in sparse
            mode completed by shortest paths through the graph of the solved
            edges, ``inf`` between unconnected points); ``NaN`` for the pairs
            of failed tiles of a dense job.
        i: row index of each pair ``(P,)``.
        j: column index of each pair ``(P,)``.
        length: geodesic length of each pair ``(P,)`` (``NaN`` if its tile failed).
        line_length: Riemannian length of the straight segment ``(P,)``.
        status: one :class:`~latentgeo.solvers.Status` per pair
            (``failed`` for the pairs of failed tiles).
        iterations: solver iterations per pair ``(P,)`` (``-1`` for failed tiles).
        failed_tiles: tile number → the error text of its last try.
        tiles_total: tiles of the job.
        tiles_computed: tiles solved in this run.
        tiles_resumed: tiles read back from the output folder.
        neighbours: ``k`` of sparse mode, ``None`` for a dense job.
    """

    matrix: Tensor
    i: Tensor
    j: Tensor
    length: Tensor
    line_length: Tensor
    status: list[Status]
    iterations: Tensor
    failed_tiles: dict[int, str] = field(default_factory=dict)
    tiles_total: int = 0
    tiles_computed: int = 0
    tiles_resumed: int = 0
    neighbours: int | None = None

    @property
    def converged(self) -> Tensor:
        """``(P,)`` bool: which pairs converged."""
        return torch.tensor([s is Status.CONVERGED for s in self.status], dtype=torch.bool)

    def counts(self) -> dict[str, int]:
        """Number of pairs per status value (only the statuses that occur)."""
        return {s.value: n for s, n in sorted(Counter(self.status).items(), key=lambda x: x[0])}

    def summary(self, *, include_all: bool = False) -> dict[str, Any]:
        """A JSON-able summary: sizes, counts per status, tiles, failed tiles, length statistics.

        Args:
            include_all: take the length statistics over every pair with a finite
                length, not only the converged ones (the default).

        ``"not_converged"`` counts every pair that did not converge, whatever its
        status (``"failed"``, its former name, is kept with the same value; the
        status ``failed`` in ``"status_counts"`` is only the pairs of failed tiles).
        The ``"converged_note"`` (``"converged k/n pairs"``) goes next to every
        figure; ``"warning"`` is a line beginning ``WARNING:`` when fewer than
        90 % of the pairs converged (else ``None``).
        """
        ok = torch.isfinite(self.length) & torch.isfinite(self.line_length)
        if not include_all:
            ok &= self.converged.to(ok.device)
        finite = self.length[ok]
        ratio = finite / self.line_length[ok].clamp_min(torch.finfo(self.length.dtype).tiny)
        return {
            "shape": list(self.matrix.shape),
            "num_pairs": self.num_pairs,
            "converged": self.num_converged,
            "not_converged": self.num_pairs - self.num_converged,
            "failed": self.num_pairs - self.num_converged,  # (the former name of not_converged)
            "status_counts": self.counts(),
            "tiles": {
                "total": self.tiles_total,
                "computed": self.tiles_computed,
                "resumed": self.tiles_resumed,
                "failed": len(self.failed_tiles),
            },
            "failed_tiles": {str(k): v for k, v in sorted(self.failed_tiles.items())},
            "neighbours": self.neighbours,
            "mean_length": float(finite.mean()) if finite.numel() else None,
            "mean_length_over_straight_line": float(ratio.mean()) if ratio.numel() else None,
            "include_all": include_all,
            "pairs_used": int(ok.sum()),
            "converged_note": converged_note(self.num_converged, self.num_pairs),
            "warning": self.warning,
        }
