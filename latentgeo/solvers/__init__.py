"""Geodesic solvers: energy minimisation, shooting, boundary-value and graph methods."""

from latentgeo.solvers.connecting import (
    GeodesicError,
    available_methods,
    connecting_geodesic,
    register_method,
)
from latentgeo.solvers.result import GeodesicResult

__all__ = [
    "GeodesicError",
    "GeodesicResult",
    "available_methods",
    "connecting_geodesic",
    "register_method",
]
