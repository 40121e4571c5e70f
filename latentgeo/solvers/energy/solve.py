""":func:`minimize_energy`: set up, optimise level by level, refine, report."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from latentgeo._progress import iteration_bar
from latentgeo.curves import CubicSpline, Curve
from latentgeo.curves.length import is_pullback
from latentgeo.exceptions import NumericsWarning, warn
from latentgeo.metrics import Metric
from latentgeo.solvers.energy.levels import LevelLoop
from latentgeo.solvers.energy.messages import (
    refinement_messages,
    unsettled_message,
    with_unresolved_lengths,
)
from latentgeo.solvers.energy.options import EnergyOptions, with_options
from latentgeo.solvers.energy.refinement import Levels
from latentgeo.solvers.energy.report import assemble_result
from latentgeo.solvers.result import GeodesicResult
from latentgeo.solvers.status import Status, code

__all__ = ["minimize_energy", "unsettled_message"]


def _check_resolvable(refine_tol: float, dtype: torch.dtype) -> None:
    """Warn when a length change of ``refine_tol / 2`` is below what ``dtype`` resolves
    (``10·eps``): rounding can hide that a pair settled, which then refines to ``max_knots``."""
    floor = 10.0 * torch.finfo(dtype).eps
    if 0.0 < refine_tol / 2 < floor:
        warn(
            NumericsWarning(
                f"refine_tol={refine_tol:g} asks lengths to settle within {refine_tol / 2:.1e} "
                f"relative, below what {dtype} resolves (about {floor:.1e}): rounding can hide it, "
                "and pairs then refine up to max_knots and end max_iter (slowly); use float64 "
                f"or refine_tol >= {2 * floor:.1e}"
            )
        )


def minimize_energy(
    metric: Metric,
    curve: Curve,
    *,
    estimator: str | None = None,
    optimizer: str = "lbfgs",
    max_iter: int = 3000,
    tol: float | None = None,
    num_points: int | None = None,
    nodes: int = 4,
    refine: bool | None = None,
    refine_tol: float | None = None,
    max_knots: int = 256,
    lr: float = 0.05,
    patience: int = 20,
    history: int = 30,
    precondition_every: int = 10,
    reparametrize: bool = True,
    generator: torch.Generator | None = None,
    progress: bool = False,
    z0: Tensor | None = None,
    z1: Tensor | None = None,
    options: EnergyOptions | None = None,
) -> GeodesicResult:
    r"""Minimise the energy of every curve of a batch; the internal engine of the
    ``"spline"``, ``"discrete"`` and ``"neural"`` methods.

    The curves are returned inside the result, reparametrised to constant
    speed; without refinement ``curve`` itself is optimised in place (its
    parameters then no longer require gradients). With refinement, pairs that
    settle are split off, so the result may be a
    :class:`~latentgeo.curves.CurveStack` of splines with different numbers
    of knots.

    The options (all but ``metric``, ``curve``, ``z0`` and ``z1``) can also be
    given as one :class:`EnergyOptions`; keywords that differ from their
    defaults override it. Every option is checked before any work.

    Args:
        metric: the metric (validated).
        curve: B curves; their end points stay fixed.
        estimator: the energy to minimise: ``"metric"`` (Gauss–Legendre
            quadrature of ``γ̇ᵀ G γ̇``, any metric), ``"chord"`` (embedding
            differences, pull-backs; no Jacobian, about three times cheaper
            per point than a JVP) or ``"sampled"`` (ensembles, stochastic;
            only with ``optimizer="adam"``). Default: ``"chord"`` for
            pull-backs (decoders, ensembles), ``"metric"`` otherwise.
        optimizer: ``"lbfgs"`` (per-pair L-BFGS, default) or ``"adam"`` (per-pair
            Adam with learning rate ``lr × |z1 − z0|_∞``).
        max_iter: most iterations per pair, all refinement levels together
            (``>= 0``).
        tol: relative energy tolerance per pair (``> 0``; default ``1e-5``: at a
            minimum the energy is flat, so lengths come out far more accurate,
            about ``1e-6`` relative on the test geometries).
        num_points: least number of energy evaluation points per curve
            (``>= 1``; ``"metric"``: default ``nodes`` per span; chord
            estimators: 24, and at least two per span).
        nodes: Gauss–Legendre nodes per span for ``"metric"`` (``>= 1``).
        refine: insert knots after convergence until the length settles
            (default: for splines).
        refine_tol: a pair is done when a full refinement changed its length by
            at most ``refine_tol / 2`` relative (``>= 0``; default ``1e-4``: the
            energy's relative change at constant speed, ``E = L²``, measured on
            the length, which the speed of the parametrisation does not change).
            On random sphere pairs the converged lengths are within 2.2e-5 (worst; median 1e-8) of
            the great-circle distances. A pair that cannot be refined within
            ``max_knots`` before settling says ``max_iter``, with a message; 0
            refines as far as ``max_knots`` allows and reports the pairs
            converged at ``tol``.
        max_knots: most interior knots a spline may grow to (``>= 0``); each
            refinement inserts a knot per span and is not made if it would
            exceed ``max_knots``.
        lr: Adam's learning rate, relative to the size of ``z1 − z0`` (``> 0``).
        patience: Adam stops a pair after this many steps without progress
            (``>= 1``).
        history: L-BFGS memory (``>= 1``).
        precondition_every: recompute the L-BFGS preconditioner (the
            frozen-metric stiffness matrix, splines and polylines) every this
            many iterations, for the pairs whose curve moved by more than 1 %
            of ``|z1 − z0|_∞`` since theirs (``>= 1``).
        reparametrize: return the curves reparametrised to constant speed.
        generator: random generator for ``estimator="sampled"``.
        progress: show a tqdm progress bar.
        z0: the end points to differentiate the reported lengths against
            (default: the curve's own, detached).
        z1: as ``z0``.
        options: the options as one object (see above).

    Returns:
        A :class:`GeodesicResult`; a pair is ``converged`` when its curve is a
        stationary point of the energy to the stated tolerances (``tol``, and
        ``refine_tol`` for refined splines; see :class:`EnergyOptions`): a
        geodesic, not necessarily the shortest. ``length`` and ``energy`` come from
        Gauss–Legendre quadrature of the metric (3 nodes per piece, two pieces
        per span and at least 8 in all), whatever ``estimator`` was minimised, and are
        differentiable with respect to ``z0``/``z1`` (envelope theorem:
        ``∂L/∂z1 = G(z1) γ̇(1) / |γ̇(1)|_G`` at a geodesic), not with respect to
        the decoder's parameters (for those, evaluate
        :func:`~latentgeo.curves.curve_length` on the returned curve).
        With refinement, ``info["refined"]`` ``(B,)`` bool says which pairs had
        their length compared across a full refinement; a converged pair that
        did not (a start with too many knots for one within ``max_knots``) is
        converged at ``tol`` alone, and its ``message`` says so. A pair that
        reached ``max_knots`` unsettled is ``max_iter`` and its ``message`` gives
        the last refinement's change. A pair that did not converge has its length
        checked on twice the quadrature's pieces: where it changes by more than
        1e-3 relative (the optimiser left a curve whose speed varies between the
        nodes it saw), the larger is reported, ``info["unresolved_length"]``
        ``(B,)`` bool marks it and its ``message`` says the length is uncertain.

    Raises:
        ValueError: an option outside its allowed range (naming it), or
            ``refine=True`` for a curve that is not a spline.

    Example:
        >>> import torch
        >>> from latentgeo.curves import CubicSpline
        >>> from latentgeo.metrics import as_metric
        >>> from latentgeo.testing import StereographicSphere
        >>> sphere = StereographicSphere()
        >>> z0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
        >>> z1 = torch.tensor([[-0.5, 2.0]], dtype=torch.float64)
        >>> res = minimize_energy(as_metric(sphere), CubicSpline(z0, z1))
        >>> res.status, float((res.length / sphere.distance(z0, z1) - 1).abs()) < 1e-5
        ([Status.CONVERGED], True)
        >>> res = minimize_energy(as_metric(sphere), CubicSpline(z0, z1),
        ...                       options=EnergyOptions(max_iter=1))
        >>> res.status
        [Status.MAX_ITERATIONS]
    """
    keywords = {
        "estimator": estimator,
        "optimizer": optimizer,
        "max_iter": max_iter,
        "tol": tol,
        "num_points": num_points,
        "nodes": nodes,
        "refine": refine,
        "refine_tol": refine_tol,
        "max_knots": max_knots,
        "lr": lr,
        "patience": patience,
        "history": history,
        "precondition_every": precondition_every,
        "reparametrize": reparametrize,
        "generator": generator,
        "progress": progress,
    }
    return _minimize(metric, curve, with_options(options, keywords, "minimize_energy"), z0, z1)


def _minimize(
    metric: Metric, curve: Curve, opts: EnergyOptions, z0: Tensor | None, z1: Tensor | None
) -> GeodesicResult:
    """:func:`minimize_energy` with its options checked."""
    estimator = opts.estimator
    if estimator is None:
        estimator = "chord" if is_pullback(metric) else "metric"
    refine = isinstance(curve, CubicSpline) if opts.refine is None else opts.refine
    if refine and not isinstance(curve, CubicSpline):
        raise ValueError("refine=True needs a CubicSpline curve")
    if refine:
        _check_resolvable(opts.refine_tol, curve.z0.dtype)
    b, device = curve.num_curves, curve.z0.device
    status = torch.full((b,), code(Status.MAX_ITERATIONS), dtype=torch.long, device=device)
    iterations = torch.zeros(b, dtype=torch.long, device=device)
    z0 = curve.z0 if z0 is None else z0  # the end points the reported lengths depend on
    z1 = curve.z1 if z1 is None else z1
    # The decoder's own parameters need no gradients while the curves are optimised, nor
    # while the report is computed (tracking them doubles the cost).
    with _frozen_parameters(metric), _progress_bar(opts, status, iterations) as on_step:
        levels = None
        if refine:
            length = torch.full((b,), math.inf, dtype=curve.z0.dtype, device=device)
            levels = Levels(length, opts.refine_tol, opts.max_knots)
        loop = LevelLoop(metric, opts, estimator, levels, z0, z1, status, iterations, on_step)
        finished = loop.run(curve, torch.arange(b, device=device))
        info: dict[str, object] = {"estimator": estimator, "optimizer": opts.optimizer}
        if levels is not None:
            info["refined"] = levels.refined if levels.refined is not None else status < 0
        result = assemble_result(
            metric, finished, z0, z1, status, iterations,
            reparametrize=opts.reparametrize, info=info,
        )  # fmt: skip
    if levels is not None:
        coincident = (z0 == z1).all(-1).tolist()
        result.message = refinement_messages(levels, result, opts, coincident)
    unresolved = result.info.setdefault(
        "unresolved_length", torch.zeros_like(status, dtype=torch.bool)
    )
    result.message = with_unresolved_lengths(result.message, unresolved)
    return result


@contextmanager
def _frozen_parameters(module: nn.Module) -> Iterator[None]:
    """Parameters of ``module`` that require gradients stop doing so, until the exit."""
    frozen = [p for p in module.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


@contextmanager
def _progress_bar(
    opts: EnergyOptions, status: Tensor, iterations: Tensor
) -> Iterator[Callable[[], None] | None]:
    """A bar of the most iterations and the running pairs, updated by the function
    yielded (``None`` without ``opts.progress``)."""
    with iteration_bar(opts.progress, opts.max_iter, "geodesics") as update:
        if update is None:
            yield None
            return
        running = code(Status.MAX_ITERATIONS)
        yield lambda: update(int(iterations.max()), running=int((status == running).sum()))
