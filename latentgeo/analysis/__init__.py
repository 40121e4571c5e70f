"""Analyses of the seed papers.

* distances: :func:`geodesic_distances` (pairs), :func:`pairwise_geodesic_distances`
  (all pairs, chunked, in this process), :func:`pairwise_geodesics` (the same with
  per-pair statuses), :func:`distance_matrix` (on Dask workers, resumable;
  :mod:`latentgeo.analysis.distributed`, Dask imported only when a job runs);
* Michelis et al.: :func:`relative_improvement`, :func:`michelis_pairs`,
  :func:`monte_carlo_relative_improvement`;
* Syrota et al.: :func:`coefficient_of_variation`, :func:`paired_t_test`,
  :func:`compare_retrainings` (both over converged pairs, with the counts);
* Arvanitidis et al.: :func:`riemannian_random_walk`, :func:`geodesic_kmeans`
  (with :func:`kmedoids` and :func:`f_measure`);
* :func:`off_data_fraction`: how much of a curve leaves the data;
* what converged (:mod:`latentgeo.analysis.counts`): every result counts its
  converged pairs and keeps their statuses; means and tests are over converged
  pairs unless ``include_all=True``; :func:`converged_note` ("converged k/n") and
  :func:`convergence_warning` (a ``WARNING:`` line below 90 %).
"""

from latentgeo.analysis.counts import (
    CONVERGED_SHARE,
    ConvergenceCounts,
    converged_note,
    convergence_warning,
    status_counts,
)
from latentgeo.analysis.distances import (
    PairwiseDistances,
    geodesic_distances,
    iter_geodesics,
    lengths_and_status,
    pairwise_geodesic_distances,
    pairwise_geodesics,
    round_robin,
)
from latentgeo.analysis.distributed import (
    DecoderSource,
    DistanceMatrixResult,
    JobProgress,
    distance_matrix,
)
from latentgeo.analysis.improvement import (
    ImprovementResult,
    michelis_pairs,
    monte_carlo_relative_improvement,
    relative_improvement,
    straight_line_length,
)
from latentgeo.analysis.kmeans import (
    KMeansResult,
    converged_points,
    f_measure,
    geodesic_kmeans,
    kmedoids,
)
from latentgeo.analysis.random_walk import metric_inverse_sqrt, riemannian_random_walk
from latentgeo.analysis.support import nearest_neighbour_spacing, off_data_fraction
from latentgeo.analysis.variation import (
    PairedTTest,
    RetrainingComparison,
    coefficient_of_variation,
    compare_retrainings,
    paired_t_test,
)

__all__ = [
    "CONVERGED_SHARE",
    "ConvergenceCounts",
    "DecoderSource",
    "DistanceMatrixResult",
    "ImprovementResult",
    "JobProgress",
    "KMeansResult",
    "PairedTTest",
    "PairwiseDistances",
    "RetrainingComparison",
    "coefficient_of_variation",
    "compare_retrainings",
    "converged_note",
    "converged_points",
    "convergence_warning",
    "distance_matrix",
    "f_measure",
    "geodesic_distances",
    "geodesic_kmeans",
    "iter_geodesics",
    "kmedoids",
    "lengths_and_status",
    "metric_inverse_sqrt",
    "michelis_pairs",
    "monte_carlo_relative_improvement",
    "nearest_neighbour_spacing",
    "off_data_fraction",
    "paired_t_test",
    "pairwise_geodesic_distances",
    "pairwise_geodesics",
    "relative_improvement",
    "riemannian_random_walk",
    "round_robin",
    "status_counts",
    "straight_line_length",
]
