"""Exponential and logarithm maps (kept importable here; the code lives in
:mod:`~latentgeo.solvers.expmap`, :mod:`~latentgeo.solvers.logmap` and
:mod:`~latentgeo.solvers.shooting`)."""

# the package's own names, so that the two can never disagree
from latentgeo.solvers import (
    ExpMapResult,
    LogMapResult,
    ShootingError,
    exp_map,
    exp_map_result,
    geodesic_curve,
    log_map,
    log_map_result,
)

__all__ = [
    "ExpMapResult",
    "LogMapResult",
    "ShootingError",
    "exp_map",
    "exp_map_result",
    "geodesic_curve",
    "log_map",
    "log_map_result",
]
