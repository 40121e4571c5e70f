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
from latentgeo.geometry.interpolation import (
    Interpolation,
    decode_curve,
    decoded_mean,
    straight_line,
)
from latentgeo.geometry.land import LAND, MonteCarloVolume, standard_draws, tangent_volume
from latentgeo.geometry.land_fit import LANDFit, fit_land
from latentgeo.geometry.means import FrechetMeanResult, LogMaps, frechet_mean, log_maps
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
