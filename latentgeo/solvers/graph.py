"""The ``"graph"`` method: k-nearest-neighbour graph shortest paths, refined by the energy solver.

Energy minimisation started from the straight line finds the nearest local
minimum; in a latent space with a hole (a region the decoder is uncertain
about, where the metric is large) that can be the curve straight through the
hole. The graph method starts instead from the shortest path through latent
points the user supplies (e.g. the training codes), which goes around:

1. a k-NN graph (Euclidean neighbours in latent space) over the points, made
   symmetric, and each pair's end points joined to it (and only to it: see
   :mod:`~latentgeo.solvers.pair_graphs`, so that a pair's path does not depend
   on the other pairs of the batch); the points' graph is kept for the metric
   and reused by later calls on the same points;
2. edge weights = Riemannian lengths of the straight segments (Gauss–Legendre
   quadrature, every edge of the graph in a few batched metric calls);
3. Dijkstra from every start point (``scipy.sparse.csgraph``): pairs without a
   path get the status ``"unreachable"``;
4. each path, parametrised by its Riemannian arc length, is fitted by a cubic
   spline that the energy solver (:func:`~latentgeo.solvers.energy.minimize_energy`)
   then refines.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from torch import Tensor

from latentgeo._options import check_int
from latentgeo._validation import check_points
from latentgeo.curves import CubicSpline
from latentgeo.metrics import Metric
from latentgeo.solvers.connecting import register_method
from latentgeo.solvers.pair_graphs import knn_graph, pair_graph, segment_lengths
from latentgeo.solvers.result import GeodesicResult
from latentgeo.solvers.status import Status, converged_mask

__all__ = ["knn_graph", "segment_lengths"]

UNREACHABLE = "the end points lie in different connected components of the k-NN graph"
BLOCKED = (
    "the end points are joined in the k-NN graph only through edges that meet a negative "
    "or non-finite squared norm (the metric is invalid there)"
)


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


def _shortest_paths(
    graph: csr_matrix, nodes: Tensor, z0: Tensor, z1: Tensor, t: Tensor
) -> tuple[Tensor, Tensor, list[list[int]]]:
    """Each pair's shortest path from ``z0`` to ``z1`` in ``graph`` (over ``nodes``, the
    points then ``z0`` then ``z1``): the path resampled at times ``t`` by arc length
    ``(B, T, d)`` (the straight line where there is none), its length ``(B,)`` (``inf``:
    none) and its node indices (``[]``: none)."""
    b, n = z0.shape[0], nodes.shape[0] - 2 * z0.shape[0]
    src, dst = np.arange(n, n + b), np.arange(n + b, n + 2 * b)
    dist, pred = dijkstra(graph, directed=True, indices=src, return_predecessors=True)
    init = (z0[:, None] + t[None, :, None] * (z1 - z0)[:, None]).detach().clone()
    graph_length = torch.full((b,), torch.inf, dtype=z0.dtype, device=z0.device)
    paths: list[list[int]] = []
    for p in range(b):
        if not np.isfinite(dist[p, dst[p]]):
            paths.append([])
            continue
        path = _path(pred[p], int(src[p]), int(dst[p]))
        paths.append(path)
        graph_length[p] = float(dist[p, dst[p]])
        seg = torch.as_tensor(
            np.asarray(graph[path[:-1], path[1:]]).reshape(-1), dtype=z0.dtype, device=z0.device
        )
        init[p] = _resample(nodes[torch.as_tensor(path, device=z0.device)], seg, t)
    return init, graph_length, paths


def _joined(every: csr_matrix, n: int, b: int) -> np.ndarray:
    """``(B,)`` bool: pairs whose end points the k-NN edges join at all, valid or not."""
    src, dst = np.arange(n, n + b), np.arange(n + b, n + 2 * b)
    hops = dijkstra(every, directed=True, indices=src, unweighted=True)
    return np.asarray(np.isfinite(hops[np.arange(b), dst]))


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
        indices into ``cat([points, z0, z1])``) and ``components`` (of the
        points' graph). Pairs
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
    nodes = torch.cat([points.detach(), z0.detach(), z1.detach()])
    graph, every, components = pair_graph(
        metric, points.detach(), z0.detach(), z1.detach(), k, segment_nodes
    )
    t = torch.linspace(0.0, 1.0, samples, dtype=z0.dtype, device=z0.device)
    init, graph_length, paths = _shortest_paths(graph, nodes, z0, z1, t)
    reachable = torch.isfinite(graph_length).cpu().numpy()
    # apart only because the edges between them meet a negative or non-finite squared norm
    blocked = ~reachable & _joined(every, points.shape[0], z0.shape[0])

    curve = CubicSpline(z0.detach(), z1.detach(), num_knots=num_knots)
    curve.fit(t, init)
    from latentgeo.solvers.energy import minimize_energy

    options = dict(energy_options)
    if not refine:
        options["max_iter"] = 0
        options.setdefault("refine", False)
    result = minimize_energy(metric, curve, z0=z0, z1=z1, **options)
    result.method = "graph"
    _set_statuses(result, refine, reachable, blocked)
    result.info.update({"graph_length": graph_length, "paths": paths, "components": components})
    return result
