"""Log maps of many pairs at once, by shooting, by energy geodesics or in closed form.

:func:`log_maps` is what :func:`~latentgeo.geometry.frechet_mean` and the LAND
(:mod:`latentgeo.geometry.land`, :mod:`latentgeo.geometry.land_fit`) ask for
the log maps of their pairs: one call, one :class:`LogMaps`, whichever method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from latentgeo.metrics import Metric
from latentgeo.solvers import Status, connecting_geodesic, log_map_result

__all__ = ["LogMaps", "Method", "PairMap", "log_maps"]

PairMap = Callable[[Tensor, Tensor], Tensor]
Method = Literal["log", "energy"] | PairMap


@dataclass
class LogMaps:
    """Log maps of P pairs, from either method.

    Attributes:
        velocity: ``log_{base}(target)`` ``(P, d)`` (the best found, also for failed pairs).
        length: the geodesic distance ``(P,)``.
        status: one :class:`~latentgeo.solvers.Status` per pair.
        error: estimated ``‖velocity − log_{base}(target)‖`` (Euclidean norm) ``(P,)``:
            shooting's estimate, 0 for a closed form, ``inf`` where nothing bounds it
            (energy geodesics: their status is the geodesic's, not the velocity's).
    """

    velocity: Tensor
    length: Tensor
    status: list[Status]
    error: Tensor


def log_maps(
    metric: Metric,
    base: Tensor,
    target: Tensor,
    *,
    method: Method = "log",
    init: Tensor | str | None = None,
    options: dict[str, Any] | None = None,
) -> LogMaps:
    """``log_{base}(target)`` for P pairs ``(P, d)`` by shooting or by energy geodesics.

    Args:
        metric: the metric.
        base: base points ``(P, d)``.
        target: target points ``(P, d)``.
        method: ``"log"`` (:func:`~latentgeo.solvers.log_map_result`), ``"energy"``
            (:func:`~latentgeo.solvers.connecting_geodesic`, the initial velocity of
            the constant-speed curve scaled to its length), or a closed-form log
            map ``(base, target) -> (P, d)`` (the test geometries' ``log``).
        init: the log map's starting velocities (``"log"`` only): a tensor or a name.
        options: passed to the solver.

    Returns:
        A :class:`LogMaps`.
    """
    opts = dict(options or {})
    if callable(method):
        v = method(base, target)
        length = metric.squared_norm(base, v, validate=False).clamp_min(0.0).sqrt()
        ok = torch.isfinite(v).all(-1) & torch.isfinite(length)
        status = [Status.CONVERGED if o else Status.NON_FINITE for o in ok.tolist()]
        return LogMaps(v, length, status, torch.zeros_like(length))
    if method == "log":
        if init is not None:
            opts["init"] = init
        res = log_map_result(metric, base, target, **opts)
        error = torch.full_like(res.length, torch.inf) if res.error is None else res.error
        return LogMaps(res.velocity, res.length, list(res.status), error)
    if method != "energy":
        raise ValueError(f"method must be 'log' or 'energy', got {method!r}")
    geo = connecting_geodesic(metric, base, target, **opts)
    t0 = torch.zeros(1, dtype=base.dtype, device=base.device)
    with torch.no_grad():
        v = geo.curve.velocity(t0)[:, 0].detach()  # type: ignore[operator]
        speed = metric.squared_norm(base, v, validate=False).clamp_min(0.0).sqrt()
        length = geo.length.detach().to(base.dtype)
        scale = torch.where(speed > 0, length / torch.where(speed > 0, speed, 1.0), 0.0)
    unbounded = torch.full_like(length, torch.inf)
    return LogMaps(v * scale[:, None], length, list(geo.status), unbounded)
