"""``connecting_geodesic``: one entry point, many methods.

Each method is a function registered under a name with :func:`register_method`:

.. code-block:: python

    @register_method("spline")
    def _spline(metric: Metric, z0: Tensor, z1: Tensor, **options) -> GeodesicResult: ...

It receives a validated :class:`~latentgeo.metrics.Metric` and end points
``z0, z1`` of shape ``(B, d)`` (finite, same dtype and device), and returns a
:class:`GeodesicResult`. ``connecting_geodesic`` handles ``throw``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from latentgeo._validation import check_points, check_same_shape
from latentgeo.metrics import Metric, MetricLike, as_metric
from latentgeo.solvers.result import GeodesicError, GeodesicResult

__all__ = ["GeodesicError", "available_methods", "connecting_geodesic", "register_method"]

MethodFn = Callable[..., GeodesicResult]
_METHODS: dict[str, MethodFn] = {}


def register_method(name: str) -> Callable[[MethodFn], MethodFn]:
    """Register a geodesic solver under ``name`` (a decorator)."""

    def decorate(fn: MethodFn) -> MethodFn:
        _METHODS[name] = fn
        return fn

    return decorate


def available_methods() -> list[str]:
    """The names accepted by ``connecting_geodesic(..., method=...)``."""
    return sorted(_METHODS)


def check_end_points(z0: object, z1: object, metric: Metric) -> tuple[Tensor, Tensor]:
    """Validate end points: finite floating tensors of the same shape ``(B, d)``."""
    z0 = check_points(z0, "z0", dim=metric.latent_dim)
    z1 = check_points(z1, "z1", dim=metric.latent_dim)
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
    method: str = "spline",
    throw: bool = False,
    **options: Any,
) -> GeodesicResult:
    """Shortest curves between B pairs of latent points, all solved at once.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z0: start points, shape ``(B, d)``.
        z1: end points, shape ``(B, d)``.
        method: one of :func:`available_methods` (``"spline"`` by default).
        throw: raise :class:`GeodesicError` if any pair did not converge
            (``False``: report it per pair in the result).
        **options: passed to the method (see each method's documentation).

    Returns:
        A :class:`GeodesicResult` with per-pair ``length``, ``energy``,
        ``converged`` and ``status``, in the dtype and device of ``z0``.
    """
    metric = as_metric(metric_or_decoder)
    z0, z1 = check_end_points(z0, z1, metric)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {available_methods()}, got {method!r}")
    result = _METHODS[method](metric, z0, z1, **options)
    if throw:
        result.raise_if_failed()
    return result
