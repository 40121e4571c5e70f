"""Geometry beyond distances: parallel transport, curvature, Fréchet means, the LAND.

* connection and transport: :func:`connection` (``Γ(u, w)``),
  :func:`parallel_transport` (along ``exp_z(t v)``), :func:`transport_along_curve`;
"""

from latentgeo.geometry.connection import connection
from latentgeo.geometry.curvature import (
    curvature_map,
    riemann_tensor,
    scalar_curvature,
    sectional_curvature,
)
from latentgeo.geometry.means import FrechetMeanResult, LogMaps, frechet_mean, log_maps
from latentgeo.geometry.transport import (
    TransportResult,
    parallel_transport,
    parallel_transport_result,
    transport_along_curve,
)

__all__ = [
    "FrechetMeanResult",
    "LogMaps",
    "TransportResult",
    "connection",
    "curvature_map",
    "frechet_mean",
    "log_maps",
    "parallel_transport",
    "parallel_transport_result",
    "riemann_tensor",
    "scalar_curvature",
    "sectional_curvature",
    "transport_along_curve",
]
