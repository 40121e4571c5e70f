"""Geodesic k-means (Arvanitidis et al. 2018) and the clustering F-measure.

By default clusters are represented by medoids (data points), so both steps of
the algorithm use geodesic distances only: points are assigned to the nearest
medoid, and each medoid moves to the member that minimises the sum of squared
geodesic distances to its cluster (the sample Fréchet mean restricted to the
data). All geodesic distances are computed once,
:func:`~latentgeo.analysis.pairwise_geodesics`, and the iterations run on that
matrix. The medoids are fitted on the points whose geodesics among themselves
all converged (``include_all=True``: on every point); the result counts the
converged pairs and keeps every pair's status. :func:`kmedoids` accepts any distance matrix, so the
Euclidean baseline is the same code on Euclidean distances.

With ``centres="means"``, :func:`geodesic_kmeans` runs true k-means from the
k-medoids solution: each centre moves to its cluster's Fréchet mean
(:func:`latentgeo.geometry.frechet_mean`, all k clusters in one batched call)
and points are reassigned by their geodesic distances to the k centres, until
the assignment no longer changes. The result keeps the statuses of those
point–centre geodesics and of the means, and its ``converged_note`` and
``warning`` count them beside the distance matrix's pairs.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from latentgeo._options import check_int, check_optional_int
from latentgeo.analysis.distances import lengths_and_status, pairwise_geodesics
from latentgeo.analysis.kmeans_result import KMeansResult, converged_points
from latentgeo.geometry import FrechetMeanResult, frechet_mean
from latentgeo.metrics import MetricLike, as_metric
from latentgeo.solvers import GeodesicMethod, Status

__all__ = ["KMeansResult", "converged_points", "f_measure", "geodesic_kmeans", "kmedoids"]


def _check_counts(k: object, num_restarts: object, max_iter: object) -> None:
    check_int(k, "k")
    check_int(num_restarts, "num_restarts")
    check_int(max_iter, "max_iter")


def _plus_plus_init(dist: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    n = dist.shape[0]
    first = torch.randint(n, (1,), generator=generator)
    chosen = [int(first)]
    for _ in range(1, k):
        d2 = dist[:, chosen].amin(1).pow(2).cpu()
        if float(d2.sum()) <= 0:
            idx = torch.randint(n, (1,), generator=generator)
        else:
            idx = torch.multinomial(d2 / d2.sum(), 1, generator=generator)
        chosen.append(int(idx))
    return torch.tensor(chosen, dtype=torch.long)


def kmedoids(
    distances: Tensor,
    k: int,
    *,
    num_restarts: int = 10,
    max_iter: int = 100,
    generator: torch.Generator | None = None,
    converged: Tensor | None = None,
    include_all: bool = False,
) -> KMeansResult:
    """k-medoids (alternating assignment and medoid update) on a distance matrix.

    Args:
        distances: symmetric ``(N, N)`` distances.
        k: number of clusters (``1 <= k <= N``).
        num_restarts: k-means++-style restarts; the lowest cost wins.
        max_iter: iterations per restart.
        generator: CPU random generator for reproducibility.
        converged: ``(N, N)`` bool, whether each pair's distance converged (``None``:
            all did). Without ``include_all`` the medoids are fitted on the points
            whose pairs among themselves all converged (:func:`converged_points`),
            and every point is then assigned to its nearest medoid. Its pairs
            ``i < j`` are the result's evidence (``converged_note``: converged, or
            ``failed`` where false or not finite).
        include_all: fit on every point, converged or not.

    Returns:
        A :class:`KMeansResult` (``used``: the points fitted on).

    Raises:
        ValueError: fewer than ``k`` points left to fit on.

    Example:
        >>> x = torch.tensor([0.0, 0.1, 0.2, 5.0, 5.1])
        >>> res = kmedoids((x[:, None] - x[None]).abs(), 2)
        >>> res.labels[0] == res.labels[2], res.labels[0] != res.labels[3]
        (tensor(True), tensor(True))
    """
    _check_counts(k, num_restarts, max_iter)
    if distances.ndim != 2 or distances.shape[0] != distances.shape[1]:
        raise ValueError(f"distances must have shape (N, N), got {tuple(distances.shape)}")
    n = distances.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, N={n}], got {k}")
    full = distances.detach().to("cpu", torch.float64)
    if converged is not None and converged.shape != distances.shape:
        raise ValueError(
            f"converged must have the shape of distances {tuple(distances.shape)}, "
            f"got {tuple(converged.shape)}"
        )
    used = torch.ones(n, dtype=torch.bool)
    if converged is not None and not include_all:
        used = converged_points(converged.cpu() & torch.isfinite(full))
    if not bool(torch.isfinite(full[used][:, used]).all()):
        raise ValueError("distances contains NaN or Inf values")
    if int(used.sum()) < k:
        raise ValueError(
            f"only {int(used.sum())} of {n} points have converged pairs among themselves, "
            f"fewer than k={k}: pass include_all=True to cluster on every distance"
        )
    best = _kmedoids_fit(full[used][:, used], k, num_restarts, max_iter, generator)
    index = used.nonzero().squeeze(1)
    medoids = index[best.medoids]
    labels = full[:, medoids].nan_to_num(torch.inf).argmin(1)
    pairs: list[Status] = []
    if converged is not None:  # the mask's verdicts, counted in converged_note
        i, j = torch.triu_indices(n, n, offset=1)
        ok = (converged.cpu() & torch.isfinite(full))[i, j].tolist()
        pairs = [Status.CONVERGED if c else Status.FAILED for c in ok]
    return KMeansResult(
        labels, medoids, best.cost, best.iterations, distances, used=used,
        include_all=include_all, settled=best.settled, pair_status=pairs,
    )  # fmt: skip


def _kmedoids_fit(
    dist: Tensor, k: int, num_restarts: int, max_iter: int, generator: torch.Generator | None
) -> KMeansResult:
    """The best of ``num_restarts`` k-medoids runs on the float64 CPU matrix ``dist``."""
    n = dist.shape[0]
    sq = dist.pow(2)
    best: KMeansResult | None = None
    for _ in range(max(1, num_restarts)):
        medoids = _plus_plus_init(dist, k, generator)
        labels = dist[:, medoids].argmin(1)
        it, converged = 0, False
        for it in range(1, max_iter + 1):  # noqa: B007 (used after the loop)
            new = medoids.clone()
            for c in range(k):
                members = (labels == c).nonzero().squeeze(1)
                if members.numel() == 0:
                    continue
                within = sq[members][:, members].sum(1)
                new[c] = members[within.argmin()]
            new_labels = dist[:, new].argmin(1)
            converged = torch.equal(new, medoids) and torch.equal(new_labels, labels)
            medoids, labels = new, new_labels
            if converged:
                break
        cost = float(sq[torch.arange(n), medoids[labels]].sum())
        if best is None or cost < best.cost:
            best = KMeansResult(labels, medoids, cost, it, dist, settled=converged)
    assert best is not None
    return best


def geodesic_kmeans(
    metric_or_decoder: MetricLike,
    z: Tensor,
    k: int,
    *,
    num_restarts: int = 10,
    max_iter: int = 100,
    generator: torch.Generator | None = None,
    chunk_size: int | None = 256,
    progress: bool = False,
    method: str | GeodesicMethod = "spline",
    centres: Literal["medoids", "means"] = "medoids",
    mean_options: dict[str, Any] | None = None,
    include_all: bool = False,
    **solver_options: Any,
) -> KMeansResult:
    """k-means with geodesic distances: assignments and centre updates by geodesic distance.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points, shape ``(N, d)``.
        k: number of clusters.
        num_restarts: restarts of the clustering (the distances are solved once).
        max_iter: iterations per restart.
        generator: CPU random generator for the initialisation.
        chunk_size: pairs per batched geodesic solve.
        progress: show a progress bar while solving geodesics.
        method: solver method or solver object of
            :func:`~latentgeo.solvers.connecting_geodesic` (default ``"spline"``).
        centres: ``"medoids"`` (k-medoids on the distance matrix) or ``"means"``
            (then true k-means from that start, with Fréchet means as centres).
        mean_options: options of :func:`latentgeo.geometry.frechet_mean` (``"means"``).
        include_all: fit the medoids on every point; by default only on the points
            whose geodesics among themselves all converged (see :func:`kmedoids`).
        **solver_options: passed to :func:`~latentgeo.solvers.connecting_geodesic`.

    Returns:
        A :class:`KMeansResult` whose ``distances`` are the geodesic distances, with
        every pair's status (``pair_status``) and the points fitted on (``used``).
    """
    _check_counts(k, num_restarts, max_iter)
    check_optional_int(chunk_size, "chunk_size")
    if centres not in ("medoids", "means"):
        raise ValueError(f"centres must be 'medoids' or 'means', got {centres!r}")
    table = pairwise_geodesics(
        metric_or_decoder,
        z,
        chunk_size=chunk_size,
        progress=progress,
        method=method,
        **solver_options,
    )
    start = kmedoids(
        table.distances,
        k,
        num_restarts=num_restarts,
        max_iter=max_iter,
        generator=generator,
        converged=table.converged,
        include_all=include_all,
    )
    start.pair_status = table.status
    if centres == "medoids":
        return start
    return _lloyd(metric_or_decoder, z, start, max_iter, mean_options or {},
                  chunk_size=chunk_size, method=method, **solver_options)  # fmt: skip


def _cluster_means(
    metric_or_decoder: MetricLike, z: Tensor, labels: Tensor, init: Tensor, options: dict[str, Any]
) -> FrechetMeanResult:
    """The Fréchet means of the k clusters, one batched call (clusters padded with weight 0)."""
    k = init.shape[0]
    onehot = torch.nn.functional.one_hot(labels, k).T.to(z.dtype)  # (k, N)
    empty = onehot.sum(1) == 0
    weights = torch.where(empty[:, None], 1.0, onehot)  # an empty cluster keeps its centre
    points = torch.where(empty[:, None, None], init[:, None], z[None].expand(k, -1, -1))
    return frechet_mean(metric_or_decoder, points, weights=weights, init=init, **options)


def _lloyd(
    metric_or_decoder: MetricLike,
    z: Tensor,
    start: KMeansResult,
    max_iter: int,
    mean_options: dict[str, Any],
    **distance_options: Any,
) -> KMeansResult:
    """Alternate Fréchet-mean updates and reassignment from a k-medoids solution.

    The result's centres, their statuses and the distances to them are those of the
    last assignment: the labels are each point's nearest of those centres."""
    metric = as_metric(metric_or_decoder)
    n, k = z.shape[0], start.medoids.shape[0]
    labels, centres = start.labels.to(z.device), z[start.medoids.to(z.device)]
    means = _cluster_means(metric, z, labels, centres, mean_options)
    dist, status, settled, it = z.new_zeros(n, k), list[Status](), False, 0
    centres, means_status = means.mean.detach(), means.status
    for it in range(1, max_iter + 1):
        centres, means_status = means.mean.detach(), means.status
        pa = z.repeat_interleave(k, 0)
        pb = centres.repeat(n, 1)
        dist, status = lengths_and_status(metric, pa, pb, **distance_options)
        dist = dist.reshape(n, k)
        new = dist.argmin(1)
        settled = torch.equal(new, labels)
        labels = new
        if settled or it == max_iter:
            break
        means = _cluster_means(metric, z, labels, centres, mean_options)
    cost = float(dist.gather(1, labels[:, None]).pow(2).sum())
    nearest = torch.where(labels[:, None] == torch.arange(k, device=z.device), dist, torch.inf)
    return KMeansResult(
        labels=labels.cpu(), medoids=nearest.argmin(0).cpu(), cost=cost, iterations=it,
        distances=start.distances, centres=centres, centre_distances=dist, status=means_status,
        pair_status=start.pair_status, used=start.used, include_all=start.include_all,
        centre_status=status, settled=settled,
    )  # fmt: skip


def f_measure(labels_true: Tensor | np.ndarray, labels_pred: Tensor | np.ndarray) -> float:
    """The clustering F-measure: each class matched to its best cluster, weighted by class size.

    ``F = Σ_c (n_c / N) max_k 2 P(c, k) R(c, k) / (P(c, k) + R(c, k))`` with precision
    ``P = n_ck / n_k`` and recall ``R = n_ck / n_c``.

    Args:
        labels_true: class of each point, shape ``(N,)``.
        labels_pred: cluster of each point, shape ``(N,)``.

    Returns:
        A number in ``[0, 1]``; 1 for a perfect clustering (up to relabelling).

    Example:
        >>> f_measure(np.array([0, 0, 1, 1]), np.array([5, 5, 7, 7]))
        1.0
    """
    t = np.asarray(labels_true.cpu() if isinstance(labels_true, Tensor) else labels_true)
    p = np.asarray(labels_pred.cpu() if isinstance(labels_pred, Tensor) else labels_pred)
    t, p = t.reshape(-1), p.reshape(-1)
    if t.shape != p.shape or t.size == 0:
        raise ValueError(
            f"labels_true and labels_pred must be non-empty and of equal length, "
            f"got {t.shape[0]} and {p.shape[0]}"
        )
    classes, t_idx = np.unique(t, return_inverse=True)
    clusters, p_idx = np.unique(p, return_inverse=True)
    table = np.zeros((classes.size, clusters.size))
    np.add.at(table, (t_idx, p_idx), 1.0)
    n_c = table.sum(1, keepdims=True)
    n_k = table.sum(0, keepdims=True)
    precision, recall = table / n_k, table / n_c
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(table > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float((n_c[:, 0] / t.size * f.max(1)).sum())
