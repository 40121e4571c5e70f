"""Geodesic distance matrices on Dask distributed: resumable, fault-tolerant, laptop to cluster.

* :func:`distance_matrix`: the job (pairs cut into tiles, one Dask task per
  tile, an embedded ``LocalCluster`` unless a client or a scheduler address
  is given) = :func:`plan_job` (every check, before any work) then
  :func:`run_job`.
* :class:`DistanceMatrixResult`: the matrix, per-pair lengths, straight-line
  lengths and :class:`~latentgeo.solvers.Status`, failed tiles and counts;
  :class:`JobProgress`: what the ``progress`` callback receives.
* :class:`DecoderSource`: how workers get the decoder (checkpoint or factory).
* :class:`TileStore` and :class:`ConfigurationMismatchError`: the output
  folder (manifest + one file per tile) that makes a job resumable.
* :class:`TilePlan`: which pairs each tile holds; :func:`knn_pairs` and
  :func:`complete_by_shortest_paths`: the sparse mode.

Nothing here imports Dask until a job runs (``pip install "latentgeo[distributed]"``).
"""

from latentgeo.analysis.distributed.job import distance_matrix, run_job
from latentgeo.analysis.distributed.plan import DistanceJob, plan_job
from latentgeo.analysis.distributed.result import DistanceMatrixResult, JobProgress
from latentgeo.analysis.distributed.sparse import complete_by_shortest_paths, knn_pairs
from latentgeo.analysis.distributed.store import ConfigurationMismatchError, TileStore
from latentgeo.analysis.distributed.tiles import TilePlan
from latentgeo.analysis.distributed.worker import DecoderSource, SolveSettings, solve_tile

__all__ = [
    "ConfigurationMismatchError",
    "DecoderSource",
    "DistanceJob",
    "DistanceMatrixResult",
    "JobProgress",
    "SolveSettings",
    "TilePlan",
    "TileStore",
    "complete_by_shortest_paths",
    "distance_matrix",
    "knn_pairs",
    "plan_job",
    "run_job",
    "solve_tile",
]
