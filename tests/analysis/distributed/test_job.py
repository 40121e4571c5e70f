"""The job on a LocalCluster of 2 worker processes: the in-process matrix, every decoder kind,
a failing tile, an interrupted run resumed, a changed configuration refused, and (last: its
worker restarts) a worker killed mid-run."""

from __future__ import annotations

import functools
import os
import signal
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
import torch

from latentgeo.analysis import distance_matrix, geodesic_distances, pairwise_geodesic_distances
from latentgeo.analysis.distributed import ConfigurationMismatchError, JobProgress, TileStore
from latentgeo.analysis.distributed import job as job_module
from latentgeo.analysis.distributed.worker import DecoderSource, cache_info, solve_tile
from latentgeo.solvers import Status

from ...conftest import KINDS, make_decoder

pytestmark = pytest.mark.slow


class Stop(Exception):
    """Raised by a progress callback to interrupt a job."""


def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in root.rglob("*")
        if p.is_file()
    }


def test_matrix_equals_the_in_process_call(
    client: Any, checkpoints: dict[str, Path], points: torch.Tensor
) -> None:
    builds = client.run(cache_info)
    res = distance_matrix(checkpoints["mlp"], points, tile=8, client=client)
    ref = pairwise_geodesic_distances(make_decoder("mlp"), points, chunk_size=8)
    torch.testing.assert_close(res.matrix, ref, rtol=1e-12, atol=0)  # the same batches
    torch.testing.assert_close(res.matrix, res.matrix.T, rtol=0, atol=0)
    assert (res.matrix.diagonal() == 0).all() and (res.matrix + torch.eye(10) > 0).all()
    i, j = torch.triu_indices(10, 10, offset=1)
    assert torch.equal(res.i, i) and torch.equal(res.j, j) and torch.equal(res.length, ref[i, j])
    assert res.num_pairs == 45 and res.num_converged == 45 and res.counts() == {"converged": 45}
    assert res.converged.all() and res.status[0] is Status.CONVERGED
    assert (res.length <= res.line_length * (1 + 1e-8)).all()
    assert (res.tiles_total, res.tiles_computed, res.tiles_resumed) == (6, 6, 0)
    assert not res.failed_tiles and res.summary()["converged"] == 45
    # each worker loaded the decoder at most once for its tiles
    after = client.run(cache_info)
    assert all(after[w]["builds"] - builds[w]["builds"] <= 1 for w in after)
    assert sum(after[w]["hits"] - builds[w]["hits"] for w in after) >= 6 - len(after)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "mlp"])
def test_every_decoder_kind_with_other_tiles_than_chunks(
    kind: str, client: Any, checkpoints: dict[str, Path], points: torch.Tensor
) -> None:
    """Tiles of 7 pairs against one batch of 45: equal to the solver's tolerance (pairs are
    solved independently; lengths agree far below the relative energy tolerance 1e-5)."""
    res = distance_matrix(checkpoints[kind], points[:7], tile=7, client=client)
    ref = pairwise_geodesic_distances(make_decoder(kind), points[:7], chunk_size=None)
    torch.testing.assert_close(res.matrix, ref, rtol=1e-6, atol=1e-9)
    assert res.num_converged == 21


def test_rectangular_matrix(
    client: Any, checkpoints: dict[str, Path], points: torch.Tensor
) -> None:
    z_b = points[:3] + 0.5
    res = distance_matrix(checkpoints["gaussian"], points[:4], z_b, tile=5, client=client)
    i, j = (t.reshape(-1) for t in torch.meshgrid(torch.arange(4), torch.arange(3), indexing="ij"))
    ref = geodesic_distances(make_decoder("gaussian"), points[:4][i], z_b[j], chunk_size=5)
    assert res.matrix.shape == (4, 3) and res.tiles_total == 3
    torch.testing.assert_close(res.matrix[i, j], ref, rtol=1e-12, atol=0)


def test_sparse_mode_approximates_the_dense_matrix_from_above(
    client: Any, checkpoints: dict[str, Path], points: torch.Tensor
) -> None:
    dense = pairwise_geodesic_distances(make_decoder("mlp"), points, chunk_size=None)
    res = distance_matrix(checkpoints["mlp"], points, neighbours=3, tile=8, client=client)
    assert res.neighbours == 3 and res.num_pairs < 45 and res.num_converged == res.num_pairs
    ref = geodesic_distances(make_decoder("mlp"), points[res.i], points[res.j], chunk_size=8)
    torch.testing.assert_close(res.length, ref, rtol=1e-12, atol=0)
    torch.testing.assert_close(res.matrix, res.matrix.T, rtol=0, atol=0)
    assert (res.matrix.diagonal() == 0).all() and torch.isfinite(res.matrix).all()
    off = ~torch.eye(10, dtype=torch.bool)
    rel = (res.matrix[off] - dense[off]) / dense[off]
    assert rel.min() > -1e-6  # a path through the graph is a curve: never shorter
    assert (res.matrix[res.i, res.j] <= res.length + 1e-12).all()
    assert rel.max() > 0.01  # 3 neighbours of 10 random points: a coarse graph (see the docs)
    full = distance_matrix(checkpoints["mlp"], points, neighbours=9, tile=64, client=client)
    assert full.num_pairs == 45  # every pair an edge: the dense matrix again
    torch.testing.assert_close(full.matrix, dense, rtol=1e-6, atol=1e-9)
    assert (res.matrix >= full.matrix - 1e-9).all()  # fewer edges, longer paths


def _fail_tile_one(log: str, source: Any, task: Any, settings: Any) -> Any:
    if task.index == 1:
        with open(log, "a") as fh:
            fh.write("try\n")
        raise RuntimeError("boom in tile 1")
    return solve_tile(source, task, settings)


def test_failing_tile_is_recorded_and_the_rest_finishes(
    client: Any,
    checkpoints: dict[str, Path],
    points: torch.Tensor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tmp_path / "tries.txt"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        flaky = functools.partial(_fail_tile_one, str(log))
        monkeypatch.setattr(job_module, "solve_tile", flaky)
        res = distance_matrix(checkpoints["mlp"], points, tile=8, out=tmp_path / "o", client=client)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert log.read_text() == "try\ntry\n"  # first try and one retry
    assert res.failed_tiles == {1: "RuntimeError: boom in tile 1"}
    assert res.tiles_computed == 5 and res.num_converged == 45 - 8
    assert res.status[8:16] == [Status.FAILED] * 8 and res.counts()["failed"] == 8
    assert torch.isnan(res.length[8:16]).all() and torch.isnan(res.matrix[res.i[8], res.j[8]])
    assert TileStore(tmp_path / "o", {}).done() == {0, 2, 3, 4, 5}
    monkeypatch.undo()  # the rerun computes the failed tile only
    again = distance_matrix(checkpoints["mlp"], points, tile=8, out=tmp_path / "o", client=client)
    assert (again.tiles_resumed, again.tiles_computed, again.failed_tiles) == (5, 1, {})
    ref = pairwise_geodesic_distances(make_decoder("mlp"), points, chunk_size=8)
    torch.testing.assert_close(again.matrix, ref, rtol=1e-12, atol=0)


def test_interrupted_run_resumes_only_the_missing_tiles(
    client: Any, checkpoints: dict[str, Path], points: torch.Tensor, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run = functools.partial(
        distance_matrix, checkpoints["mlp"], points, tile=4, out=out, client=client
    )

    def stop_after_three(progress: JobProgress) -> None:
        if progress.tiles_done >= 3:
            raise Stop

    with pytest.raises(Stop):
        run(progress=stop_after_three)
    store = TileStore(out, {})
    finished = store.done()
    assert len(finished) == 3
    before = _snapshot(out / "tiles")
    seen: list[JobProgress] = []
    res = run(progress=seen.append)
    assert (res.tiles_resumed, res.tiles_computed) == (3, 12 - 3)
    assert len(seen) == 9 and seen[-1].tiles_done == 12 and seen[-1].pairs_left == 0
    assert seen[-1].pairs_done == 45 - sum(len(store.read(k).i) for k in finished)
    after = _snapshot(out / "tiles")
    assert all(after[name] == before[name] for name in before)  # finished tiles untouched
    ref = pairwise_geodesic_distances(make_decoder("mlp"), points, chunk_size=4)
    torch.testing.assert_close(res.matrix, ref, rtol=1e-12, atol=0)
    # a third run finds everything done and starts no cluster at all
    done = distance_matrix(checkpoints["mlp"], points, tile=4, out=out, client=None, workers=1)
    assert (done.tiles_resumed, done.tiles_computed) == (12, 0)
    assert torch.equal(done.matrix, res.matrix)


def test_changed_configuration_is_refused_and_nothing_overwritten(
    client: Any, checkpoints: dict[str, Path], points: torch.Tensor, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    distance_matrix(checkpoints["mlp"], points[:5], tile=4, out=out, client=client)
    before = _snapshot(out)
    changes: list[tuple[dict[str, Any], str]] = [
        ({"tile": 5}, "tiles.tile_size: 4 -> 5"),
        ({"solver_options": {"tol": 1e-7}}, "solver.options.tol: None -> 1e-07"),
        ({"z": points[:5] * 2}, "points.sha256"),
        ({"model": checkpoints["gaussian"]}, "model.sha256"),
        ({"dtype": torch.float32}, "solver.dtype: 'float64' -> 'float32'"),
    ]
    for change, named in changes:
        kwargs = {"model": checkpoints["mlp"], "z": points[:5], "tile": 4, **change}
        model, z = kwargs.pop("model"), kwargs.pop("z")
        with pytest.raises(ConfigurationMismatchError, match=named.replace(".", r"\.")):
            distance_matrix(model, z, out=out, client=client, **kwargs)
    assert _snapshot(out) == before
    moved = tmp_path / "moved.pt"  # the same bytes elsewhere are the same model
    moved.write_bytes(checkpoints["mlp"].read_bytes())
    res = distance_matrix(
        DecoderSource.checkpoint(moved), points[:5], tile=4, out=out, client=client
    )
    assert res.tiles_resumed == res.tiles_total == 3
    assert np.isfinite(res.matrix.numpy()).all()


def test_killed_worker_is_retried_and_the_matrix_is_the_same(
    client: Any, checkpoints: dict[str, Path]
) -> None:
    z = torch.randn(14, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    pids: dict[str, int] = client.run(os.getpid)
    killed: list[int] = []

    def kill_a_busy_worker(progress: JobProgress) -> None:
        if killed:
            return
        busy = [w for w, keys in client.processing().items() if keys and w in pids]
        victim = pids[(busy or list(pids))[0]]
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    res = distance_matrix(checkpoints["mlp"], z, tile=4, client=client, progress=kill_a_busy_worker)
    assert killed and not res.failed_tiles and res.tiles_computed == res.tiles_total == 23
    ref = pairwise_geodesic_distances(make_decoder("mlp"), z, chunk_size=4)
    torch.testing.assert_close(res.matrix, ref, rtol=1e-12, atol=0)
    client.wait_for_workers(2, timeout=120)  # the nanny restarted it
    assert killed[0] not in client.run(os.getpid).values()
