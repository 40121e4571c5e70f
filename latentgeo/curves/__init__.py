"""Batched curves with fixed end points, and their lengths and energies.

Every curve kind holds B curves ``[0, 1] → R^d`` from ``z0`` to ``z1``
(``(B, d)`` each): ``curve(t)`` and ``curve.velocity(t)`` give ``(B, T, d)``
for ``t`` of shape ``(T,)``.
"""

from latentgeo.curves.base import Curve, LinearInControlPoints
from latentgeo.curves.discrete import DiscreteCurve
from latentgeo.curves.length import ESTIMATORS, curve_energy, curve_length
from latentgeo.curves.neural import NeuralGeodesic
from latentgeo.curves.reparam import ReparametrizedCurve, constant_speed
from latentgeo.curves.spline import CubicSpline, gather_rows
from latentgeo.curves.stack import CurveStack

__all__ = [
    "ESTIMATORS",
    "CubicSpline",
    "Curve",
    "CurveStack",
    "DiscreteCurve",
    "LinearInControlPoints",
    "NeuralGeodesic",
    "ReparametrizedCurve",
    "constant_speed",
    "curve_energy",
    "curve_length",
    "gather_rows",
]
