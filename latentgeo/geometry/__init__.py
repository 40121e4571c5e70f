"""Geometry beyond distances: transport, curvature, Fréchet means, the LAND, interpolations.

Built on the batched exponential and logarithm maps of :mod:`latentgeo.solvers`
and forward-mode derivatives of the metric; every function takes a metric or a
decoder and works on many points (pairs, curves, sets) at once.

* connection and transport: :func:`connection` (``Γ(u, w)``),
  :func:`parallel_transport` (along ``exp_z(t v)``, integrated with the
  geodesic), :func:`transport_along_curve` (along any curve module);
* curvature: :func:`riemann_tensor` (small ``d``), :func:`sectional_curvature`
  (any ``d``), :func:`scalar_curvature`, :func:`curvature_map`;
* means: :func:`frechet_mean` (Karcher means of S sets at once), :func:`log_maps`;
* distributions: :class:`LAND` (a locally adaptive normal distribution, or a
  mixture of them) and :func:`fit_land` (EM);
* interpolations: :func:`decode_curve` (decoded at even arc length),
  :func:`straight_line`, :func:`decoded_mean`.

The local diagonal PCA metric of the LAND paper is
:class:`latentgeo.metrics.LocalPCAMetric`.
"""

from latentgeo.geometry.connection import connection
from latentgeo.geometry.curvature import (
    curvature_map,
    riemann_tensor,
    scalar_curvature,
    sectional_curvature,
)
from latentgeo.geometry.interpolation import (
    Interpolation,
    decode_curve,
    decoded_mean,
    straight_line,
)
from latentgeo.geometry.land import LAND, MonteCarloVolume, standard_draws, tangent_volume
from latentgeo.geometry.land_fit import LANDFit, fit_land
from latentgeo.geometry.logmaps import LogMaps, log_maps
from latentgeo.geometry.means import FrechetMeanResult, frechet_mean
from latentgeo.geometry.transport import (
    TransportResult,
    parallel_transport,
    parallel_transport_result,
    transport_along_curve,
)

__all__ = [
    "LAND",
    "FrechetMeanResult",
    "Interpolation",
    "LANDFit",
    "LogMaps",
    "MonteCarloVolume",
    "TransportResult",
    "connection",
    "curvature_map",
    "decode_curve",
    "decoded_mean",
    "fit_land",
    "frechet_mean",
    "log_maps",
    "parallel_transport",
    "parallel_transport_result",
    "riemann_tensor",
    "scalar_curvature",
    "sectional_curvature",
    "standard_draws",
    "straight_line",
    "tangent_volume",
    "transport_along_curve",
]
