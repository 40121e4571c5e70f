"""Fréchet (Karcher) means of sets of latent points, by Riemannian gradient descent.

The Fréchet mean of points ``x_n`` with weights ``w_n`` minimises
``F(μ) = Σ_n w_n d(μ, x_n)² / (2 Σ_n w_n)``, whose Riemannian gradient is
``−Σ_n w_n log_μ(x_n) / Σ_n w_n``. Each iteration takes the step

.. math::
    μ ← \\exp_μ\\big(τ \\, \\bar v\\big),\\qquad \\bar v = \\frac{Σ_n w_n \\log_μ(x_n)}{Σ_n w_n},

with a Barzilai–Borwein step length ``τ`` (``step_size`` at first; curvature
makes the Hessian of ``F`` differ from the identity, so a fixed ``τ = 1`` can
crawl or oscillate), halving ``τ`` for a set whose ``F`` would grow, and never
stepping farther than the set's farthest point (a Barzilai–Borwein step can be 1000
times the last: on the sphere, 17 rad around it). S sets are solved at once
(k cluster means, say): every log map of every active set in one batched
call, every step in one batched exponential map. Two ways to the log maps:

* ``method="log"``: :func:`latentgeo.solvers.log_map_result` (shooting; warm
  started from the previous iterate's log maps, to first order, or from the straight
  segment where that guess is far longer than the segment);
* ``method="energy"`` (cheaper, less accurate): energy-minimising geodesics,
  :func:`latentgeo.solvers.connecting_geodesic`, their initial velocity scaled
  to their length.

A set has converged when ``|v̄|_G`` plus a bound on its error is within the
tolerance; the bound is the weighted mean of the log maps' error estimates
times ``‖G(μ)^{1/2}‖₂``. Energy geodesics bound nothing, so a set of
``method="energy"`` whose gradient looks within the tolerance is checked by
shooting log maps, warm started from its energy ones, and goes on with them.
A step is taken when ``F`` does not grow by more than those errors leave it
uncertain (near the mean a step lowers ``F`` by about ``|v̄|² τ``, far below
them: a strict comparison stalled there, ``line_search_failed``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from latentgeo._options import check_bool
from latentgeo._progress import iteration_bar
from latentgeo._validation import check_points
from latentgeo.geometry.logmaps import LogMaps, Method, PairMap, log_maps
from latentgeo.geometry.mean_descent import FrechetMeanResult, MeanDescent
from latentgeo.memory import use_memory_budget
from latentgeo.metrics import Metric, MetricLike, as_metric

__all__ = ["FrechetMeanResult", "LogMaps", "frechet_mean", "log_maps"]


def _check_sets(metric: Metric, points: object, weights: object) -> tuple[Tensor, Tensor, bool]:
    x = metric.validated_points(points, "points")
    single = x.ndim == 2
    if x.ndim not in (2, 3):
        raise ValueError(f"points must have shape (N, d) or (S, N, d), got {tuple(x.shape)}")
    x = x[None] if single else x
    if weights is None:
        w = torch.ones(x.shape[:2], dtype=x.dtype, device=x.device)
    else:
        w = check_points(weights, "weights").to(x.dtype)
        w = w[None] if (single and w.ndim == 1) else w
        if w.shape != x.shape[:2]:
            want = (x.shape[1],) if single else tuple(x.shape[:2])
            raise ValueError(f"weights must have shape {want}, got {tuple(w.shape)}")
        if bool((w < 0).any()) or not bool((w.sum(1) > 0).all()):
            raise ValueError("weights must be non-negative with a positive sum in every set")
    return x, w, single


def _default_tol(method: Method, dtype: torch.dtype) -> float:
    if callable(method):  # exact log maps
        return 1e-8 if dtype == torch.float64 else 1e-4
    if method == "log":  # its log maps are solved to tol / 8
        return 1e-6 if dtype == torch.float64 else 1e-3
    return 1e-4 if dtype == torch.float64 else 1e-3


def frechet_mean(
    metric_or_decoder: MetricLike,
    points: Tensor,
    *,
    weights: Tensor | None = None,
    method: Method = "log",
    init: Tensor | None = None,
    max_iter: int = 50,
    tol: float | None = None,
    step_size: float = 1.0,
    log_options: dict[str, Any] | None = None,
    exp: PairMap | None = None,
    throw: bool = False,
    memory_budget: int | None = None,
    progress: bool = False,
) -> FrechetMeanResult:
    """The Fréchet (Karcher) mean of each of S sets of latent points, all at once.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        points: one set ``(N, d)`` or S sets ``(S, N, d)`` (pad ragged sets and
            give the padding weight 0).
        weights: non-negative weights ``(N,)`` or ``(S, N)`` (default: all 1).
        method: ``"log"`` (shooting log maps, accurate), ``"energy"`` (energy
            geodesics, cheaper; see the module docstring) or a closed-form log map
            ``(base (P, d), target (P, d)) -> (P, d)``.
        init: starting means ``(d,)`` or ``(S, d)`` (default: the weighted
            Euclidean means).
        max_iter: accepted or rejected steps per set at most.
        tol: stop a set when ``|v̄|_G`` plus the bound on its error is at most
            ``tol · max(1, √variance)`` (default 1e-6 in float64 and 1e-3 in float32 for
            ``"log"``, 1e-4 and 1e-3 for ``"energy"``, 1e-8 and 1e-4 for a closed form).
            Shooting log maps are solved to ``rtol = atol = tol / 8`` unless
            ``log_options`` set them.
        step_size: the first step length ``τ`` (1 is Newton-like near the mean).
        log_options: options of :func:`~latentgeo.solvers.log_map_result` (``"log"``) or
            :func:`~latentgeo.solvers.connecting_geodesic` (``"energy"``; the shooting
            log maps that check its sets take none of them).
        exp: a closed-form exponential map ``(z (S, d), v (S, d)) -> (S, d)`` for the
            steps (default: :func:`~latentgeo.solvers.exp_map_result`).
        throw: raise :class:`~latentgeo.solvers.ShootingError` if a set did not converge.
        memory_budget: bytes the log maps, geodesics and exponential maps may use
            (``None``: the budget in force, see :mod:`latentgeo.memory`).
        progress: show a progress bar of the descent's steps on a terminal.

    Returns:
        A :class:`FrechetMeanResult`.

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> x = torch.tensor([[0.5, 0.0], [0.0, 0.5], [-0.5, 0.0], [0.0, -0.5]]).double() + 0.1
        >>> disk = PoincareDisk()  # its closed-form log and exp keep the example fast
        >>> res = frechet_mean(disk, x, method=disk.log, exp=disk.exp)
        >>> res.status, res.gradient_norm < 1e-8
        ([Status.CONVERGED], tensor([True]))
    """
    metric = as_metric(metric_or_decoder)
    x, w, single = _check_sets(metric, points, weights)
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    if not step_size > 0:
        raise ValueError(f"step_size must be positive, got {step_size!r}")
    if not callable(method) and method not in ("log", "energy"):
        raise ValueError(f"method must be 'log', 'energy' or a callable, got {method!r}")
    tol = _default_tol(method, x.dtype) if tol is None else float(tol)
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol!r}")
    if init is None:
        mu = (w[..., None] * x).sum(1) / w.sum(1)[:, None]
    else:
        mu = check_points(init, "init", dim=x.shape[-1]).to(x.dtype).reshape(-1, x.shape[-1])
        if mu.shape[0] != x.shape[0]:
            raise ValueError(f"init must have shape (S, d) = {(x.shape[0], x.shape[-1])}")
    check_bool(progress, "progress")
    bar = iteration_bar(progress, max_iter, "Fréchet means")
    with torch.no_grad(), use_memory_budget(memory_budget), bar as update:
        descent = MeanDescent(metric, x, w, mu.clone(), method, step_size, log_options, exp, tol)
        for it in range(max_iter):
            if not descent.iterate(tol):
                break
            if update is not None:
                update(it + 1, running=f"{int(descent.running().sum())}/{x.shape[0]}")
        out = descent.result(tol)
    if single:
        out.mean, out.logs = out.mean[0], out.logs
    if throw:
        out.raise_if_failed()
    return out
