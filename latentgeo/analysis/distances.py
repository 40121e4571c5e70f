"""Geodesic distances for many pairs at once, in bounded memory.

Distances are the lengths of the curves found by
:func:`latentgeo.solvers.connecting_geodesic`. Pairs are solved in chunks of
``chunk_size`` (one batched solve per chunk), so memory stays bounded however
many pairs there are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from latentgeo._options import check_optional_int
from latentgeo._validation import check_same_shape
from latentgeo.analysis.counts import ConvergenceCounts
from latentgeo.exceptions import NumericsWarning, warn
from latentgeo.metrics import Metric, MetricLike, as_metric
from latentgeo.solvers import GeodesicMethod, GeodesicResult, Status, connecting_geodesic
from latentgeo.solvers.status import failure_summary

__all__ = [
    "PairwiseDistances",
    "geodesic_distances",
    "iter_geodesics",
    "lengths_and_status",
    "pairwise_geodesic_distances",
    "pairwise_geodesics",
    "round_robin",
]


def iter_geodesics(
    metric_or_decoder: MetricLike,
    z_a: Tensor,
    z_b: Tensor,
    *,
    chunk_size: int | None = 256,
    progress: bool = False,
    desc: str = "geodesics",
    method: str | GeodesicMethod = "spline",
    **solver_options: Any,
) -> Iterator[tuple[slice, GeodesicResult]]:
    """Solve pairs ``(z_a[i], z_b[i])`` chunk by chunk.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z_a: start points, shape ``(P, d)``.
        z_b: end points, shape ``(P, d)``.
        chunk_size: pairs per batched solve (``None``: all at once).
        progress: show a progress bar (tqdm, on stderr).
        desc: progress-bar label.
        method: the solver method of :func:`~latentgeo.solvers.connecting_geodesic`.
        **solver_options: passed to the solver.

    Yields:
        ``(rows, result)``: the slice of pairs solved and their :class:`GeodesicResult`.
    """
    check_optional_int(chunk_size, "chunk_size")
    metric = as_metric(metric_or_decoder)
    z_a = metric.validated_points(z_a, "z_a")
    z_b = metric.validated_points(z_b, "z_b")
    if z_a.ndim != 2:
        raise ValueError(f"z_a must have shape (P, d), got {tuple(z_a.shape)}")
    check_same_shape(z_a, z_b, "z_a", "z_b")
    total = z_a.shape[0]
    step = total if chunk_size is None else chunk_size
    with tqdm(total=total, desc=desc, unit="pair", disable=not progress, leave=False) as bar:
        for start in range(0, total, step):
            rows = slice(start, min(start + step, total))
            result = connecting_geodesic(
                metric, z_a[rows], z_b[rows], method=method, **solver_options
            )
            bar.update(rows.stop - rows.start)
            yield rows, result


def geodesic_distances(
    metric_or_decoder: MetricLike,
    z_a: Tensor,
    z_b: Tensor,
    *,
    chunk_size: int | None = 256,
    progress: bool = False,
    method: str | GeodesicMethod = "spline",
    **solver_options: Any,
) -> Tensor:
    """Geodesic distances between paired points ``z_a[i]`` and ``z_b[i]``.

    A pair whose geodesic did not converge keeps the length of the curve found (an
    upper bound of the distance), and the call says how many with a
    :class:`~latentgeo.exceptions.NumericsWarning`; :func:`pairwise_geodesics` and
    :func:`~latentgeo.solvers.connecting_geodesic` give each pair's status.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z_a: shape ``(P, d)``.
        z_b: shape ``(P, d)``.
        chunk_size: pairs per batched solve (``None``: all at once).
        progress: show a progress bar.
        method: solver method or solver object of
            :func:`~latentgeo.solvers.connecting_geodesic` (default ``"spline"``).
        **solver_options: passed to :func:`~latentgeo.solvers.connecting_geodesic`
            (``memory_budget=`` among them: the bytes each chunk's solve may use).

    Returns:
        Detached lengths of shape ``(P,)``, in ``z_a``'s dtype and device.

    Example:
        >>> from latentgeo.testing import LinearMap
        >>> lin = LinearMap(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
        >>> d = geodesic_distances(lin, torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        >>> d.round(decimals=3)
        tensor([2., 1.])
    """
    lengths, status = lengths_and_status(
        metric_or_decoder, z_a, z_b, chunk_size=chunk_size, progress=progress, method=method,
        **solver_options,
    )  # fmt: skip
    _warn_unconverged("geodesic_distances", status)
    return lengths


def lengths_and_status(
    metric_or_decoder: MetricLike, z_a: Tensor, z_b: Tensor, **options: Any
) -> tuple[Tensor, list[Status]]:
    """:func:`geodesic_distances` (same arguments) with each pair's status, and no warning
    (for callers that report the statuses themselves).

    Returns:
        Detached lengths ``(P,)`` and one :class:`~latentgeo.solvers.Status` per pair.
    """
    lengths, status = [], []
    for _, res in iter_geodesics(metric_or_decoder, z_a, z_b, **options):
        lengths.append(res.length.detach())
        status.extend(res.status)
    return torch.cat(lengths), status


def _warn_unconverged(caller: str, status: list[Status]) -> None:
    """Say how many of ``status`` are not converged, and why, once per call."""
    failed = [s for s in status if s != Status.CONVERGED]
    if not failed:
        return
    why = failure_summary(failed)
    warn(
        NumericsWarning(
            f"{caller}: {len(failed)} of {len(status)} geodesics did not converge ({why}); "
            "their distances are the lengths of the curves found (upper bounds). "
            "pairwise_geodesics or connecting_geodesic give each pair's status"
        )
    )


def _point_set(metric_or_decoder: MetricLike, z: object) -> tuple[Metric, Tensor]:
    """The metric, and ``z`` validated as one set of points ``(N, d)``."""
    metric = as_metric(metric_or_decoder)
    z = metric.validated_points(z, "z")
    if z.ndim != 2:
        raise ValueError(f"z must have shape (N, d), got {tuple(z.shape)}")
    return metric, z


def pairwise_geodesic_distances(
    metric_or_decoder: MetricLike,
    z: Tensor,
    *,
    chunk_size: int | None = 256,
    progress: bool = False,
    method: str | GeodesicMethod = "spline",
    **solver_options: Any,
) -> Tensor:
    """The symmetric matrix of geodesic distances between all points.

    Only the ``N (N − 1) / 2`` pairs ``i < j`` are solved, ``chunk_size`` at a
    time; memory is that of one chunk's curves plus the ``(N, N)`` result. Pairs
    whose geodesic did not converge are counted in a
    :class:`~latentgeo.exceptions.NumericsWarning` (see :func:`geodesic_distances`);
    :func:`pairwise_geodesics` gives each pair's status.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points, shape ``(N, d)``.
        chunk_size: pairs per batched solve (``None``: all at once).
        progress: show a progress bar.
        method: solver method or solver object of
            :func:`~latentgeo.solvers.connecting_geodesic` (default ``"spline"``).
        **solver_options: passed to :func:`~latentgeo.solvers.connecting_geodesic`
            (``memory_budget=`` among them: the bytes each chunk's solve may use).

    Returns:
        Tensor of shape ``(N, N)``: symmetric, zero diagonal, in ``z``'s dtype and device.

    Example:
        >>> from latentgeo.testing import LinearMap
        >>> z = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
        >>> pairwise_geodesic_distances(LinearMap(torch.eye(2)), z).round(decimals=3)
        tensor([[0., 3., 4.],
                [3., 0., 5.],
                [4., 5., 0.]])
    """
    check_optional_int(chunk_size, "chunk_size")
    metric, z = _point_set(metric_or_decoder, z)
    n = z.shape[0]
    out = torch.zeros(n, n, dtype=z.dtype, device=z.device)
    if n < 2:
        return out
    i, j = torch.triu_indices(n, n, offset=1, device=z.device)
    dist, status = lengths_and_status(
        metric, z[i], z[j], chunk_size=chunk_size, progress=progress, method=method,
        **solver_options,
    )  # fmt: skip
    _warn_unconverged("pairwise_geodesic_distances", status)
    dist = dist.to(z.dtype)
    out[i, j] = dist
    out[j, i] = dist
    return out


@dataclass
class PairwiseDistances(ConvergenceCounts):
    """All-pairs geodesic distances with what the solver said about each pair.

    Attributes:
        distances: ``(N, N)`` symmetric, zero diagonal.
        converged: ``(N, N)`` bool, symmetric; the diagonal is ``True``.
        status: one :class:`~latentgeo.solvers.Status` per pair ``i < j``, in the
            order of ``torch.triu_indices(N, N, offset=1)``.

    The counts (``num_pairs``, ``num_converged``, ``converged_fraction``,
    ``status_counts()``, ``warning``) are those of the pairs ``i < j``
    (:class:`~latentgeo.analysis.counts.ConvergenceCounts`).
    """

    distances: Tensor
    converged: Tensor
    status: list[Status]


def round_robin(n: int) -> list[Tensor]:
    """Rounds of disjoint pairs that together hold every pair ``i < j`` of ``range(n)`` once.

    The circle method of round-robin tournaments: ``n − 1`` rounds (``n`` for odd
    ``n``) in which no index appears twice: for a solver whose work for a pair
    must not meet another pair's end points in one call (latentgeo's
    ``method="graph"`` keeps each pair's graph to itself since 2026-12, so it
    no longer needs this).

    Returns:
        One ``(n_r, 2)`` long tensor per round, each row ``(i, j)`` with ``i < j``.

    Example:
        >>> for r in round_robin(4):
        ...     print(*map(tuple, r.tolist()))
        (0, 3) (1, 2)
        (0, 2) (1, 3)
        (0, 1) (2, 3)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    m = n + n % 2
    ring = torch.arange(m)
    rounds = []
    for _ in range(m - 1):
        a, b = ring[: m // 2], ring.flip(0)[: m // 2]
        pairs = torch.stack([torch.minimum(a, b), torch.maximum(a, b)], -1)
        rounds.append(pairs[(pairs < n).all(-1)])
        ring = torch.cat([ring[:1], ring[-1:], ring[1:-1]])
    return rounds


def pairwise_geodesics(
    metric_or_decoder: MetricLike,
    z: Tensor,
    *,
    chunk_size: int | None = 256,
    progress: bool = False,
    max_repeats: int | None = None,
    method: str | GeodesicMethod = "spline",
    **solver_options: Any,
) -> PairwiseDistances:
    """:func:`pairwise_geodesic_distances` with the per-pair statuses and converged counts.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points, shape ``(N, d)``.
        chunk_size: pairs per batched solve (``None``: all at once).
        progress: show a progress bar.
        max_repeats: at most this many pairs of one solve share a point: the pairs
            are solved ``max_repeats`` :func:`round_robin` rounds at a time
            (``chunk_size`` is then unused). ``None``: no limit. (``method="graph"``
            once needed it, when its graph held every pair's end points; each pair's
            graph is its own now, so its results do not depend on how pairs are batched.)
        method: solver method or solver object of
            :func:`~latentgeo.solvers.connecting_geodesic` (default ``"spline"``).
        **solver_options: passed to :func:`~latentgeo.solvers.connecting_geodesic`.

    Returns:
        A :class:`PairwiseDistances`; ``status`` in the order of ``torch.triu_indices``.

    Example:
        >>> from latentgeo.testing import LinearMap
        >>> z = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
        >>> table = pairwise_geodesics(LinearMap(torch.eye(2)), z)
        >>> table.num_converged, table.num_pairs, float(table.distances[1, 2])
        (3, 3, 5.0)
    """
    check_optional_int(chunk_size, "chunk_size")
    check_optional_int(max_repeats, "max_repeats")
    metric, z = _point_set(metric_or_decoder, z)
    n = z.shape[0]
    out = torch.zeros(n, n, dtype=z.dtype, device=z.device)
    ok = torch.eye(n, dtype=torch.bool, device=z.device)
    codes = torch.full((n, n), -1, dtype=torch.long)
    if n < 2:
        return PairwiseDistances(out, ok, [])
    if max_repeats is not None:
        if isinstance(max_repeats, bool) or not isinstance(max_repeats, int) or max_repeats < 1:
            raise ValueError(f"max_repeats must be None or an int >= 1, got {max_repeats!r}")
        rounds = round_robin(n)
        batches = [
            torch.cat(rounds[k : k + max_repeats]).to(z.device)
            for k in range(0, len(rounds), max_repeats)
        ]
    else:
        i, j = torch.triu_indices(n, n, offset=1, device=z.device)
        step = i.numel() if chunk_size is None else chunk_size
        batches = [torch.stack([i, j], -1)[k : k + step] for k in range(0, i.numel(), step)]
    members = list(Status)
    with tqdm(
        total=n * (n - 1) // 2, desc="geodesics", unit="pair", disable=not progress, leave=False
    ) as bar:
        for pairs in batches:
            a, b = pairs[:, 0], pairs[:, 1]
            res = connecting_geodesic(metric, z[a], z[b], method=method, **solver_options)
            out[a, b] = out[b, a] = res.length.detach().to(z.dtype)
            ok[a, b] = ok[b, a] = res.converged.to(z.device)
            codes[a.cpu(), b.cpu()] = torch.tensor([members.index(st) for st in res.status])
            bar.update(a.numel())
    i, j = torch.triu_indices(n, n, offset=1)
    return PairwiseDistances(out, ok, [members[c] for c in codes[i, j].tolist()])
