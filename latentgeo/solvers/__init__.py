"""Geodesic solvers: energy minimisation, shooting, boundary-value and graph methods."""

from latentgeo.solvers.connecting import (
    GeodesicError,
    available_methods,
    connecting_geodesic,
    register_method,
)

# Importing a method module registers its methods with connecting_geodesic.
from latentgeo.solvers.energy import minimize_energy
from latentgeo.solvers.result import GeodesicResult

__all__ = [
    "GeodesicError",
    "GeodesicResult",
    "available_methods",
    "connecting_geodesic",
    "minimize_energy",
    "register_method",
]
