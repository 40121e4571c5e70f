r"""Sparse mode: geodesics to the k nearest neighbours only, the rest by shortest paths.

For large N the ``N (N − 1) / 2`` geodesics of a dense matrix are out of
reach; :func:`knn_pairs` keeps only the pairs joining each point to its
``k`` nearest latent neighbours (Euclidean, a k-d tree), at most ``N k``
geodesics. :func:`complete_by_shortest_paths` fills in the other entries
with the length of the shortest path through that graph, whose edges weigh
the geodesic lengths (Dijkstra, :mod:`scipy.sparse.csgraph`):

.. math:: \hat d(a, b) = \min_{a = v_0, v_1, \dots, v_m = b} \sum_r L(v_{r-1}, v_r).

This is an **approximation from above**: a path through the graph is a
curve, so :math:`\hat d \ge d` up to the solver's own error, and it is exact
only where the geodesic passes near the data points. Points in different
connected components of the graph get ``inf``. The error against the dense
matrix on a small set is measured in ``benchmarks/distributed.py`` and
reported in ``docs/distances-at-scale.md``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["complete_by_shortest_paths", "knn_pairs"]


def knn_pairs(z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs ``i < j`` where ``j`` is among the ``k`` nearest neighbours of ``i`` or back.

    Args:
        z: points ``(N, d)``.
        k: neighbours per point, ``1 ≤ k < N``.

    Returns:
        Row and column indices ``(E,)`` (int64, ``i < j``, sorted, no repeats),
        ``E ≤ N k``.

    Example:
        >>> z = np.array([[0.0], [1.0], [3.0], [7.0]])
        >>> knn_pairs(z, 1)
        (array([0, 1, 2]), array([1, 2, 3]))
    """
    from scipy.spatial import KDTree

    n = z.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < n:
        raise ValueError(f"neighbours must be an int in [1, N - 1] = [1, {n - 1}], got {k!r}")
    _, idx = KDTree(z).query(z, k=k + 1)
    rows = np.repeat(np.arange(n, dtype=np.int64), k + 1)
    cols = np.asarray(idx, dtype=np.int64).ravel()
    keep = rows != cols
    lo, hi = np.minimum(rows[keep], cols[keep]), np.maximum(rows[keep], cols[keep])
    codes = np.unique(lo * n + hi)
    return codes // n, codes % n


def complete_by_shortest_paths(
    n: int, i: np.ndarray, j: np.ndarray, length: np.ndarray
) -> np.ndarray:
    """The ``(n, n)`` matrix of shortest-path lengths through the graph of the given edges.

    Args:
        n: number of points.
        i: edge rows ``(E,)``.
        j: edge columns ``(E,)``.
        length: edge lengths ``(E,)``; non-finite ones (failed pairs) are left out.

    Returns:
        A symmetric ``(n, n)`` float64 array, zero diagonal, ``inf`` between
        points that no path joins.

    Example:
        >>> complete_by_shortest_paths(3, np.array([0, 1]), np.array([1, 2]), np.array([1.0, 2.0]))
        array([[0., 1., 3.],
               [1., 0., 2.],
               [3., 2., 0.]])
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import shortest_path

    ok = np.isfinite(length)
    # explicit zeros would vanish from a sparse graph: a zero-length edge becomes the smallest
    # positive float, which no sum of lengths can tell from zero
    weights = np.maximum(np.asarray(length, dtype=np.float64)[ok], np.finfo(np.float64).tiny)
    graph = coo_matrix((weights, (i[ok], j[ok])), shape=(n, n)).tocsr()
    dist = np.asarray(shortest_path(graph, method="D", directed=False))
    return np.minimum(dist, dist.T)  # one Dijkstra per source sums in its own order: symmetrise
