"""From tiles (in memory or in the output folder) to a :class:`DistanceMatrixResult`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from latentgeo.analysis.distributed.result import DistanceMatrixResult
from latentgeo.analysis.distributed.sparse import complete_by_shortest_paths
from latentgeo.analysis.distributed.worker import TileResult
from latentgeo.solvers import Status

if TYPE_CHECKING:
    from latentgeo.analysis.distributed.plan import DistanceJob

__all__ = ["assemble"]


def _failed_tile(job: DistanceJob, k: int) -> TileResult:
    i, j = job.plan.pairs(k)
    nan = np.full(i.shape, np.nan, dtype=job.z_a.dtype)
    status = np.full(i.shape, Status.FAILED.value)
    return TileResult(k, i, j, nan, nan.copy(), status, np.full(i.shape, -1, dtype=np.int64))


def _tile(job: DistanceJob, k: int, results: dict[int, TileResult]) -> TileResult:
    if k in results:
        return results[k]
    assert job.store is not None  # a tile neither in memory nor failed was resumed
    tile = job.store.read(k)
    i, j = job.plan.pairs(k)
    if not (np.array_equal(tile.i, i) and np.array_equal(tile.j, j)):
        raise ValueError(
            f"tile file {job.store.path(k)} does not hold the pairs of tile {k}; "
            "delete it and rerun to recompute it"
        )
    return tile


def assemble(
    job: DistanceJob, results: dict[int, TileResult], failed: dict[int, str], *, resumed: int
) -> DistanceMatrixResult:
    """Put the tiles of ``job`` together: the matrix and the per-pair arrays.

    Tiles come from ``results``, else from the job's output folder; the pairs
    of the tiles in ``failed`` get ``NaN`` lengths and the ``failed`` status.
    """
    tiles = [
        _failed_tile(job, k) if k in failed else _tile(job, k, results)
        for k in range(job.plan.num_tiles)
    ]
    arrays = {name: np.concatenate([getattr(t, name) for t in tiles]) for name in TileResult.ARRAYS}
    i, j, length = arrays["i"], arrays["j"], arrays["length"]
    n_a, n_b = job.z_a.shape[0], job.z_b.shape[0]
    if job.plan.kind == "explicit":
        # failed edges are left out of the graph: their entries are still paths' lengths
        matrix = complete_by_shortest_paths(n_a, i, j, length).astype(job.z_a.dtype)
    else:
        matrix = np.zeros((n_a, n_b), dtype=job.z_a.dtype)
        matrix[i, j] = length
        if job.plan.kind == "symmetric":
            matrix[j, i] = length
    return DistanceMatrixResult(
        matrix=torch.from_numpy(matrix),
        i=torch.from_numpy(i),
        j=torch.from_numpy(j),
        length=torch.from_numpy(length),
        line_length=torch.from_numpy(arrays["line_length"]),
        status=[Status(s) for s in arrays["status"].tolist()],
        iterations=torch.from_numpy(arrays["iterations"]),
        failed_tiles=dict(failed),
        tiles_total=job.plan.num_tiles,
        tiles_computed=job.plan.num_tiles - resumed - len(failed),
        tiles_resumed=resumed,
        neighbours=job.neighbours,
    )
