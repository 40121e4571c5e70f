"""Exact geometries and tolerances for testing metrics and solvers."""

from latentgeo.testing.geometries import LinearMap, Paraboloid, PoincareDisk, StereographicSphere
from latentgeo.testing.tolerances import assert_close, tolerance

__all__ = [
    "LinearMap",
    "Paraboloid",
    "PoincareDisk",
    "StereographicSphere",
    "assert_close",
    "tolerance",
]
