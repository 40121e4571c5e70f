"""The pairs of a distance matrix, split into tiles of consecutive pairs.

A :class:`TilePlan` numbers the pairs of a job ``0 … P − 1`` and cuts them
into tiles of ``tile_size`` consecutive pairs; tile ``k`` holds the pairs
``k · tile_size … min((k + 1) · tile_size, P) − 1``. Three kinds of job:

* symmetric (one set of N points): the pairs ``i < j`` in row-major order,
  the order of ``torch.triu_indices(N, N, 1)``, ``P = N (N − 1) / 2``;
* rectangular (``z_a`` of N_a points against ``z_b`` of N_b): every ``(i, j)``
  in row-major order, ``P = N_a N_b``;
* explicit (sparse mode): a given list of pairs.

The pairs of a tile are computed from its number in ``O(tile_size + log N)``
without listing all ``P`` pairs, so a plan for N = 10⁵ points (5 · 10⁹ pairs)
costs ``O(N)`` memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TilePlan"]


class TilePlan:
    """Which pairs each tile of a distance-matrix job holds.

    Args:
        n_a: number of points (rows).
        n_b: number of columns for a rectangular job; ``None`` for the
            symmetric job on the ``n_a`` points (pairs ``i < j`` only).
        tile_size: pairs per tile (the last tile may hold fewer).
        pairs: explicit pairs ``(i, j)``, two int arrays of shape ``(P,)``
            (sparse mode); then ``n_b`` must be ``None``.

    Example:
        >>> plan = TilePlan(4, tile_size=4)
        >>> plan.num_pairs, plan.num_tiles
        (6, 2)
        >>> plan.pairs(1)
        (array([1, 2]), array([3, 3]))
    """

    def __init__(
        self,
        n_a: int,
        n_b: int | None = None,
        *,
        tile_size: int,
        pairs: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        for name, value in (("n_a", n_a), ("tile_size", tile_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if n_b is not None and (isinstance(n_b, bool) or not isinstance(n_b, int) or n_b < 1):
            raise ValueError(f"n_b must be None or a positive int, got {n_b!r}")
        self.n_a = n_a
        self.n_b = n_b
        self.tile_size = tile_size
        self._explicit: tuple[np.ndarray, np.ndarray] | None = None
        if pairs is not None:
            if n_b is not None:
                raise ValueError("explicit pairs are for a symmetric job: n_b must be None")
            i, j = (np.asarray(p, dtype=np.int64) for p in pairs)
            if i.ndim != 1 or i.shape != j.shape:
                raise ValueError(f"pairs must be two (P,) arrays, got {i.shape} and {j.shape}")
            if i.size and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n_a):
                raise ValueError(f"pair indices must lie in [0, {n_a})")
            self._explicit = (i, j)
            self.num_pairs = int(i.size)
        elif n_b is None:
            self.num_pairs = n_a * (n_a - 1) // 2
            rows = np.arange(max(n_a - 1, 0), dtype=np.int64)
            # first linear index of row i: Σ_{r<i} (n − 1 − r) = i n − i (i + 1) / 2
            self._row_starts = rows * n_a - rows * (rows + 1) // 2
        else:
            self.num_pairs = n_a * n_b
        self.num_tiles = -(-self.num_pairs // tile_size)

    @property
    def kind(self) -> str:
        """``"symmetric"``, ``"rectangular"`` or ``"explicit"``."""
        if self._explicit is not None:
            return "explicit"
        return "symmetric" if self.n_b is None else "rectangular"

    def tile_range(self, k: int) -> tuple[int, int]:
        """``(start, stop)``: the linear pair indices of tile ``k``."""
        if not 0 <= k < self.num_tiles:
            raise IndexError(f"tile {k} out of range [0, {self.num_tiles})")
        start = k * self.tile_size
        return start, min(start + self.tile_size, self.num_pairs)

    def tile_size_of(self, k: int) -> int:
        """Number of pairs in tile ``k``."""
        start, stop = self.tile_range(k)
        return stop - start

    def pairs(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The pairs of tile ``k``: row and column indices, two int64 arrays ``(T,)``."""
        start, stop = self.tile_range(k)
        return self.pairs_of(np.arange(start, stop, dtype=np.int64))

    def pairs_of(self, linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of the pairs with linear indices ``linear`` ``(M,)``."""
        if self._explicit is not None:
            return self._explicit[0][linear], self._explicit[1][linear]
        if self.n_b is not None:
            return linear // self.n_b, linear % self.n_b
        i = np.searchsorted(self._row_starts, linear, side="right") - 1
        return i, linear - self._row_starts[i] + i + 1

    def all_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every pair of the job, in order: two int64 arrays ``(P,)``."""
        return self.pairs_of(np.arange(self.num_pairs, dtype=np.int64))

    def describe(self) -> dict[str, Any]:
        """The plan as JSON-able configuration (kind, sizes, tile size)."""
        names = ("kind", "n_a", "n_b", "num_pairs", "tile_size")
        return {name: getattr(self, name) for name in names}
