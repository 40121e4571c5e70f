"""The result types of the solvers: :class:`GeodesicResult`, shared by every geodesic
solver, :class:`ExpMapResult` of the exponential map and :class:`LogMapResult` of the
logarithm map."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from latentgeo.solvers.status import SolverError, Status, raise_if_failed

__all__ = ["ExpMapResult", "GeodesicError", "GeodesicResult", "LogMapResult", "ShootingError"]


class GeodesicError(SolverError):
    """Raised by ``connecting_geodesic(..., throw=True)`` (or
    :meth:`GeodesicResult.raise_if_failed`) when some pair did not converge.

    Attributes:
        result: the full :class:`GeodesicResult`, with per-pair statuses.
    """


@dataclass
class GeodesicResult:
    """What a geodesic solver found for B pairs of end points.

    Attributes:
        curve: the fitted curves, a module holding all B curves; ``curve(t)``
            for ``t`` of shape ``(T,)`` gives ``(B, T, d)``.
        length: Riemannian length of each curve, shape ``(B,)``.
        energy: energy ``∫ γ̇ᵀ G γ̇ dt`` of each curve over ``t ∈ [0, 1]``, shape ``(B,)``.
        converged: whether each pair met the solver's stated tolerance, shape
            ``(B,)`` bool; the same as ``status[i] == Status.CONVERGED``.
        iterations: iterations the solver ran (per pair ``(B,)`` tensor, or an int).
        status: one :class:`~latentgeo.solvers.Status` per pair (``"converged"``,
            ``"max_iter"``, ``"nonfinite"``, ``"unreachable"``...; a ``str`` enum).
        method: the method that produced it.
        info: solver-specific extras (energy history, ...).
        message: optional free-text detail per pair (scipy's message, graph
            components), ``""`` where there is none.
    """

    curve: nn.Module
    length: Tensor
    energy: Tensor
    converged: Tensor
    iterations: Tensor | int
    status: list[Status]
    method: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    message: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status = [Status(s) for s in self.status]
        if not self.message:  # one entry per pair, as documented
            self.message = [""] * len(self.status)
        if len(self.message) != len(self.status):
            raise ValueError(
                f"message must hold one string per pair ({len(self.status)}), "
                f"got {len(self.message)}"
            )

    @property
    def num_pairs(self) -> int:
        """B, the number of pairs."""
        return int(self.length.shape[0])

    @property
    def all_converged(self) -> bool:
        """Whether every pair converged."""
        return bool(self.converged.all())

    @property
    def num_converged(self) -> int:
        """How many pairs converged."""
        return int(self.converged.sum())

    def raise_if_failed(self) -> None:
        """Raise :class:`GeodesicError` unless every pair converged.

        Raises:
            GeodesicError: naming the first failed pairs and their statuses; it
                carries this result.
        """
        raise_if_failed(self.status, self, GeodesicError, messages=self.message or None)


class ShootingError(SolverError):
    """Raised by ``exp_map``/``log_map`` with ``throw=True`` (or a result's
    ``raise_if_failed()``) when some pair failed.

    Attributes:
        result: the :class:`ExpMapResult` or :class:`LogMapResult`, with per-pair statuses.
    """


class _ShootingResult:
    """What the exponential and logarithm maps' results share: :meth:`raise_if_failed`."""

    status: list[Status]

    def raise_if_failed(self) -> None:
        """Raise :class:`ShootingError` unless every pair converged (met its tolerance)."""
        raise_if_failed(self.status, self, ShootingError)


@dataclass
class ExpMapResult(_ShootingResult):
    """What :func:`exp_map` computed for B initial conditions.

    Attributes:
        point: ``exp_z(t v)``, shape ``(B, d)`` (NaN where the integration failed).
        velocity: ``γ̇(t)`` there, shape ``(B, d)``.
        converged: whether each pair's estimated error is within the tolerance, ``(B,)`` bool.
        status: per pair, a :class:`~latentgeo.solvers.Status`: ``converged``,
            ``integration_error`` (the end was reached, the estimated error is
            above the tolerance), ``invalid_metric`` (a negative or non-finite
            squared norm ``γ̇ᵀ G γ̇`` at an output time), ``max_steps``,
            ``nonfinite`` or ``step_underflow``.
        steps: accepted integration steps per pair (the last integration), ``(B,)``.
        times: the output times ``(T,)`` from 0 to ``t``.
        path: ``γ`` at those times, ``(B, T, d)``.
        path_velocity: ``γ̇`` at those times, ``(B, T, d)``.
        error: estimated ``‖point − exp_z(t v)‖``, ``(B,)`` (``inf`` where it failed).
    """

    point: Tensor
    velocity: Tensor
    converged: Tensor
    status: list[Status]
    steps: Tensor
    times: Tensor | None = None
    path: Tensor | None = None
    path_velocity: Tensor | None = None
    error: Tensor | None = None


@dataclass
class LogMapResult(_ShootingResult):
    """What :func:`log_map` found for B pairs.

    Attributes:
        velocity: the velocity found, ``(B, d)`` (the best iterate for failed pairs).
        residual: ``‖exp_{z0}(v) − z1‖`` at the last exponential map computed
            (the returned velocity adds one more Newton correction), ``(B,)``.
        length: its Riemannian norm ``‖v‖_{G(z0)}``, the geodesic's length, ``(B,)``
            (NaN where ``vᵀ G(z0) v`` is negative or not finite: ``invalid_metric``).
        converged: ``error ≤ atol + rtol·‖velocity‖``, and not ``not_minimizing``,
            ``(B,)`` bool.
        status: per pair, a :class:`~latentgeo.solvers.Status`: ``converged``,
            ``max_iter``, ``integration_error``, ``line_search_failed``,
            ``invalid_metric``, ``nonfinite``, ``max_steps``, ``step_underflow`` or
            ``not_minimizing`` (the geodesic found is longer than ``upper_bound``).
        iterations: quasi-Newton shots (exponential maps at an iterate) per pair, ``(B,)``.
        error: estimated ``‖velocity − log_{z0}(z1)‖``, ``(B,)`` (``inf`` when unknown).
        exp_maps: every exponential map computed per pair, ``(B,)``: the shots and
            the ``d − 1`` loose ones that measure the Jacobian at the first shot
            (and again at later shots where that failed).
        jacobian_measured: whether the Jacobian model on which ``error`` rests was
            measured by finite differences, ``(B,)`` bool: across all ``d − 1``
            directions up to ``d = 3`` and where two random probes found the model
            off, else corrected on those probes (exact for ``d = 1`` and ``v = 0``).
            Where every attempt failed (an exponential map of the differences did
            not converge, or they are not finite) the error estimate rests on a
            model without curvature and proves nothing: the pair is not converged,
            its status is that of the failed exponential maps (``nonfinite``,
            ``max_steps``, ``step_underflow``).
        upper_bound: the length of a curve known to join ``z0`` and ``z1`` (the
            energy start's, or the straight segment's; a quadrature), ``(B,)``: no
            shortest geodesic is longer. A pair whose ``length`` exceeds it by
            more than ten times its tolerance in ``G(z0)``'s norm,
            ``10 ‖G(z0)^{1/2}‖₂ (atol + rtol‖v‖)``, shot a geodesic past a
            conjugate point and is ``not_minimizing``.
    """

    velocity: Tensor
    residual: Tensor
    length: Tensor
    converged: Tensor
    status: list[Status]
    iterations: Tensor
    error: Tensor | None = None
    exp_maps: Tensor | None = None
    jacobian_measured: Tensor | None = None
    upper_bound: Tensor | None = None
