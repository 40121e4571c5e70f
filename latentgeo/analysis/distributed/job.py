"""``distance_matrix``: geodesic distance matrices on Dask distributed, resumable.

:func:`~latentgeo.analysis.distributed.plan_job` checks everything before
any work (the checkpoint, the points, the solver options, the output
folder); :func:`run_job` connects to a cluster (a given ``Client``, a scheduler address, or an
embedded ``LocalCluster`` started and closed here), submits the missing
tiles a window at a time (one task per tile, ``retries`` for failing tasks;
Dask reschedules the tasks of a worker that dies), writes each finished tile
to the output folder as it arrives, and assembles the result.
:func:`distance_matrix` does both.

Dask is imported only when a job runs: ``import latentgeo.analysis`` works
without it (install ``latentgeo[distributed]``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import torch

from latentgeo.analysis.distributed.assemble import assemble
from latentgeo.analysis.distributed.cluster import check_workers, connect
from latentgeo.analysis.distributed.plan import DistanceJob, ModelRef, Points, plan_job
from latentgeo.analysis.distributed.result import DistanceMatrixResult, JobProgress
from latentgeo.analysis.distributed.worker import TileResult, solve_tile

__all__ = ["distance_matrix", "run_job"]


def distance_matrix(
    model: ModelRef,
    z: Points,
    z_b: Points | None = None,
    *,
    tile: int = 256,
    out: str | os.PathLike[str] | None = None,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    neighbours: int | None = None,
    method: str = "spline",
    solver_options: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    device: str = "cpu",
    threads: int | None = 1,
    retries: int = 1,
    timeout: float = 10.0,
    progress: Callable[[JobProgress], None] | None = None,
) -> DistanceMatrixResult:
    """Geodesic distances between many points, computed tile by tile on Dask workers.

    The pairs (``i < j`` for one set of points, all ``(i, j)`` for two, or the
    k-nearest-neighbour edges with ``neighbours=k``) are cut into tiles of
    ``tile`` pairs; each tile is one Dask task solving its geodesics in one
    batched :func:`~latentgeo.solvers.connecting_geodesic` call. Workers load
    the decoder from its checkpoint once and keep it; tasks carry indices and
    coordinates only. Per tile this computes what
    :func:`~latentgeo.analysis.pairwise_geodesic_distances` computes per chunk.

    Args:
        model: a checkpoint written by :func:`latentgeo.models.save` (any
            decoder latentgeo saves, or a VAE: its decoder), or a
            :class:`DecoderSource` (a checkpoint or a factory's import path).
        z: points ``(N, d)`` (Tensor or NumPy array).
        z_b: second points ``(M, d)`` for the ``(N, M)`` matrix; ``None``: ``z`` against itself.
        tile: pairs per tile (one task, one batched solve).
        out: output folder for the finished tiles and a manifest; a rerun with
            the same configuration skips the finished tiles, another
            configuration is refused. ``None``: keep everything in memory.
        client: a ``distributed.Client`` to use as it is (not closed here).
        scheduler: a scheduler address (``"tcp://host:8786"``) to connect to
            (the connection is closed after, the cluster left running).
        workers: worker processes of the embedded ``LocalCluster`` started when
            neither ``client`` nor ``scheduler`` is given (default: the CPU count).
        neighbours: sparse mode: geodesics only to the ``k`` nearest
            (Euclidean) neighbours, the rest of the matrix by shortest paths on
            that graph (an approximation from above; see
            :mod:`~latentgeo.analysis.distributed.sparse`).
        method: the solver method (default ``"spline"``).
        solver_options: other options of the solver (JSON-able: they go into the manifest).
        dtype: ``torch.float32`` or ``torch.float64`` (default: the checkpoint's).
        device: where the workers compute (``"cpu"``, ``"cuda"``).
        threads: torch threads per worker process (``None``: leave them).
        retries: extra tries of a tile whose task raised; a tile failing
            ``retries + 1`` times is recorded in ``failed_tiles``.
        timeout: seconds to wait for a scheduler at ``scheduler``.
        progress: called with a :class:`JobProgress` after each tile (in this
            process); an exception it raises stops the job, finished tiles kept.

    Returns:
        A :class:`DistanceMatrixResult`: the matrix, per-pair lengths, straight-line
        lengths and statuses, failed tiles with their errors, and tile counts.

    Example (not run as a doctest: it starts worker processes)::

        from latentgeo.models import save
        save(decoder, "decoder.pt")
        result = distance_matrix("decoder.pt", z, tile=256, out="runs/dist")  # z: (N, d)
        result.matrix                      # (N, N)
        result.counts()                    # {"converged": ..., "max_iter": ...}
        # interrupted? the same call again computes only the missing tiles

    Raises:
        FileNotFoundError, latentgeo.models.CheckpointError: missing or damaged checkpoint.
        ValueError, TypeError: bad points (shape, NaN/Inf, dimension the decoder
            does not take), options, or an output folder of another configuration.
        ConnectionError: no scheduler at ``scheduler`` within ``timeout``.
        ImportError: Dask is not installed.
    """
    job = plan_job(
        model, z, z_b, tile=tile, out=out, neighbours=neighbours, method=method,
        solver_options=solver_options, dtype=dtype, device=device, threads=threads,
    )  # fmt: skip
    return run_job(
        job, client=client, scheduler=scheduler, workers=workers, retries=retries,
        timeout=timeout, progress=progress,
    )  # fmt: skip


def run_job(
    job: DistanceJob,
    *,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    retries: int = 1,
    timeout: float = 10.0,
    progress: Callable[[JobProgress], None] | None = None,
) -> DistanceMatrixResult:
    """Solve the tiles of ``job`` not yet in its output folder, and assemble the result.

    Arguments as in :func:`distance_matrix`. No cluster is started when every
    tile is already in the output folder.
    """
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0, got {retries!r}")
    check_workers(workers)
    if client is not None and scheduler is not None:
        raise ValueError("give a client or a scheduler address, not both")
    if workers is not None and (client is not None or scheduler is not None):
        raise ValueError(
            "workers sizes the embedded local cluster: leave it None with a client or a scheduler"
        )
    done = job.finished_tiles()
    todo = [k for k in range(job.plan.num_tiles) if k not in done]
    results: dict[int, TileResult] = {}
    failed: dict[int, str] = {}
    if todo:
        with connect(client, scheduler, workers, timeout) as dask_client:
            _Runner(job, dask_client, retries, progress, len(done)).run(todo, results, failed)
    return assemble(job, results, failed, resumed=len(done))


class _Runner:
    """Submits tiles a window at a time and handles each as it finishes."""

    def __init__(
        self,
        job: DistanceJob,
        client: Any,
        retries: int,
        progress: Callable[[JobProgress], None] | None,
        resumed: int,
    ) -> None:
        self.job, self.client, self.retries, self.progress = job, client, retries, progress
        self.resumed = resumed
        self._window, self._window_at = 2, -1.0

    def window(self) -> int:
        """Tasks to keep in flight: twice the cluster's threads (re-read at most once a
        second, so that a cluster that scales up, or loses workers, gets what fits)."""
        now = time.monotonic()
        if now - self._window_at > 1.0:
            self._window = max(2, 2 * sum(self.client.nthreads().values()))
            self._window_at = now
        return self._window

    def submit(self, k: int) -> Any:
        return self.client.submit(
            solve_tile, self.job.source, self.job.task(k), self.job.settings,
            pure=False, retries=self.retries, key=f"latentgeo-tile-{k}-{os.urandom(4).hex()}",
        )  # fmt: skip

    def run(self, todo: list[int], results: dict[int, TileResult], failed: dict[int, str]) -> None:
        """Solve the tiles ``todo``; finished ones go to the store (or ``results``), failed
        ones to ``failed``. Unfinished tasks are cancelled on the way out, however it ends."""
        from distributed import as_completed

        plan, store = self.job.plan, self.job.store
        pending = iter(todo)
        tile_of: dict[Any, int] = {}

        def submit_next() -> Any:
            k = next(pending, None)
            if k is None:
                return None
            future = self.submit(k)
            tile_of[future.key] = k
            return future

        active = {f for f in (submit_next() for _ in range(self.window())) if f is not None}
        queue = as_completed(list(active), loop=self.client.loop)
        pairs_left = sum(plan.tile_size_of(k) for k in todo)
        pairs_done, done, start = 0, self.resumed, time.perf_counter()
        try:
            for future in queue:
                active.discard(future)
                k = tile_of.pop(future.key)
                size = plan.tile_size_of(k)
                if future.status == "finished":
                    result = future.result()
                    if store is not None:
                        store.write(result)
                    else:
                        results[k] = result
                    pairs_done, done = pairs_done + size, done + 1
                elif future.status == "error":
                    err = future.exception()
                    failed[k] = f"{type(err).__name__}: {err}"
                else:
                    failed[k] = f"task {future.status}"
                pairs_left -= size
                future.release()
                while len(active) < self.window() and (following := submit_next()) is not None:
                    queue.add(following)
                    active.add(following)
                if self.progress is not None:
                    self.progress(
                        JobProgress(done, len(failed), plan.num_tiles, pairs_done, pairs_left,
                                    time.perf_counter() - start)
                    )  # fmt: skip
        finally:
            if active:
                self.client.cancel(list(active))
