"""Exact geometries, tolerances and a reusable property suite for testing metrics and solvers.

* :mod:`.geometries`: closed-form test geometries.
* :func:`check_metric_identities`: the metric identities, for any metric (yours too).
* :mod:`latentgeo.testing.strategies` (import it explicitly; needs ``hypothesis``):
  hypothesis strategies for latent points, tangent vectors and small random
  decoders and metrics of every kind.
"""

from latentgeo.testing.geometries import (
    LinearMap,
    Paraboloid,
    PoincareDisk,
    StereographicSphere,
    near_conjugate_pairs,
)
from latentgeo.testing.properties import check_metric_identities
from latentgeo.testing.tolerances import assert_close, tolerance

__all__ = [
    "LinearMap",
    "Paraboloid",
    "PoincareDisk",
    "StereographicSphere",
    "assert_close",
    "check_metric_identities",
    "near_conjugate_pairs",
    "tolerance",
]
