"""The graph the ``"graph"`` method solves each pair on, independent of the other pairs.

The user's points ``(N, d)`` form a symmetric k-nearest-neighbour graph whose
edges are weighted by the Riemannian lengths of the straight segments. Each
pair's end points are joined to it, and only to it: ``z0`` by edges *out* to
its ``k`` nearest points and to every point that would count it among its own
``k`` nearest (it is within that point's ``k``-th neighbour distance), ``z1``
likewise by edges *in*, and ``z0`` to ``z1`` directly where either would count
the other among its ``k`` nearest. An end point has only outgoing or only
incoming edges, so no shortest path passes through another pair's end point:
a pair's path is the same whatever else is in the batch (it used to depend on
it, through end points that became each other's neighbours: 22 of 24 graph
lengths of a sparse cloud changed between solving the pairs together and one
at a time, so ``geodesic_distances`` depended on its ``chunk_size``).

The points' graph is the expensive part (``N · k`` segments, ``segment_nodes``
metric evaluations each: minutes for a convolutional decoder's thousands of
codes) and the same for every batch of pairs: it is kept for the metric (for
the decoder, where ``as_metric`` builds the metric anew at every call) and
reused while the points, ``k``, ``segment_nodes`` and the metric are
unchanged (:func:`points_graph`: its parameters' versions, and a few of its
edges measured again, since a decoder can change without a version bump). It
holds a copy of the points and the edges (a few MB for 10,000 points), for as
long as the decoder lives.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components
from torch import Tensor

from latentgeo.metrics import Metric
from latentgeo.metrics.jacobians import chunks
from latentgeo.solvers.validity import invalid_squared_norms

__all__ = [
    "CHECKED_EDGES",
    "PointsGraph",
    "end_edges",
    "knn_graph",
    "pair_graph",
    "points_graph",
    "segment_lengths",
]


def segment_lengths(
    metric: Metric, a: Tensor, b: Tensor, *, nodes: int = 8, chunk_size: int = 1 << 16
) -> Tensor:
    """Riemannian lengths of the straight segments from ``a`` to ``b``, shape ``(E,)``.

    Gauss–Legendre quadrature of ``‖b − a‖_{G(a + s (b − a))}`` over ``s ∈ [0, 1]``
    with ``nodes`` points, in chunks of at most ``chunk_size`` metric evaluations.
    NaN for a segment that meets a negative or non-finite squared norm
    (:func:`~latentgeo.solvers.validity.invalid_squared_norms`): it has no length.

    Args:
        metric: the metric.
        a: segment starts, ``(E, d)``.
        b: segment ends, ``(E, d)``.
        nodes: quadrature points per segment.
        chunk_size: metric evaluations per batch.

    Example:
        >>> import torch
        >>> from latentgeo.metrics import as_metric
        >>> segment_lengths(as_metric(lambda z: 3 * z), torch.zeros(1, 2), torch.ones(1, 2))
        tensor([4.2426])
    """
    x, w = np.polynomial.legendre.leggauss(nodes)
    s = torch.as_tensor((x + 1) / 2, dtype=a.dtype, device=a.device)
    ws = torch.as_tensor(w / 2, dtype=a.dtype, device=a.device)
    per = max(1, chunk_size // nodes)
    out = []
    for sl in chunks(a.shape[0], per):
        aa, dd = a[sl], b[sl] - a[sl]
        pos = aa[:, None] + s[None, :, None] * dd[:, None]
        sq = metric.squared_norm(pos, dd[:, None].expand_as(pos), validate=False)
        length = (sq.clamp_min(0.0).sqrt() * ws).sum(-1)
        out.append(torch.where(invalid_squared_norms(sq), torch.nan, length))
    return torch.cat(out) if out else a.new_zeros(0)


def knn_graph(nodes: Tensor, k: int, *, chunk_size: int = 4096) -> tuple[Tensor, Tensor]:
    """Undirected k-nearest-neighbour edges ``(i, j)``, ``i < j``, each once; ``(E,)`` each.

    Euclidean distances in latent space, computed in chunks of rows.

    Example:
        >>> import torch
        >>> knn_graph(torch.tensor([[0.0], [1.0], [3.0]]), k=1)
        (tensor([0, 1]), tensor([1, 2]))
    """
    n = nodes.shape[0]
    kk = min(k + 1, n)
    rows, cols = [], []
    for sl in chunks(n, chunk_size):
        dist = torch.cdist(nodes[sl], nodes)
        nbr = dist.topk(kk, dim=1, largest=False).indices  # includes the point itself
        src = torch.arange(sl.start, sl.stop, device=nodes.device)[:, None].expand_as(nbr)
        rows.append(src.reshape(-1))
        cols.append(nbr.reshape(-1))
    i, j = torch.cat(rows), torch.cat(cols)
    keep = i != j
    lo, hi = torch.minimum(i[keep], j[keep]), torch.maximum(i[keep], j[keep])
    key = torch.unique(lo * n + hi)
    return key // n, key % n


def _kth_distance(nodes: Tensor, k: int, *, chunk_size: int = 4096) -> Tensor:
    """Each node's distance to its ``k``-th nearest other node ``(N,)`` (``inf``: fewer)."""
    n = nodes.shape[0]
    if n <= k:
        return torch.full((n,), torch.inf, dtype=nodes.dtype, device=nodes.device)
    parts = [
        torch.cdist(nodes[sl], nodes).topk(k + 1, dim=1, largest=False).values[:, -1]
        for sl in chunks(n, chunk_size)
    ]
    return torch.cat(parts)


@dataclass
class PointsGraph:
    """The points' k-NN graph: edges ``(i, j)`` ``(E,)`` with Riemannian lengths ``w``
    (NaN: the segment meets an invalid squared norm), and each point's ``k``-th neighbour
    distance ``radius`` ``(N,)``."""

    i: Tensor
    j: Tensor
    w: Tensor
    radius: Tensor


@dataclass
class _Kept:
    points: Tensor
    k: int
    segment_nodes: int
    versions: tuple[int, ...]
    graph: PointsGraph


#: the graph kept for a metric, by its footprint owner (the decoder, for the metrics that
#: ``as_metric`` builds anew at every ``connecting_geodesic(decoder, ...)``) and key prefix
_KEPT: weakref.WeakKeyDictionary[object, dict[Hashable, _Kept]] = weakref.WeakKeyDictionary()


#: edges of a kept graph measured again before it is reused
CHECKED_EDGES = 16


def _versions(metric: Metric) -> tuple[int, ...]:
    """The version counters of the metric's parameters and buffers (bumped by in-place
    updates, though not by all: see :func:`_still_measures`)."""
    return tuple(t._version for t in (*metric.parameters(), *metric.buffers()))


def _still_measures(metric: Metric, points: Tensor, graph: PointsGraph, nodes: int) -> bool:
    """Whether :data:`CHECKED_EDGES` of the kept graph's edges, spread over them, measure
    what they did (to ``√eps`` relative): a decoder can change without a version bump (a
    fused optimiser, ``p.data`` updates, a float attribute of the metric, a tensor in a
    closure), and a graph of the old metric would mix with the new end points' edges."""
    count = graph.i.shape[0]
    if count == 0:
        return True
    rows = torch.linspace(0, count - 1, min(CHECKED_EDGES, count), device=graph.i.device)
    rows = rows.round().long()
    with torch.no_grad():
        again = segment_lengths(metric, points[graph.i[rows]], points[graph.j[rows]], nodes=nodes)
    kept = graph.w[rows]
    tol = torch.finfo(kept.dtype).eps ** 0.5 * kept.abs().clamp_min(torch.finfo(kept.dtype).tiny)
    same = ((again - kept).abs() <= tol) | (again.isnan() & kept.isnan())
    return bool(same.all())


def points_graph(metric: Metric, points: Tensor, k: int, segment_nodes: int) -> PointsGraph:
    """The points' :class:`PointsGraph`, computed once and kept for ``metric`` while the
    points (compared by value), ``k``, ``segment_nodes`` and the metric's parameters'
    versions are the same and :data:`CHECKED_EDGES` of its edges measure what they did
    (one graph kept per metric, or per decoder for those ``as_metric`` builds)."""
    owner, prefix = metric.footprint_owner()
    try:
        store = _KEPT.setdefault(owner, {})
    except TypeError:  # not weakly referenceable: nothing kept
        store = {}
    kept = store.get(prefix)
    versions = _versions(metric)
    if (
        kept is not None
        and (kept.k, kept.segment_nodes, kept.versions) == (k, segment_nodes, versions)
        and kept.points.shape == points.shape
        and kept.points.dtype == points.dtype
        and kept.points.device == points.device
        and torch.equal(kept.points, points)
        and _still_measures(metric, points, kept.graph, segment_nodes)
    ):
        return kept.graph
    with torch.no_grad():
        i, j = knn_graph(points, k)
        w = segment_lengths(metric, points[i], points[j], nodes=segment_nodes)
        graph = PointsGraph(i, j, w, _kth_distance(points, k))
    store[prefix] = _Kept(points.detach().clone(), k, segment_nodes, versions, graph)
    return graph


def end_edges(
    points: Tensor, radius: Tensor, ends: Tensor, k: int, *, chunk_size: int = 4096
) -> tuple[Tensor, Tensor, Tensor]:
    """The points each end point ``ends`` ``(A, d)`` is joined to: its ``k`` nearest, and
    those that would count it among their own ``k`` nearest (within ``radius``).

    Returns:
        ``(e, p)`` ``(F,)`` each, end point and point of each edge, and each end point's
        ``k``-th nearest point's distance ``(A,)``.
    """
    kk = min(k, points.shape[0])
    rows, cols, reach = [], [], []
    for sl in chunks(ends.shape[0], chunk_size):
        dist = torch.cdist(ends[sl], points)
        near = dist.topk(kk, dim=1, largest=False)
        joined = dist <= radius[None]
        joined.scatter_(1, near.indices, True)
        e, p = joined.nonzero(as_tuple=True)
        rows.append(e + sl.start)
        cols.append(p)
        kth = near.values[:, -1]  # (fewer than k points: every one, and the other end too)
        reach.append(kth if k <= points.shape[0] else torch.full_like(kth, torch.inf))
    return torch.cat(rows), torch.cat(cols), torch.cat(reach)


def pair_graph(
    metric: Metric,
    points: Tensor,
    z0: Tensor,
    z1: Tensor,
    k: int,
    segment_nodes: int,
) -> tuple[csr_matrix, csr_matrix, int]:
    """The directed graph over ``cat([points, z0, z1])`` of the module doc, of its valid
    edges (weighted, a tiny weight for a zero length) and of all of them (weight 1: which
    end points the k-NN edges join at all), and the number of connected components of
    the points' valid edges."""
    n, b = points.shape[0], z0.shape[0]
    base = points_graph(metric, points, k, segment_nodes)
    e0, p0, r0 = end_edges(points, base.radius, z0, k)
    e1, p1, r1 = end_edges(points, base.radius, z1, k)
    gap = (z1 - z0).norm(dim=-1)
    direct = ((gap <= r0) | (gap <= r1)).nonzero()[:, 0]
    with torch.no_grad():
        w_ends = segment_lengths(
            metric,
            torch.cat([z0[e0], points[p1], z0[direct]]),
            torch.cat([points[p0], z1[e1], z1[direct]]),
            nodes=segment_nodes,
        )
    src = torch.cat([base.i, base.j, n + e0, p1, n + direct])
    dst = torch.cat([base.j, base.i, p0, n + b + e1, n + b + direct])
    w = torch.cat([base.w, base.w, w_ends]).double().cpu().numpy()
    src_np, dst_np, m = src.cpu().numpy(), dst.cpu().numpy(), n + 2 * b
    ok = np.isfinite(w)
    # explicit tiny weights keep zero-length edges (duplicate points) in the sparse graph
    valid = coo_matrix(
        (np.maximum(w[ok], np.finfo(np.float64).tiny), (src_np[ok], dst_np[ok])), shape=(m, m)
    ).tocsr()
    every = coo_matrix((np.ones(w.shape[0]), (src_np, dst_np)), shape=(m, m)).tocsr()
    keep = np.isfinite(base.w.double().cpu().numpy())
    inner = coo_matrix(
        (np.ones(int(keep.sum())), (base.i.cpu().numpy()[keep], base.j.cpu().numpy()[keep])),
        shape=(n, n),
    )
    return valid, every, int(connected_components(inner, directed=False)[0])
