"""``connecting_geodesic``: one entry point, many methods.

A method is either an object with a ``solve`` method (a
:class:`GeodesicMethod`, e.g. :class:`~latentgeo.solvers.SplineEnergy`),
which holds its own options:

.. code-block:: python

    connecting_geodesic(metric, z0, z1, method=SplineEnergy(num_knots=6, max_iter=500))

or a name registered with :func:`register_method`, whose options are
keywords of ``connecting_geodesic``:

.. code-block:: python

    @register_method("spline")
    def _spline(metric: Metric, z0: Tensor, z1: Tensor, **options) -> GeodesicResult: ...

Either receives a validated :class:`~latentgeo.metrics.Metric` and end points
``z0, z1`` of shape ``(B, d)`` (finite, same dtype and device), and returns a
:class:`GeodesicResult`. ``connecting_geodesic`` handles ``throw``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from latentgeo._validation import check_same_shape
from latentgeo.memory import use_memory_budget
from latentgeo.metrics import Metric, MetricLike, as_metric
from latentgeo.solvers.result import GeodesicError, GeodesicResult

__all__ = [
    "GeodesicError",
    "GeodesicMethod",
    "available_methods",
    "connecting_geodesic",
    "register_method",
    "takes_option",
]

MethodFn = Callable[..., GeodesicResult]
_METHODS: dict[str, MethodFn] = {}


@runtime_checkable
class GeodesicMethod(Protocol):
    """What ``connecting_geodesic(..., method=obj)`` accepts besides a name: any object
    with this ``solve`` method, holding its own options."""

    def solve(self, metric: Metric, z0: Tensor, z1: Tensor) -> GeodesicResult:
        """Geodesics between ``z0`` and ``z1`` ``(B, d)`` (validated) under ``metric``."""
        ...


def register_method(name: str) -> Callable[[MethodFn], MethodFn]:
    """Register a geodesic solver under ``name`` (a decorator)."""

    def decorate(fn: MethodFn) -> MethodFn:
        _METHODS[name] = fn
        return fn

    return decorate


def _keywords(method: str) -> tuple[list[str], bool]:
    """The keyword options of the registered ``method``, and whether it takes ``**options``."""
    params = inspect.signature(_METHODS[method]).parameters.values()
    named = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    return named, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _check_options(method: str, options: dict[str, Any]) -> None:
    """Refuse options the method ``method`` does not take, listing those it does (a method
    taking ``**options`` checks its own)."""
    accepted, any_more = _keywords(method)
    if any_more:
        return
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"method={method!r} does not take the option(s) {unknown}; its options are "
            f"{accepted} (see docs/solver-options.md)"
        )


def takes_option(method: object, name: str) -> bool:
    """Whether ``connecting_geodesic(..., method=method)`` takes the keyword option ``name``
    (a method taking ``**options`` is assumed to; a method object takes none: its options
    are its own)."""
    if not isinstance(method, str) or method not in _METHODS:
        return False
    accepted, any_more = _keywords(method)
    return any_more or name in accepted


def available_methods() -> list[str]:
    """The names accepted by ``connecting_geodesic(..., method=...)``."""
    return sorted(_METHODS)


def check_end_points(z0: object, z1: object, metric: Metric) -> tuple[Tensor, Tensor]:
    """Validate end points: finite floating tensors of the same shape ``(B, d)``."""
    z0 = metric.validated_points(z0, "z0")
    z1 = metric.validated_points(z1, "z1")
    if z0.ndim != 2:
        raise ValueError(f"z0 must have shape (B, d), got {tuple(z0.shape)}")
    if z1.ndim != 2:
        raise ValueError(f"z1 must have shape (B, d), got {tuple(z1.shape)}")
    check_same_shape(z0, z1, "z0", "z1")
    return z0, z1


def connecting_geodesic(
    metric_or_decoder: MetricLike,
    z0: Tensor,
    z1: Tensor,
    *,
    method: str | GeodesicMethod = "spline",
    throw: bool = False,
    memory_budget: int | None = None,
    **options: Any,
) -> GeodesicResult:
    """Geodesics between B pairs of latent points, all solved at once.

    The methods are local: each finds a geodesic near its start (the straight
    line, or the graph's path), usually the shortest curve but not always
    (between points far apart on a sphere it can be the longer arc of a great
    circle, itself a geodesic).

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z0: start points, shape ``(B, d)``.
        z1: end points, shape ``(B, d)``.
        method: one of :func:`available_methods` (``"spline"`` by default), or
            a method object (a :class:`GeodesicMethod`, such as
            ``SplineEnergy(num_knots=6, max_iter=500)``, the same as
            ``method="spline", num_knots=6, max_iter=500``).
        throw: raise :class:`GeodesicError` if any pair did not converge
            (``False``: report it per pair in the result).
        memory_budget: bytes the solve may use (``None``: the budget in force, see
            :mod:`latentgeo.memory`); chunks of pairs are sized by it, and the
            spline method's pairs optimised together hold at most a quarter of it
            in state (L-BFGS memory and a ``p × p`` preconditioner per pair,
            ``p = (knots + 2) · d``; more pairs: consecutive runs).
        **options: passed to a named method (see each method's
            documentation); a method object holds its own.

    Returns:
        A :class:`GeodesicResult` with per-pair ``length``, ``energy``,
        ``converged`` and ``status``, in the dtype and device of ``z0``.
        ``converged`` means that the method's stated tolerance holds for the
        pair's curve as a geodesic (for the energy methods: ``tol`` and
        ``refine_tol`` of :class:`~latentgeo.solvers.EnergyOptions`);
        anything less has another status.

    Raises:
        ValueError: an unknown method name, or bad end points or options.
        TypeError: ``method`` is neither a name nor a method object, or keyword
            options given next to a method object.
    """
    with use_memory_budget(memory_budget):
        metric = as_metric(metric_or_decoder)
        z0, z1 = check_end_points(z0, z1, metric)
        result = _solve(metric, z0, z1, method, options)
    if throw:
        result.raise_if_failed()
    return result


def _solve(
    metric: Metric, z0: Tensor, z1: Tensor, method: str | GeodesicMethod, options: dict[str, Any]
) -> GeodesicResult:
    """Run ``method`` (a name or an object) on validated end points."""
    if isinstance(method, str):
        if method not in _METHODS:
            raise ValueError(f"method must be one of {available_methods()}, got {method!r}")
        _check_options(method, options)
        return _METHODS[method](metric, z0, z1, **options)
    elif isinstance(method, GeodesicMethod):
        if options:
            raise TypeError(
                f"options {sorted(options)} cannot go with a method object: give them to "
                f"{type(method).__name__}(...)"
            )
        return method.solve(metric, z0, z1)
    raise TypeError(
        f"method must be a name in {available_methods()} or an object with a "
        f"solve(metric, z0, z1) method, got {type(method).__name__}"
    )
