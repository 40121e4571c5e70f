r"""Length and energy of batches of curves under a metric.

Four estimators, each returning one value per curve, shape ``(B,)``:

``"metric"`` (any metric; the default)
    Gauss–Legendre quadrature of ``γ̇ᵀ G(γ) γ̇`` (energy) or of its square root
    (length), span by span between the curve's breakpoints (spline knots,
    polyline vertices), so the integrand is smooth on every span. For a
    pull-back metric each ``γ̇ᵀ G γ̇`` is one forward-mode product ``‖J γ̇‖²``.
    Unbiased up to the quadrature error, which falls like ``h^{2q}`` with
    ``q`` nodes per span of width ``h``: lengths from it are deterministic
    and robust to the discretisation.
``"chord"`` (pull-back metrics ``G = Jᵀ J`` of a map ``φ``, and sums, scalings and
    ensemble means of them)
    Finite differences in the embedding space on a uniform grid of ``N``
    points: ``E ≈ (N − 1) Σᵢ ‖φ(γᵢ₊₁) − φ(γᵢ)‖²``, ``L ≈ Σᵢ ‖φ(γᵢ₊₁) − φ(γᵢ)‖``.
    Needs no Jacobian at all. Biased low: a chord is never longer than the arc
    it spans and, by Cauchy–Schwarz, ``(N − 1)‖Δφ‖² ≤ ∫ ‖φ̇‖²`` over each
    segment, so both estimates are at most the true value; the bias falls like
    ``1/N²``. For an ensemble (``MeanMetric``) it is the deterministic
    all-members form ``(N − 1) Σᵢ (1/K) Σ_k ‖f_k(γᵢ₊₁) − f_k(γᵢ)‖²``.
``"sampled"`` (ensembles of pull-backs)
    The decorrelated estimator of Syrota et al. (2024): at every grid point an
    ensemble member ``kᵢ`` is drawn independently and
    ``E ≈ (N − 1) Σᵢ ‖f_{kᵢ₊₁}(γᵢ₊₁) − f_{kᵢ}(γᵢ)‖²``. Stochastic and biased
    high: each segment also measures the disagreement ``f_a(z) − f_b(z)`` of
    two members, which does not vanish as the segment shrinks, so the energy
    grows like ``N`` times the ensemble variance and the "length" grows with
    ``N`` too. It is a training signal that keeps curves where the members
    agree, not a discretisation-invariant length; report lengths with
    ``"metric"`` or ``"chord"``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from latentgeo.curves.base import Curve
from latentgeo.metrics import Metric, MetricLike, as_metric

__all__ = [
    "ESTIMATORS",
    "curve_energy",
    "curve_length",
    "gauss_legendre_times",
    "invalid_squared_norm_rows",
    "lengths_from_squared_norms",
    "negative_rtol",
]

ESTIMATORS = ("metric", "chord", "sampled")
DEFAULT_NODES = 8  # Gauss–Legendre nodes per span for reported lengths
DEFAULT_POINTS = 128  # at least this many quadrature points per curve
DEFAULT_CHORD_POINTS = 256


@lru_cache(maxsize=32)
def _gauss_legendre_np(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(nodes)
    return (x + 1.0) / 2.0, w / 2.0


def gauss_legendre_times(
    breakpoints: Tensor, *, nodes: int = DEFAULT_NODES, num_points: int | None = None
) -> tuple[Tensor, Tensor]:
    """Gauss–Legendre nodes and weights on ``[0, 1]``, span by span.

    Every span between consecutive breakpoints is cut into ``r`` equal pieces
    (``r`` the smallest that gives at least ``num_points`` nodes in all) and
    each piece gets ``nodes`` Gauss–Legendre nodes.

    Args:
        breakpoints: ``(B, S + 1)``, increasing from 0 to 1.
        nodes: Gauss–Legendre nodes per piece.
        num_points: the least total number of nodes per curve (``None``: one
            piece per span).

    Returns:
        times ``(B, T)`` and weights ``(B, T)`` with ``T = S · r · nodes``; the
        weights of each curve sum to 1.

    Example:
        >>> import torch
        >>> bp = torch.tensor([[0.0, 0.5, 1.0]], dtype=torch.float64)
        >>> t, w = gauss_legendre_times(bp, nodes=2)
        >>> round(float((w * t**3).sum()), 12)  # exact for polynomials of degree ≤ 3 per span
        0.25
    """
    spans = breakpoints.shape[1] - 1
    pieces = 1 if num_points is None else max(1, math.ceil(num_points / (spans * nodes)))
    if pieces > 1:
        frac = torch.linspace(0.0, 1.0, pieces + 1, dtype=breakpoints.dtype)
        frac = frac.to(breakpoints.device)
        lo, hi = breakpoints[:, :-1, None], breakpoints[:, 1:, None]
        fine = (lo + frac[:-1] * (hi - lo)).flatten(1)
        breakpoints = torch.cat([fine, breakpoints[:, -1:]], 1)
    x_np, w_np = _gauss_legendre_np(nodes)
    x = torch.as_tensor(x_np, dtype=breakpoints.dtype, device=breakpoints.device)
    w = torch.as_tensor(w_np, dtype=breakpoints.dtype, device=breakpoints.device)
    lo, width = breakpoints[:, :-1, None], (breakpoints[:, 1:] - breakpoints[:, :-1])[..., None]
    return (lo + width * x).flatten(1), (width * w).flatten(1)


# --------------------------------------------------------------------- embeddings
def is_pullback(metric: Metric) -> bool:
    """Whether ``metric`` is a pull-back (or a sum, scaling or ensemble mean of them),
    so that the chord estimator applies."""
    return metric.is_pullback


# ---------------------------------------------------------------- the estimators
def speeds_squared(metric: Metric, pos: Tensor, vel: Tensor) -> Tensor:
    """``γ̇ᵀ G(γ) γ̇`` for points and velocities ``(B, T, d)`` -> ``(B, T)`` (unchecked)."""
    b, n, d = pos.shape
    return metric.squared_norm(pos.reshape(-1, d), vel.reshape(-1, d), validate=False).reshape(b, n)


def chord_differences(
    metric: Metric,
    pos: Tensor,
    *,
    estimator: str = "chord",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Squared chord lengths ``‖φ(γᵢ₊₁) − φ(γᵢ)‖²`` for points ``(B, N, d)`` -> ``(B, N − 1)``:
    :meth:`~latentgeo.metrics.Metric.chords` (``"chord"``) or
    :meth:`~latentgeo.metrics.Metric.sampled_chords` (``"sampled"``)."""
    if estimator == "chord":
        return metric.chords(pos)
    return metric.sampled_chords(pos, generator=generator)


def _check_estimator(estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")


def _check_inputs(
    metric_or_decoder: MetricLike, curve: object, num_points: int | None
) -> tuple[Metric, Curve]:
    metric = as_metric(metric_or_decoder)
    if not isinstance(curve, Curve):
        raise TypeError(f"curve must be a latentgeo Curve, got {type(curve).__name__}")
    if metric.latent_dim is not None and metric.latent_dim != curve.dim:
        raise ValueError(
            f"curve has latent dimension {curve.dim} but the metric expects {metric.latent_dim}"
        )
    if num_points is not None and (
        not isinstance(num_points, int) or isinstance(num_points, bool) or num_points < 2
    ):
        raise ValueError(f"num_points must be an int ≥ 2 or None, got {num_points!r}")
    metric.check_like(curve.z0)
    return metric, curve


def _integrals(
    metric_or_decoder: MetricLike,
    curve: Curve,
    num_points: int | None,
    estimator: str,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """``(integrand samples, weights)`` so that energy = Σ w·s and length = Σ w·sqrt(s)."""
    _check_estimator(estimator)
    metric, curve = _check_inputs(metric_or_decoder, curve, num_points)
    if estimator == "metric":
        t, w = gauss_legendre_times(
            curve.breakpoints(), num_points=DEFAULT_POINTS if num_points is None else num_points
        )
        pos, vel = curve._evaluate(t, derivative=True)
        assert vel is not None
        return speeds_squared(metric, pos, vel), w
    n = DEFAULT_CHORD_POINTS if num_points is None else num_points
    t = torch.linspace(0.0, 1.0, n, dtype=curve.z0.dtype, device=curve.z0.device)
    pos = curve._evaluate(t.expand(curve.num_curves, -1), derivative=False)[0]
    sq = chord_differences(metric, pos, estimator=estimator, generator=generator)
    # ‖Δφ‖² / Δt² is the squared speed on a segment of width Δt = 1 / (N − 1).
    return sq * (n - 1) ** 2, sq.new_full((1, 1), 1.0 / (n - 1)).expand_as(sq)


def curve_energy(
    metric_or_decoder: MetricLike,
    curve: Curve,
    *,
    num_points: int | None = None,
    estimator: str = "metric",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Energy ``E[γ] = ∫₀¹ γ̇ᵀ G(γ) γ̇ dt`` of each curve (no factor ½).

    Args:
        metric_or_decoder: a metric or anything :func:`~latentgeo.metrics.as_metric` accepts.
        curve: B curves.
        num_points: evaluation points per curve: at least this many quadrature
            nodes (``"metric"``, default 128) or the grid size (``"chord"``,
            ``"sampled"``, default 256).
        estimator: ``"metric"``, ``"chord"`` or ``"sampled"`` (see the module doc
            for their biases).
        generator: random generator for ``"sampled"``.

    Returns:
        Tensor of shape ``(B,)``.

    Example:
        >>> import torch
        >>> from latentgeo.curves import DiscreteCurve
        >>> curve = DiscreteCurve(torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]), num_points=4)
        >>> curve_energy(lambda z: 2 * z, curve)  # |2 (z1 - z0)|² = 100
        tensor([100.0000], grad_fn=<SumBackward1>)
    """
    sq, w = _integrals(metric_or_decoder, curve, num_points, estimator, generator)
    return (w * sq).sum(-1)


def curve_length(
    metric_or_decoder: MetricLike,
    curve: Curve,
    *,
    num_points: int | None = None,
    estimator: str = "metric",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Length ``L[γ] = ∫₀¹ sqrt(γ̇ᵀ G(γ) γ̇) dt`` of each curve.

    Arguments as :func:`curve_energy`.

    Returns:
        Tensor of shape ``(B,)``; ``NaN`` for a curve along which the metric gives a
        negative (beyond rounding) or non-finite squared norm: an invalid metric
        has no length (:func:`lengths_from_squared_norms`).

    Example:
        >>> import torch
        >>> from latentgeo.curves import CubicSpline
        >>> from latentgeo.testing import StereographicSphere
        >>> z0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
        >>> z1 = torch.tensor([[-1.0, 0.0]], dtype=torch.float64)
        >>> curve = CubicSpline(z0, z1)  # the line through 0: half a great circle
        >>> curve_length(StereographicSphere(), curve).detach()
        tensor([3.1416], dtype=torch.float64)
    """
    sq, w = _integrals(metric_or_decoder, curve, num_points, estimator, generator)
    return lengths_from_squared_norms(sq, w)


def negative_rtol(dtype: torch.dtype) -> float:
    """How negative (relative to the curve's largest ``|sq|``) rounding may make a squared norm."""
    return 1000.0 * torch.finfo(dtype).eps


def invalid_squared_norm_rows(sq: Tensor, valid: Tensor | None = None) -> Tensor:
    """Which rows of squared norms ``sq`` ``(B, T)`` hold a value no metric gives.

    A metric is positive semi-definite, so ``vᵀ G v ≥ 0``. A row is invalid if
    an entry (where ``valid``, a bool tensor of ``sq``'s shape, holds) is not
    finite or is below ``−1000 eps · max |sq|`` (:func:`negative_rtol`) of the
    row's finite entries (rounding of ``vᵀ G v`` along a null direction of a
    semi-definite ``G`` may come out slightly negative, an indefinite metric
    much more): the rule of :mod:`latentgeo.solvers.validity`.

    Returns:
        A ``(B,)`` bool tensor.

    Example:
        >>> invalid_squared_norm_rows(torch.tensor([[1.0, 0.0], [1.0, -0.5], [float("nan"), 1.0]]))
        tensor([False,  True,  True])
    """
    flat = sq.detach().reshape(sq.shape[0], -1)
    use = torch.ones_like(flat, dtype=torch.bool) if valid is None else valid.reshape(flat.shape)
    if flat.shape[1] == 0:
        return use.any(-1)
    finite = torch.isfinite(flat)
    scale = torch.where(use & finite, flat.abs(), 0.0).amax(-1, keepdim=True)
    negative = flat < -negative_rtol(flat.dtype) * scale
    return (use & (~finite | negative)).any(-1)


def lengths_from_squared_norms(sq: Tensor, w: Tensor) -> Tensor:
    """``Σ w · sqrt(sq)`` per row of ``(B, T)`` samples: ``NaN`` for a row that meets a
    squared norm no metric gives (:func:`invalid_squared_norm_rows`), never
    ``sqrt(max(0, ·))`` passed off as a length; rounding negatives count as 0.

    Example:
        >>> sq = torch.tensor([[4.0, 4.0], [4.0, -4.0]])
        >>> lengths_from_squared_norms(sq, torch.full((1, 2), 0.5))
        tensor([2., nan])
    """
    invalid = invalid_squared_norm_rows(sq)
    length = (w * sq.clamp_min(0.0).sqrt()).sum(-1)
    return torch.where(invalid, torch.full_like(length, torch.nan), length)
