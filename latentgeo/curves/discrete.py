"""Polylines with free interior vertices."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from latentgeo.curves.base import Curve

__all__ = ["DiscreteCurve"]


class DiscreteCurve(Curve):
    """B polylines from ``z0`` to ``z1`` through ``num_points`` vertices at equally spaced times.

    Vertex ``i`` sits at ``t_i = i / (num_points − 1)``; the first and last are
    the fixed end points, the others are free. Between vertices the curve is
    linear, so its velocity is constant on each segment; on a segment boundary
    it is the velocity of the segment on the right (the last segment is closed
    at ``t = 1``). It starts as the straight line at constant speed.

    Args:
        z0: start points, shape ``(B, d)``.
        z1: end points, shape ``(B, d)``.
        num_points: number of vertices, end points included (at least 2).

    Example:
        >>> import torch
        >>> curve = DiscreteCurve(torch.zeros(2, 3), torch.ones(2, 3), num_points=5)
        >>> curve(torch.tensor([0.5]))[0, 0].tolist()
        [0.5, 0.5, 0.5]
        >>> curve.vertices().shape
        torch.Size([2, 5, 3])
    """

    def __init__(self, z0: Tensor, z1: Tensor, num_points: int = 32) -> None:
        super().__init__(z0, z1)
        if not isinstance(num_points, int) or isinstance(num_points, bool) or num_points < 2:
            raise ValueError(f"num_points must be an int ≥ 2, got {num_points!r}")
        s = torch.linspace(0.0, 1.0, num_points, dtype=self.z0.dtype, device=self.z0.device)
        s = s[1:-1, None]
        self.inner = nn.Parameter(self.z0[:, None] + s * (self.z1 - self.z0)[:, None])

    @property
    def num_points(self) -> int:
        """The number of vertices per curve, end points included."""
        return int(self.inner.shape[1]) + 2

    def vertices(self) -> Tensor:
        """All vertices ``[z0, …, z1]``, shape ``(B, num_points, d)``."""
        return torch.cat([self.z0[:, None], self.inner, self.z1[:, None]], dim=1)

    def breakpoints(self) -> Tensor:
        """The vertex times ``i / (num_points − 1)``, shape ``(B, num_points)``."""
        n = self.inner.shape[1] + 2
        t = torch.linspace(0.0, 1.0, n, dtype=self.z0.dtype, device=self.z0.device)
        return t.expand(self.z0.shape[0], -1)

    def linear_basis(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The curve as a linear map of its vertices: ``(idx, N, dN)``, each ``(B, T, 2)``."""
        segments = self.inner.shape[1] + 1
        s = t * segments
        i = s.floor().long().clamp(0, segments - 1)
        frac = s - i.to(s.dtype)
        idx = torch.stack([i, i + 1], -1)
        vals = torch.stack([1.0 - frac, frac], -1)
        dvals = torch.stack([torch.full_like(frac, -segments), torch.full_like(frac, segments)], -1)
        return idx, vals, dvals

    def _evaluate(self, t: Tensor, *, derivative: bool) -> tuple[Tensor, Tensor | None]:
        p = self.vertices()
        segments = p.shape[1] - 1
        s = t * segments
        i = s.floor().long().clamp(0, segments - 1)  # (B, T)
        frac = (s - i.to(s.dtype))[..., None]
        d = p.shape[-1]
        left = p.gather(1, i[..., None].expand(-1, -1, d))
        right = p.gather(1, (i + 1)[..., None].expand(-1, -1, d))
        pos = left + frac * (right - left)
        return pos, (segments * (right - left) if derivative else None)
