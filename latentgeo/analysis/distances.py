"""Geodesic distances for many pairs at once, in bounded memory.

Distances are the lengths of the curves found by
:func:`latentgeo.solvers.connecting_geodesic`. Pairs are solved in chunks of
``chunk_size`` (one batched solve per chunk), so memory stays bounded however
many pairs there are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from latentgeo._validation import check_points, check_same_shape
from latentgeo.metrics import MetricLike, as_metric
from latentgeo.solvers import GeodesicResult, connecting_geodesic

__all__ = ["geodesic_distances", "iter_geodesics", "pairwise_geodesic_distances"]


def iter_geodesics(
    metric_or_decoder: MetricLike,
    z_a: Tensor,
    z_b: Tensor,
    *,
    chunk_size: int | None = 256,
    progress: bool = False,
    desc: str = "geodesics",
    method: str = "spline",
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
    metric = as_metric(metric_or_decoder)
    z_a = check_points(z_a, "z_a", dim=metric.latent_dim)
    z_b = check_points(z_b, "z_b", dim=metric.latent_dim)
    if z_a.ndim != 2:
        raise ValueError(f"z_a must have shape (P, d), got {tuple(z_a.shape)}")
    check_same_shape(z_a, z_b, "z_a", "z_b")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size}")
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
    method: str = "spline",
    **solver_options: Any,
) -> Tensor:
    """Geodesic distances between paired points ``z_a[i]`` and ``z_b[i]``.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z_a: shape ``(P, d)``.
        z_b: shape ``(P, d)``.
        chunk_size: pairs per batched solve (``None``: all at once).
        progress: show a progress bar.
        method: solver method (default ``"spline"``).
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
    parts = [
        res.length.detach()
        for _, res in iter_geodesics(
            metric_or_decoder,
            z_a,
            z_b,
            chunk_size=chunk_size,
            progress=progress,
            method=method,
            **solver_options,
        )
    ]
    return torch.cat(parts)


def pairwise_geodesic_distances(
    metric_or_decoder: MetricLike,
    z: Tensor,
    *,
    chunk_size: int | None = 256,
    progress: bool = False,
    method: str = "spline",
    **solver_options: Any,
) -> Tensor:
    """The symmetric matrix of geodesic distances between all points.

    Only the ``N (N − 1) / 2`` pairs ``i < j`` are solved, ``chunk_size`` at a
    time; memory is that of one chunk's curves plus the ``(N, N)`` result.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points, shape ``(N, d)``.
        chunk_size: pairs per batched solve (``None``: all at once).
        progress: show a progress bar.
        method: solver method (default ``"spline"``).
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
    metric = as_metric(metric_or_decoder)
    z = check_points(z, "z", dim=metric.latent_dim)
    if z.ndim != 2:
        raise ValueError(f"z must have shape (N, d), got {tuple(z.shape)}")
    n = z.shape[0]
    out = torch.zeros(n, n, dtype=z.dtype, device=z.device)
    if n < 2:
        return out
    i, j = torch.triu_indices(n, n, offset=1, device=z.device)
    dist = geodesic_distances(
        metric,
        z[i],
        z[j],
        chunk_size=chunk_size,
        progress=progress,
        method=method,
        **solver_options,
    ).to(z.dtype)
    out[i, j] = dist
    out[j, i] = dist
    return out
