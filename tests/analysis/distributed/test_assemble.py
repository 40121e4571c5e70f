"""Tiles to a distance matrix: symmetric and rectangular jobs, failed tiles as NaN with the
``failed`` status, resumed tiles read back from the folder (and refused when they hold other
pairs). No solve: the tiles are made up, so every entry can be checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from latentgeo.analysis.distributed.assemble import assemble
from latentgeo.analysis.distributed.plan import DistanceJob, plan_job
from latentgeo.analysis.distributed.worker import TileResult
from latentgeo.solvers import Status


def _made_up(job: DistanceJob, k: int) -> TileResult:
    """Tile ``k`` with length ``100 i + j``, line length twice that, converged."""
    i, j = job.plan.pairs(k)
    length = (100.0 * i + j).astype(job.z_a.dtype)
    status = np.full(i.shape, Status.CONVERGED.value)
    return TileResult(k, i, j, length, 2 * length, status, np.full(i.shape, 7))


def test_symmetric_matrix_from_tiles_with_one_failed(
    checkpoints: dict[str, Path], points: torch.Tensor
) -> None:
    job = plan_job(checkpoints["mlp"], points, tile=16)  # 45 pairs: tiles of 16, 16, 13
    assert job.plan.num_tiles == 3
    results = {k: _made_up(job, k) for k in (0, 2)}
    out = assemble(job, results, {1: "worker died"}, resumed=0)
    i, j = np.triu_indices(10, 1)
    want = torch.from_numpy(100.0 * i + j)
    failed = torch.zeros(45, dtype=torch.bool)
    failed[16:32] = True
    torch.testing.assert_close(out.length[~failed], want[~failed])
    assert bool(out.length[failed].isnan().all())
    of_failed = [s for s, f in zip(out.status, failed.tolist(), strict=True) if f]
    assert of_failed == [Status.FAILED] * 16
    matrix = out.matrix.numpy()
    np.testing.assert_array_equal(matrix, matrix.T)
    assert matrix[5, 0] == 5.0 and np.isnan(matrix[2, 5]) and matrix[4, 4] == 0.0
    assert (out.tiles_total, out.tiles_computed, out.tiles_resumed) == (3, 2, 0)
    assert out.failed_tiles == {1: "worker died"}
    torch.testing.assert_close(out.line_length[~failed], 2 * want[~failed])


def test_rectangular_matrix_and_tiles_read_back_from_the_folder(
    checkpoints: dict[str, Path], points: torch.Tensor, tmp_path: Path
) -> None:
    job = plan_job(checkpoints["mlp"], points[:3], points[3:7], tile=5, out=tmp_path / "job")
    assert job.store is not None and job.plan.num_tiles == 3  # 12 pairs
    job.store.write(_made_up(job, 1))
    out = assemble(job, {k: _made_up(job, k) for k in (0, 2)}, {}, resumed=1)
    rows, cols = np.divmod(np.arange(12), 4)
    np.testing.assert_array_equal(out.matrix.numpy(), (100.0 * rows + cols).reshape(3, 4))
    assert (out.tiles_computed, out.tiles_resumed) == (2, 1)
    wrong = _made_up(job, 0)
    job.store.write(TileResult(1, wrong.i, wrong.j, wrong.length, wrong.line_length,
                               wrong.status, wrong.iterations))  # fmt: skip
    with pytest.raises(ValueError, match="does not hold the pairs of tile 1"):
        assemble(job, {k: _made_up(job, k) for k in (0, 2)}, {}, resumed=1)
