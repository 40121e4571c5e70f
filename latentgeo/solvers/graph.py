"""The ``"graph"`` method: k-nearest-neighbour graph shortest paths, refined by the energy solver.

Energy minimisation started from the straight line finds the nearest local
minimum; in a latent space with a hole (a region the decoder is uncertain
about, where the metric is large) that can be the curve straight through the
hole. The graph method starts instead from the shortest path through latent
points the user supplies (e.g. the training codes), which goes around:

1. a k-NN graph (Euclidean neighbours in latent space) over the points and the
   end points, made symmetric;
2. edge weights = Riemannian lengths of the straight segments (Gauss–Legendre
   quadrature, every edge of the graph in a few batched metric calls);
3. connected components (``scipy.sparse.csgraph``): pairs whose end points lie
   in different components get the status ``"unreachable"``;
4. Dijkstra from every distinct start point;
5. each path, parametrised by its Riemannian arc length, is fitted by a cubic
   spline that the energy solver (:func:`~latentgeo.solvers.energy.minimize_energy`)
   then refines.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from torch import Tensor

from latentgeo._options import check_int
from latentgeo._validation import check_points
from latentgeo.curves import CubicSpline
from latentgeo.metrics import Metric
from latentgeo.metrics.jacobians import chunks
from latentgeo.solvers.connecting import register_method
from latentgeo.solvers.result import GeodesicResult
from latentgeo.solvers.status import Status, converged_mask
from latentgeo.solvers.validity import invalid_squared_norms

__all__ = ["knn_graph", "segment_lengths"]

UNREACHABLE = "the end points lie in different connected components of the k-NN graph"
BLOCKED = (
    "the end points are joined in the k-NN graph only through edges that meet a negative "
    "or non-finite squared norm (the metric is invalid there)"
)


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


def _blocked_by_metric(
    i: np.ndarray, j: np.ndarray, m: int, labels: np.ndarray, src: np.ndarray, dst: np.ndarray
) -> np.ndarray:
    """Which pairs ``(src, dst)`` apart in the graph of valid edges (component ``labels``)
    would be joined by all the k-NN edges ``(i, j)``, invalid ones included, ``(B,)`` bool."""
    every = coo_matrix((np.ones(i.shape[0]), (i, j)), shape=(m, m)).tocsr()
    whole = connected_components(every, directed=False)[1]
    return (labels[src] != labels[dst]) & (whole[src] == whole[dst])


def _set_statuses(
    result: GeodesicResult, refine: bool, reachable: np.ndarray, blocked: np.ndarray
) -> None:
    """The graph's verdicts on top of the energy solver's statuses, in place."""
    if not refine:  # no solver ran: the fitted graph path is an initialisation, not a geodesic
        finite = torch.isfinite(result.length).tolist()
        result.status = [
            s if s is Status.INVALID_METRIC else Status.NOT_SOLVED if f else Status.NON_FINITE
            for s, f in zip(result.status, finite, strict=True)
        ]
    why = [Status.INVALID_METRIC if bl else Status.UNREACHABLE for bl in blocked]
    result.status = [
        s if r else Status.combine(s, w)
        for r, s, w in zip(reachable, result.status, why, strict=True)
    ]
    solver = result.message or [""] * len(result.status)  # e.g. max_knots reached unsettled
    result.message = [
        m if r else BLOCKED if bl else UNREACHABLE
        for r, bl, m in zip(reachable, blocked, solver, strict=True)
    ]
    result.converged = converged_mask(result.status, device=result.length.device)


def _path(pred: np.ndarray, source: int, target: int) -> list[int]:
    out = [target]
    while out[-1] != source:
        out.append(int(pred[out[-1]]))
    return out[::-1]


def _resample(poly: Tensor, weights: Tensor, t: Tensor) -> Tensor:
    """Points at times ``t`` on a polyline ``(P, d)`` parametrised by cumulative ``weights``."""
    cum = torch.cat([weights.new_zeros(1), torch.cumsum(weights, 0)])
    total = cum[-1]
    if poly.shape[0] == 1 or not bool(total > 0):
        return poly[:1] + t[:, None] * (poly[-1:] - poly[:1])
    tau = cum / total
    idx = torch.searchsorted(tau, t.contiguous(), right=True).clamp(1, poly.shape[0] - 1)
    t0, t1 = tau[idx - 1], tau[idx]
    frac = ((t - t0) / (t1 - t0).clamp_min(torch.finfo(t.dtype).tiny)).clamp(0.0, 1.0)
    return poly[idx - 1] + frac[:, None] * (poly[idx] - poly[idx - 1])


@register_method("graph")
def _graph(
    metric: Metric,
    z0: Tensor,
    z1: Tensor,
    *,
    points: Tensor | None = None,
    k: int = 10,
    segment_nodes: int = 8,
    num_knots: int = 12,
    samples: int = 64,
    refine: bool = True,
    **energy_options: Any,
) -> GeodesicResult:
    """``connecting_geodesic(..., method="graph", points=codes)``: graph start, energy refinement.

    Args:
        metric: the metric.
        z0: start points ``(B, d)``.
        z1: end points ``(B, d)``.
        points: latent points ``(N, d)`` the graph is built on (required), e.g.
            the encoded training data; same dtype and device as ``z0``.
        k: neighbours per point, ``>= 1``.
        segment_nodes: Gauss–Legendre points per edge for its Riemannian length, ``>= 1``.
        num_knots: interior knots of the spline fitted to each graph path, ``>= 0``.
        samples: points per graph path used for that fit, ``>= 2``.
        refine: refine the spline with the energy solver (``False``: report the
            fitted spline as it is, with status ``not_solved``: no tolerance was checked).
            This name takes the energy solver's own ``refine`` (knot refinement):
            to solve on the graph's knots without adding any, pass
            ``max_knots=num_knots`` (its pairs are then converged at ``tol`` alone,
            and their ``message`` says so).
        **energy_options: passed to :func:`~latentgeo.solvers.energy.minimize_energy`.

    Returns:
        A :class:`GeodesicResult`; ``info`` holds ``graph_length`` (the
        Riemannian length of each graph path, ``(B,)``), ``paths`` (node
        indices into ``cat([points, z0, z1])``) and ``components``. Pairs
        whose end points are not connected have status ``unreachable`` (the
        reason in ``message``), ``converged = False``, and the energy solver's
        straight-line result; ``invalid_metric`` where they would be connected
        but for edges whose squared norms are negative or not finite (such
        edges are left out of the graph), or where the refined curve meets
        such a squared norm.
    """
    if points is None:
        raise ValueError(
            "method='graph' needs points=: latent points of shape (N, d) to build the graph "
            "on, e.g. the encoded training data"
        )
    points = check_points(points, "points", dim=z0.shape[-1])
    if points.ndim != 2:
        raise ValueError(f"points must have shape (N, d), got {tuple(points.shape)}")
    if points.dtype != z0.dtype or points.device != z0.device:
        raise ValueError(
            f"points must have the dtype and device of z0 ({z0.dtype}, {z0.device}), got "
            f"{points.dtype} on {points.device}"
        )
    check_int(k, "k")
    check_int(segment_nodes, "segment_nodes")
    check_int(num_knots, "num_knots", minimum=0)
    check_int(samples, "samples", minimum=2)
    b, n = z0.shape[0], points.shape[0]
    nodes = torch.cat([points.detach(), z0.detach(), z1.detach()])
    m = nodes.shape[0]
    with torch.no_grad():
        i, j = knn_graph(nodes, k)
        w = segment_lengths(metric, nodes[i], nodes[j], nodes=segment_nodes)
    ok = torch.isfinite(w)
    i_np, j_np = i[ok].cpu().numpy(), j[ok].cpu().numpy()
    # explicit tiny weights keep zero-length edges (duplicate points) in the sparse graph
    w_np = np.maximum(w[ok].double().cpu().numpy(), np.finfo(np.float64).tiny)
    graph = coo_matrix(
        (
            np.concatenate([w_np, w_np]),
            (np.concatenate([i_np, j_np]), np.concatenate([j_np, i_np])),
        ),
        shape=(m, m),
    ).tocsr()
    n_comp, labels = connected_components(graph, directed=False)
    src = np.arange(n, n + b)
    dst = np.arange(n + b, n + 2 * b)
    sources, inverse = np.unique(src, return_inverse=True)
    dist, pred = dijkstra(graph, directed=False, indices=sources, return_predecessors=True)

    t = torch.linspace(0.0, 1.0, samples, dtype=z0.dtype, device=z0.device)
    init = (z0[:, None] + t[None, :, None] * (z1 - z0)[:, None]).detach().clone()
    reachable = np.zeros(b, dtype=bool)
    paths: list[list[int]] = []
    graph_length = torch.full((b,), torch.inf, dtype=z0.dtype, device=z0.device)
    for p in range(b):
        row = inverse[p]
        if labels[src[p]] != labels[dst[p]] or not np.isfinite(dist[row, dst[p]]):
            paths.append([])
            continue
        reachable[p] = True
        path = _path(pred[row], int(src[p]), int(dst[p]))
        paths.append(path)
        graph_length[p] = float(dist[row, dst[p]])
        idx = torch.as_tensor(path, device=z0.device)
        poly = nodes[idx]
        seg = torch.as_tensor(
            np.asarray(graph[path[:-1], path[1:]]).reshape(-1), dtype=z0.dtype, device=z0.device
        )
        init[p] = _resample(poly, seg, t)

    curve = CubicSpline(z0.detach(), z1.detach(), num_knots=num_knots)
    curve.fit(t, init)
    from latentgeo.solvers.energy import minimize_energy

    options = dict(energy_options)
    if not refine:
        options["max_iter"] = 0
        options.setdefault("refine", False)
    result = minimize_energy(metric, curve, z0=z0, z1=z1, **options)
    result.method = "graph"
    # apart only because the edges between them meet a negative or non-finite squared norm
    blocked = _blocked_by_metric(i.cpu().numpy(), j.cpu().numpy(), m, labels, src, dst)
    _set_statuses(result, refine, reachable, blocked)
    result.info.update({"graph_length": graph_length, "paths": paths, "components": n_comp})
    return result
