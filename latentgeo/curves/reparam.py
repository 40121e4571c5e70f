"""Reparametrisation of curves to constant speed under a metric."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from latentgeo._options import check_int
from latentgeo.curves.base import Curve
from latentgeo.curves.length import gauss_legendre_times, speeds_squared
from latentgeo.metrics import MetricLike, as_metric

__all__ = [
    "ReparametrizedCurve",
    "arc_length_nodes",
    "constant_speed",
    "reparametrize_by_speeds",
]


def _subdivide(breakpoints: Tensor, pieces: int) -> Tensor:
    frac = torch.linspace(0.0, 1.0, pieces + 1, dtype=breakpoints.dtype)
    frac = frac.to(breakpoints.device)
    lo, hi = breakpoints[:, :-1, None], breakpoints[:, 1:, None]
    fine = (lo + frac[:-1] * (hi - lo)).flatten(1)
    return torch.cat([fine, breakpoints[:, -1:]], 1)


class ReparametrizedCurve(Curve):
    """A curve ``γ(u(t))`` traversed with a new, monotone time ``u(t)``.

    ``u`` is a monotone piecewise-cubic (Fritsch–Carlson) interpolant through
    nodes ``(τ_j, u_j)``, so ``γ(u(t))`` keeps the end points and the path of
    ``γ``; velocities are exact, ``γ̇(u(t)) u̇(t)``. Build one with
    :func:`constant_speed`.

    Args:
        base: the curve to reparametrise.
        tau: new times of the nodes, ``(B, M + 1)``, increasing from 0 to 1.
        u: old times of the nodes, ``(B, M + 1)``, increasing from 0 to 1.
        slope: ``du/dτ`` at the nodes, ``(B, M + 1)``, non-negative.
    """

    tau: Tensor
    u: Tensor
    slope: Tensor

    def __init__(self, base: Curve, tau: Tensor, u: Tensor, slope: Tensor) -> None:
        super().__init__(base.z0, base.z1)
        self.base = base
        # Fritsch–Carlson: limit the slopes so that the interpolant stays monotone.
        secant = (u[:, 1:] - u[:, :-1]) / (tau[:, 1:] - tau[:, :-1])
        bound = torch.cat([secant[:, :1], torch.minimum(secant[:, 1:], secant[:, :-1])], 1)
        bound = torch.cat([bound, secant[:, -1:]], 1)
        slope = torch.minimum(slope.clamp_min(0.0), 3.0 * bound)
        self.register_buffer("tau", tau.contiguous())
        self.register_buffer("u", u.contiguous())
        self.register_buffer("slope", slope.contiguous())

    def breakpoints(self) -> Tensor:
        """The nodes ``τ_j`` (the time map is C¹ with jumps in ``ü`` there), ``(B, M + 1)``."""
        return self.tau

    def time_map(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(u(t), u̇(t))`` for ``t`` of shape ``(B, T)``."""
        tau, u, m = self.tau, self.u, self.slope
        j = (torch.searchsorted(tau, t.contiguous(), right=True) - 1).clamp(0, tau.shape[1] - 2)
        t0, t1 = tau.gather(1, j), tau.gather(1, j + 1)
        u0, u1 = u.gather(1, j), u.gather(1, j + 1)
        m0, m1 = m.gather(1, j), m.gather(1, j + 1)
        h = t1 - t0
        x = (t - t0) / h
        x2, x3 = x * x, x * x * x
        val = (
            (2 * x3 - 3 * x2 + 1) * u0
            + (x3 - 2 * x2 + x) * h * m0
            + (-2 * x3 + 3 * x2) * u1
            + (x3 - x2) * h * m1
        )
        der = (
            (6 * x2 - 6 * x) * u0 / h
            + (3 * x2 - 4 * x + 1) * m0
            + (-6 * x2 + 6 * x) * u1 / h
            + (3 * x2 - 2 * x) * m1
        )
        return val.clamp(0.0, 1.0), der

    def _evaluate(self, t: Tensor, *, derivative: bool) -> tuple[Tensor, Tensor | None]:
        s, ds = self.time_map(t)
        pos, vel = self.base._evaluate(s, derivative=derivative)
        return pos, (vel * ds[..., None] if vel is not None else None)


def arc_length_nodes(
    curve: Curve, *, min_pieces: int = 16, nodes: int = 4, per_span: int = 1
) -> tuple[Tensor, ...]:
    """Table nodes and Gauss–Legendre quadrature for arc lengths along ``curve``.

    Every span between the curve's breakpoints is cut into equal pieces, at
    least ``min_pieces`` pieces in all and at least ``per_span`` per span, and
    each piece gets ``nodes`` Gauss–Legendre nodes.

    Returns:
        ``(u, t, w)``: piece boundaries ``(B, M + 1)``, quadrature times and
        weights ``(B, M · nodes)``.
    """
    bp = curve.breakpoints()
    pieces = max(per_span, math.ceil(min_pieces / (bp.shape[1] - 1)))
    u = _subdivide(bp, pieces) if pieces > 1 else bp
    t, w = gauss_legendre_times(u, nodes=nodes)
    return u, t, w


@torch.no_grad()
def reparametrize_by_speeds(
    curve: Curve, u: Tensor, w: Tensor, speed: Tensor, node_speed: Tensor
) -> ReparametrizedCurve:
    """The constant-speed reparametrisation from speeds already computed.

    Args:
        curve: the curves.
        u: piece boundaries ``(B, M + 1)`` (from :func:`arc_length_nodes`).
        w: quadrature weights ``(B, M · q)``.
        speed: ``|γ̇|_G`` at the quadrature times, ``(B, M · q)``.
        node_speed: ``|γ̇|_G`` at ``u``, ``(B, M + 1)``.
    """
    piece = (w * speed).reshape(u.shape[0], u.shape[1] - 1, -1).sum(-1)
    s = torch.cat([piece.new_zeros(piece.shape[0], 1), piece.cumsum(1)], 1)
    length = s[:, -1:]
    # A tiny share of the old time keeps τ strictly increasing where the curve stalls.
    eps = 1e3 * torch.finfo(s.dtype).eps
    positive = length > 0
    tau = torch.where(positive, (1 - eps) * s / torch.where(positive, length, 1.0), u)
    tau = torch.where(positive, tau + eps * u, tau)
    slope = torch.where(
        positive, 1.0 / ((1 - eps) * node_speed / length.clamp_min(1e-300) + eps), 1.0
    )
    return ReparametrizedCurve(curve, tau, u, slope)


@torch.no_grad()
def constant_speed(
    metric_or_decoder: MetricLike, curve: Curve, *, min_pieces: int = 16, nodes: int = 4
) -> ReparametrizedCurve:
    """Reparametrise curves to constant speed ``|γ̇(t)|_G = L`` under a metric.

    The arc length is integrated by Gauss–Legendre quadrature on pieces of
    the curve's spans (at least ``min_pieces`` in all); its inverse is
    interpolated with the exact slopes ``du/ds = 1 / |γ̇(u)|_G`` (monotone
    cubic Hermite), so the speed is constant up to the interpolation error,
    which falls like ``h³``. A curve of zero length keeps its times.

    Args:
        metric_or_decoder: a metric or a decoder.
        curve: the curves to reparametrise.
        min_pieces: at least this many pieces in the arc-length table.
        nodes: Gauss–Legendre nodes per piece.

    Returns:
        A :class:`ReparametrizedCurve` with the same end points and paths.

    Example:
        >>> import torch
        >>> from latentgeo.curves import CubicSpline
        >>> from latentgeo.testing import StereographicSphere
        >>> z0 = torch.tensor([[-3.0, 0.0]], dtype=torch.float64)
        >>> z1 = torch.tensor([[3.0, 0.0]], dtype=torch.float64)
        >>> sphere = StereographicSphere()
        >>> fast = constant_speed(sphere, CubicSpline(z0, z1, num_knots=8), min_pieces=64)
        >>> t = torch.linspace(0, 1, 5, dtype=torch.float64)
        >>> speed = as_metric(sphere).norm(fast(t), fast.velocity(t))
        >>> bool((speed / speed.mean() - 1).abs().max() < 1e-4)
        True
    """
    check_int(min_pieces, "min_pieces")
    check_int(nodes, "nodes")
    metric = as_metric(metric_or_decoder)
    u, t, w = arc_length_nodes(curve, min_pieces=min_pieces, nodes=nodes)
    pos, vel = curve._evaluate(t, derivative=True)
    assert vel is not None
    speed = speeds_squared(metric, pos, vel).clamp_min(0.0).sqrt()
    pos_n, vel_n = curve._evaluate(u, derivative=True)
    assert vel_n is not None
    node_speed = speeds_squared(metric, pos_n, vel_n).clamp_min(0.0).sqrt()
    return reparametrize_by_speeds(curve, u, w, speed, node_speed)
