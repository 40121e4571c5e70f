"""The energy methods of ``connecting_geodesic`` as objects, and their string aliases.

``connecting_geodesic(metric, z0, z1, method=SplineEnergy(num_knots=6, max_iter=500))``
is the same as ``method="spline", num_knots=6, max_iter=500``: a method object
holds its curve's settings and an :class:`EnergyOptions`, checked when it is
built, and its :meth:`~EnergyMethod.solve` starts the curves and runs
:func:`minimize_energy`. The names ``"spline"``, ``"discrete"`` and
``"neural"`` stay registered as aliases that build the object from the
keywords.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from latentgeo.curves import CubicSpline, Curve, DiscreteCurve, NeuralGeodesic
from latentgeo.metrics import Metric
from latentgeo.solvers.connecting import register_method
from latentgeo.solvers.energy.options import EnergyOptions, with_options
from latentgeo.solvers.energy.solve import minimize_energy
from latentgeo.solvers.result import GeodesicResult

__all__ = ["DiscreteEnergy", "EnergyMethod", "NeuralEnergy", "SplineEnergy"]

#: Points of the spline start a neural curve is fitted to (``NeuralEnergy(init="spline")``).
FIT_POINTS = 129


class EnergyMethod(abc.ABC):
    """A geodesic method that minimises curve energies: an initial curve and the options.

    Subclasses say which curves to start from (:meth:`initial_curve`); the
    energy options are given as keywords (the fields of
    :class:`EnergyOptions`) or as ``options=``, keywords overriding it.

    Attributes:
        name: the method's name in ``connecting_geodesic`` and in results.
        options: the energy options, validated.
    """

    name: ClassVar[str]

    def __init__(self, options: EnergyOptions | None, keywords: dict[str, Any]) -> None:
        self.options = with_options(options, keywords, type(self).__name__)

    @abc.abstractmethod
    def initial_curve(self, z0: Tensor, z1: Tensor) -> Curve:
        """The B curves to start from, from ``z0`` to ``z1`` ``(B, d)`` (detached)."""

    def solve(self, metric: Metric, z0: Tensor, z1: Tensor) -> GeodesicResult:
        """Geodesics between ``z0`` and ``z1`` ``(B, d)`` under ``metric``.

        Args:
            metric: a validated metric (``connecting_geodesic`` converts decoders).
            z0: start points ``(B, d)``; the lengths are differentiable in them.
            z1: end points ``(B, d)``.
        """
        curve = self.initial_curve(z0.detach(), z1.detach())
        result = minimize_energy(metric, curve, z0=z0, z1=z1, options=self.options)
        result.method = self.name
        return result

    def _settings(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "options" and not k.startswith("_")}

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self._settings().items())
        return f"{type(self).__name__}({settings}, options={self.options!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), self.options, *self._settings().values()))


def _count(value: object, name: str, least: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    return value


class SplineEnergy(EnergyMethod):
    """Cubic B-splines (the default method): per-pair L-BFGS on the energy, refined by
    knot insertion.

    Args:
        num_knots: interior knots of the initial splines (``>= 0``).
        options: energy options (default: :class:`EnergyOptions()`).
        **energy_options: fields of :class:`EnergyOptions`, overriding ``options``.

    Example:
        >>> import torch
        >>> from latentgeo.solvers import connecting_geodesic
        >>> from latentgeo.testing import StereographicSphere
        >>> z0, z1 = torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)
        >>> method = SplineEnergy(num_knots=4, max_iter=200)
        >>> connecting_geodesic(StereographicSphere(), z0, z1, method=method).status
        [Status.CONVERGED]
    """

    name = "spline"

    def __init__(
        self, num_knots: int = 6, *, options: EnergyOptions | None = None, **energy_options: Any
    ) -> None:
        self.num_knots = _count(num_knots, "num_knots", 0)
        super().__init__(options, energy_options)

    def initial_curve(self, z0: Tensor, z1: Tensor) -> Curve:
        return CubicSpline(z0, z1, num_knots=self.num_knots)


class DiscreteEnergy(EnergyMethod):
    """Polylines of ``num_points`` vertices: per-pair L-BFGS on the energy.

    Args:
        num_points: vertices per curve, end points included (``>= 2``). (The
            energy's own ``num_points`` can be set through ``options``.)
        options: energy options (default: :class:`EnergyOptions()`).
        **energy_options: fields of :class:`EnergyOptions`, overriding ``options``.
    """

    name = "discrete"

    def __init__(
        self, num_points: int = 32, *, options: EnergyOptions | None = None, **energy_options: Any
    ) -> None:
        self.num_points = _count(num_points, "num_points", 2)
        super().__init__(options, energy_options)

    def initial_curve(self, z0: Tensor, z1: Tensor) -> Curve:
        return DiscreteCurve(z0, z1, num_points=self.num_points)


class NeuralEnergy(EnergyMethod):
    """Neural curves (an MLP ``t ↦ z``): per-pair L-BFGS on the energy, at 64
    Gauss–Legendre points unless ``num_points`` says otherwise. A pair is converged
    once the spline fitted to its curve is stationary to ``tol`` too (see
    :mod:`~latentgeo.solvers.energy.stationarity`): slower than the step test alone,
    which stops far from the minimum on these curves.

    ``init="spline"`` starts each network from the spline method's geodesic (the
    same energy options, the spline's own number of points), fitted by least squares
    (:meth:`~latentgeo.curves.NeuralGeodesic.fit`), instead of the straight line of
    Chen et al. (``init="line"``, the default); the same test then decides
    convergence, often at the first iteration (``iterations`` counts the neural ones;
    ``info["start_converged"]`` says which spline starts converged). In float64 on
    MLP decoders 50 → 784 this was 7–9× faster and 10–18× closer to the distance
    (``benchmarks/neural_init.py``). It is no cross-check of the spline solver, and
    it gains little where a network fits the spline poorly: in float32 (its features
    are ill-conditioned), or for geodesics far out in coordinates (the stereographic
    sphere's pole).

    Args:
        hidden: hidden layer widths of each curve's network.
        activation: its activation.
        init: the start, ``"line"`` (the straight line, Chen et al.) or ``"spline"`` (the
            spline method's geodesics, the networks fitted to them by least squares).
        options: energy options (default: :class:`EnergyOptions()`); its
            ``generator`` also draws the networks' initial weights.
        **energy_options: fields of :class:`EnergyOptions`, overriding ``options``.
    """

    name = "neural"
    DEFAULT_POINTS: ClassVar[int] = 64

    def __init__(
        self,
        hidden: Sequence[int] = (32, 32),
        activation: str | Callable[[Tensor], Tensor] = "tanh",
        *,
        init: Literal["line", "spline"] = "line",
        options: EnergyOptions | None = None,
        **energy_options: Any,
    ) -> None:
        if init not in ("line", "spline"):
            raise ValueError(f"init must be 'line' or 'spline', got {init!r}")
        self.hidden, self.activation, self.init = tuple(hidden), activation, init
        given = energy_options.get("num_points", None if options is None else options.num_points)
        self._spline_points = given  # the spline start's own default where none was given
        if given is None:
            energy_options["num_points"] = self.DEFAULT_POINTS
        super().__init__(options, energy_options)

    def solve(self, metric: Metric, z0: Tensor, z1: Tensor) -> GeodesicResult:
        if self.init == "line":
            return super().solve(metric, z0, z1)
        options = replace(self.options, num_points=self._spline_points)
        start = SplineEnergy(options=options).solve(metric, z0.detach(), z1.detach())
        curve = self.initial_curve(z0.detach(), z1.detach())
        t = torch.linspace(0.0, 1.0, FIT_POINTS, dtype=z0.dtype, device=z0.device)
        with torch.no_grad():
            points = start.curve(t)
            line = z0.detach()[:, None] + t[:, None] * (z1 - z0).detach()[:, None]
            usable = points.isfinite().all(-1).all(-1)[:, None, None]
        curve.fit(t, torch.where(usable, points, line))  # a non-finite start: the line
        result = minimize_energy(metric, curve, z0=z0, z1=z1, options=self.options)
        result.method = self.name
        result.info["start_converged"] = start.converged
        return result

    def initial_curve(self, z0: Tensor, z1: Tensor) -> NeuralGeodesic:
        return NeuralGeodesic(
            z0, z1, hidden=self.hidden, activation=self.activation, generator=self.options.generator
        )


@register_method("spline")
def _spline(metric: Metric, z0: Tensor, z1: Tensor, **options: Any) -> GeodesicResult:
    """``method="spline"``: :class:`SplineEnergy` built from the keywords."""
    return SplineEnergy(**options).solve(metric, z0, z1)


@register_method("discrete")
def _discrete(metric: Metric, z0: Tensor, z1: Tensor, **options: Any) -> GeodesicResult:
    """``method="discrete"``: :class:`DiscreteEnergy` built from the keywords."""
    return DiscreteEnergy(**options).solve(metric, z0, z1)


@register_method("neural")
def _neural(metric: Metric, z0: Tensor, z1: Tensor, **options: Any) -> GeodesicResult:
    """``method="neural"``: :class:`NeuralEnergy` built from the keywords."""
    return NeuralEnergy(**options).solve(metric, z0, z1)
