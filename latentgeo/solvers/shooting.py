"""The public logarithm map and ``connecting_geodesic(..., method="shooting")``.

:func:`log_map` returns a tensor, :func:`log_map_result` the whole
:class:`~latentgeo.solvers.LogMapResult`; the iteration is in
:mod:`latentgeo.solvers.logmap`. The ``"shooting"`` method is the log map
plus the geodesic through it (a :class:`~latentgeo.solvers.HermiteCurve`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
from torch import Tensor

from latentgeo._options import check_bool, check_int
from latentgeo._progress import iteration_bar
from latentgeo.memory import use_memory_budget
from latentgeo.metrics import Metric, MetricLike, as_metric
from latentgeo.solvers.connecting import check_end_points, register_method, takes_option
from latentgeo.solvers.expmap import flatten_pair, geodesic_curve, tolerances
from latentgeo.solvers.hermite import length_and_energy
from latentgeo.solvers.logmap import LogMapResult, solve_log
from latentgeo.solvers.logmap_start import start
from latentgeo.solvers.result import GeodesicResult
from latentgeo.solvers.status import Status, converged_mask
from latentgeo.solvers.validity import mark_invalid

__all__ = ["log_map", "log_map_result"]

Init = Literal["energy", "straight"] | Tensor

#: how many times its tolerance a geodesic may exceed a known curve's length: the
#: tolerance bounds ‖v − log‖, so the length's error by ‖G(z0)^{1/2}‖₂ times it
MINIMALITY_SLACK = 10.0


@dataclass(frozen=True)
class _Shooting:
    """The log map's options, validated when built; :meth:`solve` runs it.

    One place for what :func:`log_map_result` and ``method="shooting"`` share.
    """

    init: object = "energy"
    rtol: float | None = None
    atol: float | None = None
    max_iter: int = 20
    max_steps: int = 10_000
    init_options: dict[str, Any] | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        tolerances(torch.float64, self.rtol, self.atol)
        check_int(self.max_iter, "max_iter")
        check_int(self.max_steps, "max_steps")
        if self.init_options is not None and not isinstance(self.init_options, dict):
            raise TypeError(f"init_options must be a dict, got {type(self.init_options).__name__}")
        check_bool(self.progress, "progress")

    def solve(self, metric: Metric, z0: Tensor, z1: Tensor) -> LogMapResult:
        """Find the start and iterate (``z0``, ``z1`` validated ``(B, d)``)."""
        rtol, atol = tolerances(z0.dtype, self.rtol, self.atol)
        options = dict(self.init_options or {})
        start_method = options.get("method", "spline")
        if self.progress and isinstance(self.init, str) and self.init == "energy":
            if takes_option(start_method, "progress"):
                options.setdefault("progress", True)  # the start's own bar
        pairs = z0.shape[0]
        with torch.no_grad(), iteration_bar(self.progress, self.max_iter, "log maps") as bar:
            v0, bound = start(metric, z0, z1, self.init, options)
            shown = None if bar is None else lambda done, n: bar(done, running=f"{n}/{pairs}")
            info = solve_log(
                metric, z0, z1, v0, rtol=rtol, atol=atol, max_iter=self.max_iter,
                max_steps=self.max_steps, on_iteration=shown,
            )  # fmt: skip
            return _minimizing(metric, z0, info, bound, rtol, atol)


def _minimizing(
    metric: Metric, z0: Tensor, info: LogMapResult, bound: Tensor, rtol: float, atol: float
) -> LogMapResult:
    """``info`` with ``upper_bound``; a converged pair whose geodesic is longer than that
    by more than :data:`MINIMALITY_SLACK` times its tolerance, measured in ``G(z0)``'s
    norm (``‖G^{1/2}‖₂ (atol + rtol‖v‖)``), is ``not_minimizing``, not converged."""
    bound = bound.to(info.length.dtype)
    longer = _longer(metric, z0, info.converged, info.length, info.velocity, bound, rtol, atol)
    if not bool(longer.any()):
        return replace(info, upper_bound=bound)
    status = _not_minimizing(info.status, longer)
    return replace(info, status=status, converged=info.converged & ~longer, upper_bound=bound)


def _longer(
    metric: Metric,
    z0: Tensor,
    converged: Tensor,
    length: Tensor,
    velocity: Tensor,
    bound: Tensor,
    rtol: float,
    atol: float,
) -> Tensor:
    """``(B,)`` bool: the converged pairs whose ``length`` exceeds ``bound`` by more than
    :data:`MINIMALITY_SLACK` times their tolerance in ``G(z0)``'s norm."""
    longer = converged & (length > bound)
    if bool(longer.any()):  # rare: the metric tensor only where it is needed
        rows = longer.nonzero()[:, 0]
        v = velocity[rows]
        top = torch.linalg.eigvalsh(metric.metric_tensor(z0[rows]))[..., -1].clamp_min(0.0)
        allowance = MINIMALITY_SLACK * top.sqrt() * (atol + rtol * v.norm(dim=-1))
        longer[rows] = length[rows] - bound[rows] > allowance
    return longer


def _not_minimizing(status: list[Status], longer: Tensor) -> list[Status]:
    """``status`` with the pairs ``longer`` marked ``not_minimizing``."""
    flags = longer.tolist()
    return [Status.NOT_MINIMIZING if f else s for s, f in zip(status, flags, strict=True)]


def log_map(
    metric_or_decoder: MetricLike,
    z0: Tensor,
    z1: Tensor,
    *,
    init: Init = "energy",
    rtol: float | None = None,
    atol: float | None = None,
    max_iter: int = 20,
    max_steps: int = 10_000,
    init_options: dict[str, Any] | None = None,
    throw: bool = False,
    memory_budget: int | None = None,
    progress: bool = False,
) -> Tensor:
    """The logarithm map ``log_{z0}(z1)``: the initial velocity of the geodesic to ``z1``.

    The energy geodesic's initial velocity, refined by quasi-Newton shooting
    (one batched exponential map per iteration; the Jacobian measured once, at
    the first loose shot, by the Gauss lemma and ``d − 1`` loose exponential maps)
    until the estimated error, integration error included, is within
    ``atol + rtol·‖v‖`` (see :mod:`latentgeo.solvers.logmap`). A geodesic longer
    than a curve known to join the end points (``LogMapResult.upper_bound``)
    passed a conjugate point: it is not the log map (``not_minimizing``).

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z0: base points, shape ``(B, d)``.
        z1: target points, shape ``(B, d)``.
        init: the starting velocity: ``"energy"`` (the energy solver's geodesic,
            ``connecting_geodesic(method="spline")``, its initial velocity scaled
            to its length; the straight line if no energy solver is available),
            ``"straight"`` (``z1 − z0``) or a ``(B, d)`` tensor.
        rtol: relative tolerance on ``v``, ``> 0`` (default 1e-6 in float64, 1e-4 in float32).
        atol: absolute tolerance on ``v``, ``≥ 0`` (default 1e-9 in float64, 1e-7 in float32).
        max_iter: exponential maps per pair at most, ``≥ 1`` (at least two are
            needed to estimate the error).
        max_steps: integrator step attempts per exponential map, ``≥ 1``.
        init_options: options for ``connecting_geodesic`` when ``init="energy"``.
        throw: raise :class:`ShootingError` if any pair did not converge.
        memory_budget: bytes the shooting (and its initial geodesics) may use
            (``None``: the budget in force, see :mod:`latentgeo.memory`).
        progress: show a progress bar of the shooting iterations (and one of the
            energy geodesics of ``init="energy"``) on a terminal.

    Returns:
        ``v`` of shape ``(B, d)``, NaN for pairs that did not converge (their
        best iterate, status and error estimate are in :func:`log_map_result`'s
        :class:`LogMapResult`).

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> disk = PoincareDisk()
        >>> z0 = torch.tensor([[0.1, 0.2]], dtype=torch.float64)
        >>> z1 = torch.tensor([[-0.3, 0.4]], dtype=torch.float64)
        >>> v = log_map(disk, z0, z1)
        >>> bool((v - disk.log(z0, z1)).norm() <= 1e-6 * disk.log(z0, z1).norm())
        True
    """
    info = log_map_result(
        metric_or_decoder, z0, z1,
        init=init, rtol=rtol, atol=atol, max_iter=max_iter, max_steps=max_steps,
        init_options=init_options, throw=throw, memory_budget=memory_budget, progress=progress,
    )  # fmt: skip
    return torch.where(info.converged[:, None], info.velocity, torch.nan)


def log_map_result(
    metric_or_decoder: MetricLike,
    z0: Tensor,
    z1: Tensor,
    *,
    init: Init = "energy",
    rtol: float | None = None,
    atol: float | None = None,
    max_iter: int = 20,
    max_steps: int = 10_000,
    init_options: dict[str, Any] | None = None,
    throw: bool = False,
    memory_budget: int | None = None,
    progress: bool = False,
) -> LogMapResult:
    """:func:`log_map` with the whole result: per-pair status, error estimate, residual, length.

    Arguments as :func:`log_map`.

    Returns:
        A :class:`LogMapResult`; ``velocity`` holds every pair's answer,
        converged or not (the best iterate of a failed pair).

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> z0 = torch.zeros(1, 2, dtype=torch.float64)
        >>> z1 = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
        >>> log_map_result(PoincareDisk(), z0, z1, max_iter=1).status  # one shot proves nothing
        [Status.MAX_ITERATIONS]
    """
    shooting = _Shooting(init, rtol, atol, max_iter, max_steps, init_options, progress)
    metric = as_metric(metric_or_decoder)
    z0c, z1c = check_end_points(z0, z1, metric)
    z0c, z1c = flatten_pair(metric, z0c, z1c, "z0", "z1")
    with use_memory_budget(memory_budget):
        info = shooting.solve(metric, z0c.detach(), z1c.detach())
    if throw:
        info.raise_if_failed()
    return info


@register_method("shooting")
def _shooting(
    metric: Metric,
    z0: Tensor,
    z1: Tensor,
    *,
    init: Init = "energy",
    rtol: float | None = None,
    atol: float | None = None,
    max_iter: int = 20,
    max_steps: int = 10_000,
    init_options: dict[str, Any] | None = None,
    num_points: int = 33,
    progress: bool = False,
) -> GeodesicResult:
    """``connecting_geodesic(..., method="shooting")``: the log map, then the geodesic through it.

    Options are those of :func:`log_map` (``progress`` too), plus ``num_points``. A pair
    converges when its log map did and the curve's own length is not longer
    than the known curve's (``info["upper_bound"]``, with the log map's
    allowance): else it is ``not_minimizing``. ``length`` and ``energy`` are
    :func:`~latentgeo.curves.curve_length`'s default quadrature of that curve;
    ``info["log_length"]`` is ``‖v‖_{G(z0)}``, the same length from the initial
    velocity. Failed pairs keep their best shot, or the straight line if even
    that was not finite.

    Args:
        num_points: knots of the returned :class:`~latentgeo.solvers.HermiteCurve`,
            ``≥ 2`` (the exponential map at equally spaced times, to the same tolerance).
    """
    check_int(num_points, "num_points", minimum=2)
    shooting = _Shooting(init, rtol, atol, max_iter, max_steps, init_options, progress)
    info = shooting.solve(metric, z0, z1)
    v = torch.where(torch.isfinite(info.velocity), info.velocity, z1 - z0)
    curve = geodesic_curve(
        metric, z0, v, num_points=num_points, rtol=rtol, atol=atol, max_steps=max_steps
    )
    with torch.no_grad():
        length, energy = length_and_energy(metric, curve)
        # the curve's own length, not only ‖v‖_{G(z0)}, against the known curve's: they
        # differ where the geodesic ODE misses kinks of the metric (ReLU decoders), and such
        # a curve 3.5-7.5 % longer than the known one was reported converged (an audit)
        assert info.upper_bound is not None  # set by the solve
        bound = info.upper_bound.to(length.dtype)
        tol = tolerances(z0.dtype, rtol, atol)
        longer = _longer(metric, z0, info.converged, length, info.velocity, bound, *tol)
    # NaN: the curve meets a negative or non-finite squared norm (the log map may not, at z0)
    status = mark_invalid(_not_minimizing(info.status, longer), torch.isnan(length))
    return GeodesicResult(
        curve=curve,
        length=length,
        energy=energy,
        converged=converged_mask(status, device=z0.device),
        iterations=info.iterations,
        status=status,
        method="shooting",
        info={
            "velocity": info.velocity,
            "residual": info.residual,
            "error": info.error,
            "log_length": info.length,
            "upper_bound": info.upper_bound,
        },
    )
