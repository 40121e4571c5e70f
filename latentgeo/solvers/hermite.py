"""Curves from ODE solutions: piecewise cubic Hermite interpolation of positions and velocities.

The shooting and boundary-value solvers know the geodesic's position *and*
velocity at a grid of times; the cubic Hermite interpolant through both is
C¹, fourth-order accurate, and gives velocities in closed form.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from latentgeo.curves.base import Curve
from latentgeo.metrics import Metric

__all__ = ["HermiteCurve", "length_and_energy"]


class HermiteCurve(Curve):
    """B curves through given positions and velocities at knots ``0 = t_0 < … < t_K = 1``.

    Args:
        knots: times of shape ``(K + 1,)`` or ``(B, K + 1)``, from 0 to 1.
        points: positions ``(B, K + 1, d)``.
        velocities: velocities ``d γ / dt`` at the knots, ``(B, K + 1, d)``.

    Example:
        >>> import torch
        >>> knots = torch.linspace(0, 1, 3)
        >>> p = torch.stack([knots, knots**2], -1)[None]  # γ(t) = (t, t²)
        >>> v = torch.stack([torch.ones(3), 2 * knots], -1)[None]
        >>> curve = HermiteCurve(knots, p, v)
        >>> curve(torch.tensor([0.25]))
        tensor([[[0.2500, 0.0625]]])
    """

    knots: Tensor
    points: Tensor
    velocities: Tensor

    def __init__(self, knots: Tensor, points: Tensor, velocities: Tensor) -> None:
        if points.ndim != 3 or velocities.shape != points.shape:
            raise ValueError(
                f"points and velocities must both have shape (B, K + 1, d), got "
                f"{tuple(points.shape)} and {tuple(velocities.shape)}"
            )
        if points.shape[1] < 2:
            raise ValueError("a HermiteCurve needs at least two knots")
        super().__init__(points[:, 0], points[:, -1])
        knots = knots.to(dtype=points.dtype, device=points.device)
        if knots.ndim == 1:
            knots = knots.expand(points.shape[0], -1)
        if knots.shape != points.shape[:2]:
            raise ValueError(
                f"knots must have shape (K + 1,) or (B, K + 1) = {tuple(points.shape[:2])}, "
                f"got {tuple(knots.shape)}"
            )
        self.register_buffer("knots", knots.detach().clone())
        self.register_buffer("points", points.detach().clone())
        self.register_buffer("velocities", velocities.detach().clone())

    def breakpoints(self) -> Tensor:
        return self.knots

    def _evaluate(self, t: Tensor, *, derivative: bool) -> tuple[Tensor, Tensor | None]:
        knots = self.knots
        k = knots.shape[1] - 1
        right = torch.searchsorted(knots.contiguous(), t.detach().contiguous(), right=True)
        right = right.clamp(1, k)
        left = right - 1
        t0 = torch.gather(knots, 1, left)
        h = torch.gather(knots, 1, right) - t0
        s = ((t - t0) / h)[..., None]
        d = self.points.shape[-1]

        def rows(x: Tensor, idx: Tensor) -> Tensor:
            return torch.gather(x, 1, idx[..., None].expand(*idx.shape, d))

        p0, p1 = rows(self.points, left), rows(self.points, right)
        m0, m1 = (
            rows(self.velocities, left) * h[..., None],
            rows(self.velocities, right) * h[..., None],
        )
        s2, s3 = s * s, s * s * s
        pos = (
            (2 * s3 - 3 * s2 + 1) * p0
            + (s3 - 2 * s2 + s) * m0
            + (-2 * s3 + 3 * s2) * p1
            + (s3 - s2) * m1
        )
        if not derivative:
            return pos, None
        vel = (
            (6 * s2 - 6 * s) * p0
            + (3 * s2 - 4 * s + 1) * m0
            + (-6 * s2 + 6 * s) * p1
            + (3 * s2 - 2 * s) * m1
        ) / h[..., None]
        return pos, vel


def length_and_energy(metric: Metric, curve: Curve, *, nodes: int = 4) -> tuple[Tensor, Tensor]:
    """Length ``∫ ‖γ̇‖_G`` and energy ``∫ γ̇ᵀ G γ̇`` over ``[0, 1]``, per curve ``(B,)``.

    Gauss–Legendre quadrature with ``nodes`` points on every span between the
    curve's breakpoints, all spans and curves in one metric call.
    """
    x, w = np.polynomial.legendre.leggauss(nodes)
    ref = curve.z0
    xs = torch.as_tensor((x + 1) / 2, dtype=ref.dtype, device=ref.device)
    ws = torch.as_tensor(w / 2, dtype=ref.dtype, device=ref.device)
    bp = curve.breakpoints()  # (B, S + 1)
    lo, width = bp[:, :-1], bp[:, 1:] - bp[:, :-1]
    t = (lo[..., None] + width[..., None] * xs).reshape(bp.shape[0], -1)
    weights = (width[..., None] * ws).reshape(bp.shape[0], -1)
    pos, vel = curve.points_and_velocities(t.clamp(0.0, 1.0))
    sq = metric.squared_norm(pos, vel, validate=False).clamp_min(0.0)
    return (weights * sq.sqrt()).sum(-1), (weights * sq).sum(-1)
