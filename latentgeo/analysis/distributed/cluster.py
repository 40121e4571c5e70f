"""Where a job runs: a given Dask client, a scheduler address, or an embedded LocalCluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["WORKER_CONFIG", "check_workers", "connect"]

#: Dask settings of the embedded cluster's workers. Dask's default
#: ``MALLOC_TRIM_THRESHOLD_=65536`` makes glibc hand every freed block over 64 KiB back to
#: the OS; the solvers' many short-lived tensors then page-fault again and again: a tile
#: took 1.8-2x the CPU time of the same tile in process (measured, MLP 2-64-64-784,
#: 128 pairs); unset, 1.0-1.05x. The statistical profiler (10 ms samples) only feeds a
#: dashboard nobody reads here. Use the same settings on a cluster of your own
#: (docs/distances-at-scale.md).
WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}


def _workers_default() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_workers(workers: int | None) -> int | None:
    """``workers`` itself if it is ``None`` or a positive int, else ``ValueError``."""
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"workers must be None or a positive int, got {workers!r}")
    return workers


@contextmanager
def connect(
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    timeout: float = 10.0,
) -> Iterator[Any]:
    """A Dask client: ``client`` itself, one connected to ``scheduler``, or one on an embedded
    ``LocalCluster`` (``workers`` processes, one thread each, on 127.0.0.1; its HTTP server on
    a free loopback port, never the shared 8787; workers set up by :data:`WORKER_CONFIG`).

    What is opened here is closed on the way out; a given ``client`` is left open.

    Raises:
        ImportError: ``distributed`` is not installed.
        ConnectionError: no scheduler answers at ``scheduler`` within ``timeout`` seconds.
    """
    if client is not None:
        yield client
        return
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            'distance_matrix needs Dask distributed: pip install "latentgeo[distributed]"'
        ) from err
    if scheduler is not None:
        try:
            opened = distributed.Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, ValueError) as err:  # TimeoutError is an OSError
            raise ConnectionError(
                f"cannot reach a Dask scheduler at {scheduler!r} within {timeout} s: {err}"
            ) from err
        with opened:
            yield opened
        return
    n = _workers_default() if workers is None else check_workers(workers)
    import dask

    with dask.config.set(WORKER_CONFIG):  # read by the nannies as they spawn the workers
        cluster = distributed.LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # loopback, any free port: never "8787 in use"
        )
    with cluster, distributed.Client(cluster, set_as_default=False) as local:
        yield local
