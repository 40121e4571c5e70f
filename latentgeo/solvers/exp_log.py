"""Exponential and logarithm maps (kept importable here; the code lives in
:mod:`~latentgeo.solvers.expmap`, :mod:`~latentgeo.solvers.logmap` and
:mod:`~latentgeo.solvers.shooting`)."""

from latentgeo.solvers.expmap import (
    ExpMapResult,
    ShootingError,
    exp_map,
    exp_map_result,
    geodesic_curve,
)
from latentgeo.solvers.logmap import LogMapResult
from latentgeo.solvers.shooting import log_map, log_map_result

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
