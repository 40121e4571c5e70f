"""Geodesic solvers: energy minimisation, shooting, boundary-value and graph methods."""

from latentgeo.solvers import bvp, graph  # noqa: F401  (register "bvp" and "graph")
from latentgeo.solvers.connecting import (
    GeodesicError,
    GeodesicMethod,
    available_methods,
    connecting_geodesic,
    register_method,
)

# Importing a method module registers its methods with connecting_geodesic.
from latentgeo.solvers.energy import (
    DiscreteEnergy,
    EnergyMethod,
    EnergyOptions,
    NeuralEnergy,
    SplineEnergy,
    minimize_energy,
)
from latentgeo.solvers.exp_log import (
    ExpMapResult,
    LogMapResult,
    ShootingError,
    exp_map,
    exp_map_result,
    geodesic_curve,
    log_map,
    log_map_result,
)
from latentgeo.solvers.hermite import HermiteCurve
from latentgeo.solvers.ode import geodesic_acceleration, geodesic_residual
from latentgeo.solvers.result import GeodesicResult
from latentgeo.solvers.status import SolverError, Status

__all__ = [
    "DiscreteEnergy",
    "EnergyMethod",
    "EnergyOptions",
    "ExpMapResult",
    "GeodesicError",
    "GeodesicMethod",
    "GeodesicResult",
    "HermiteCurve",
    "LogMapResult",
    "NeuralEnergy",
    "ShootingError",
    "SolverError",
    "SplineEnergy",
    "Status",
    "available_methods",
    "connecting_geodesic",
    "exp_map",
    "exp_map_result",
    "geodesic_acceleration",
    "geodesic_curve",
    "geodesic_residual",
    "log_map",
    "log_map_result",
    "minimize_energy",
    "register_method",
]
