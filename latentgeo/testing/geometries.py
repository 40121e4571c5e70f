"""Exact test geometries: metrics, distances and exponential maps in closed form.

Every metric and solver in latentgeo is checked against these.

* :class:`StereographicSphere`: the unit sphere ``S^d ⊂ R^{d+1}`` through inverse
  stereographic projection, ``f(z) = (2z, |z|² − 1) / (1 + |z|²)``;
  ``G(z) = 4 / (1 + |z|²)² I``; distance = great-circle angle; exponential and
  logarithm maps in closed form.
* :class:`Paraboloid`: the graph ``f(z) = (z, |z|²)``; ``G(z) = I + 4 z zᵀ``.
* :class:`LinearMap`: ``f(z) = A z``; ``G = Aᵀ A``; geodesics are straight lines.
* :class:`PoincareDisk`: the explicit metric ``4 / (1 − |z|²)² I`` on the unit ball
  (curvature −1), with closed-form distance, exponential and logarithm maps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from latentgeo.metrics import ExplicitMetric

__all__ = [
    "LinearMap",
    "Paraboloid",
    "PoincareDisk",
    "StereographicSphere",
    "near_conjugate_pairs",
]


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(-1)


class StereographicSphere(nn.Module):
    """The unit sphere ``S^d`` as a decoder ``R^d -> R^{d+1}`` (inverse stereographic projection).

    Example:
        >>> import torch
        >>> from latentgeo.metrics import as_metric
        >>> sphere = StereographicSphere()
        >>> z = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
        >>> torch.allclose(as_metric(sphere).metric_tensor(z), sphere.metric_tensor(z))
        True
    """

    def forward(self, z: Tensor) -> Tensor:
        """``(..., d) -> (..., d + 1)``: the point on the sphere."""
        sq = _dot(z, z).unsqueeze(-1)
        return torch.cat([2.0 * z, sq - 1.0], dim=-1) / (1.0 + sq)

    @staticmethod
    def project(x: Tensor) -> Tensor:
        """Stereographic projection from the north pole, ``(..., d + 1) -> (..., d)``."""
        return x[..., :-1] / (1.0 - x[..., -1:])

    @staticmethod
    def metric_tensor(z: Tensor) -> Tensor:
        """``4 / (1 + |z|²)² I``, shape ``(..., d, d)``."""
        scale = 4.0 / (1.0 + _dot(z, z)) ** 2
        eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
        return scale[..., None, None] * eye

    def distance(self, z0: Tensor, z1: Tensor) -> Tensor:
        """Great-circle distance, shape ``(...)``; accurate for near and antipodal points."""
        x0, x1 = self(z0), self(z1)
        return 2.0 * torch.atan2((x0 - x1).norm(dim=-1), (x0 + x1).norm(dim=-1))

    def exp(self, z: Tensor, v: Tensor) -> Tensor:
        """Exponential map ``exp_z(v)`` in latent coordinates, shape ``(..., d)``.

        Valid while the geodesic's end point is not the north pole (the
        projection's centre).
        """
        x = self(z)
        sq = _dot(z, z).unsqueeze(-1)
        # J v of the embedding, in closed form
        w = (2.0 * v * (1.0 + sq) - 2.0 * z * 2.0 * _dot(z, v).unsqueeze(-1)) / (1.0 + sq) ** 2
        w_last = 4.0 * _dot(z, v).unsqueeze(-1) / (1.0 + sq) ** 2
        w = torch.cat([w, w_last], dim=-1)
        speed = w.norm(dim=-1, keepdim=True)
        unit = w / speed.clamp_min(torch.finfo(w.dtype).tiny)
        y = torch.cos(speed) * x + torch.sin(speed) * unit
        return self.project(y)

    def log(self, z0: Tensor, z1: Tensor) -> Tensor:
        """Logarithm map ``log_{z0}(z1)`` in latent coordinates, shape ``(..., d)``.

        The great circle's initial direction ``u`` at ``x0 = f(z0)``, of length the
        distance, pulled back: ``v = Jᵀ u / λ²`` (``J`` the embedding's Jacobian,
        conformal: ``JᵀJ = λ² I``, ``λ = 2 / (1 + |z0|²)``). Undefined for antipodal points.

        Example:
            >>> import torch
            >>> sphere = StereographicSphere()
            >>> z0 = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
            >>> v = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
            >>> torch.allclose(sphere.log(z0, sphere.exp(z0, v)), v)
            True
        """
        x0, x1 = self(z0), self(z1)
        w = x1 - _dot(x0, x1).unsqueeze(-1) * x0  # the direction to x1, tangent at x0
        unit = w / w.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
        u = unit * self.distance(z0, z1).unsqueeze(-1)
        top, last = u[..., :-1], u[..., -1:]
        one_s = 1.0 + _dot(z0, z0).unsqueeze(-1)
        jtu = 2.0 * top / one_s + 4.0 * z0 * (last - _dot(z0, top).unsqueeze(-1)) / one_s**2
        return jtu * one_s**2 / 4.0


def near_conjugate_pairs(d: int = 2, n: int = 16, seed: int = 11) -> tuple[Tensor, Tensor]:
    """Pairs ``(z0, z1)`` on :class:`StereographicSphere`'s ``S^d``, 2.3 … 3.0 apart
    (π is the conjugate point, where ``∂ exp/∂v`` is singular): hard log maps.

    Pairs whose ``z1`` lies next to the chart's pole (``|z1| ≥ 20``) are left out, so
    there may be fewer than ``n``. The exact answer is ``StereographicSphere().log``.

    Args:
        d: the latent dimension.
        n: pairs drawn.
        seed: their seed.

    Returns:
        ``(z0, z1)``, float64, each ``(n', d)`` with ``n' ≤ n``.
    """
    sphere = StereographicSphere()
    gen = torch.Generator().manual_seed(seed)
    z0 = 0.7 * torch.randn(n, d, generator=gen, dtype=torch.float64)
    direction = torch.randn(n, d, generator=gen, dtype=torch.float64)
    lam = 2.0 / (1.0 + _dot(z0, z0).unsqueeze(-1))  # G = λ² I
    dist = torch.linspace(2.3, 3.0, n, dtype=torch.float64)[:, None]
    z1 = sphere.exp(z0, direction / direction.norm(dim=-1, keepdim=True) / lam * dist)
    keep = z1.norm(dim=-1) < 20.0
    return z0[keep], z1[keep]


class Paraboloid(nn.Module):
    """The paraboloid graph ``f(z) = (z, |z|²)`` as a decoder ``R^d -> R^{d+1}``."""

    def forward(self, z: Tensor) -> Tensor:
        """``(..., d) -> (..., d + 1)``."""
        return torch.cat([z, _dot(z, z).unsqueeze(-1)], dim=-1)

    @staticmethod
    def metric_tensor(z: Tensor) -> Tensor:
        """``I + 4 z zᵀ``, shape ``(..., d, d)``."""
        eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
        return eye + 4.0 * z.unsqueeze(-1) * z.unsqueeze(-2)


class LinearMap(nn.Module):
    """The linear decoder ``f(z) = A z``; ``G = Aᵀ A`` everywhere, straight geodesics.

    Args:
        matrix: ``A`` of shape ``(m, d)``.
    """

    def __init__(self, matrix: Tensor) -> None:
        super().__init__()
        if matrix.ndim != 2:
            raise ValueError(f"matrix must have shape (m, d), got {tuple(matrix.shape)}")
        self.matrix = nn.Parameter(matrix.clone(), requires_grad=False)

    def forward(self, z: Tensor) -> Tensor:
        """``(..., d) -> (..., m)``."""
        return z @ self.matrix.T

    def metric_tensor(self, z: Tensor) -> Tensor:
        """``Aᵀ A`` broadcast to ``(..., d, d)``."""
        g = self.matrix.T @ self.matrix
        return g.expand(*z.shape[:-1], *g.shape)

    def distance(self, z0: Tensor, z1: Tensor) -> Tensor:
        """``|A (z1 − z0)|``, shape ``(...)``."""
        return ((z1 - z0) @ self.matrix.T).norm(dim=-1)


def _mobius_add(x: Tensor, y: Tensor) -> Tensor:
    xy, xx, yy = _dot(x, y).unsqueeze(-1), _dot(x, x).unsqueeze(-1), _dot(y, y).unsqueeze(-1)
    num = (1.0 + 2.0 * xy + yy) * x + (1.0 - xx) * y
    return num / (1.0 + 2.0 * xy + xx * yy)


class PoincareDisk(ExplicitMetric):
    """The Poincaré ball ``4 / (1 − |z|²)² I`` (curvature −1) as an explicit metric.

    Example:
        >>> import torch
        >>> disk = PoincareDisk()
        >>> z0 = torch.zeros(1, 2, dtype=torch.float64)
        >>> z1 = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
        >>> disk.distance(z0, z1)  # 2 artanh(0.5) = log 3
        tensor([1.0986], dtype=torch.float64)
    """

    def __init__(self) -> None:
        super().__init__(PoincareDisk.conformal_tensor)

    @staticmethod
    def conformal_tensor(z: Tensor) -> Tensor:
        """``4 / (1 − |z|²)² I``, shape ``(..., d, d)``."""
        scale = 4.0 / (1.0 - _dot(z, z)) ** 2
        eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
        return scale[..., None, None] * eye

    @staticmethod
    def distance(z0: Tensor, z1: Tensor) -> Tensor:
        """``2 artanh |(−z0) ⊕ z1|``, shape ``(...)``."""
        return 2.0 * torch.atanh(_mobius_add(-z0, z1).norm(dim=-1))

    @staticmethod
    def exp(z: Tensor, v: Tensor) -> Tensor:
        """``exp_z(v) = z ⊕ tanh(|v| / (1 − |z|²)) v / |v|``, shape ``(..., d)``."""
        lam = 2.0 / (1.0 - _dot(z, z)).unsqueeze(-1)
        speed = v.norm(dim=-1, keepdim=True)
        unit = v / speed.clamp_min(torch.finfo(v.dtype).tiny)
        return _mobius_add(z, torch.tanh(lam * speed / 2.0) * unit)

    @staticmethod
    def log(z0: Tensor, z1: Tensor) -> Tensor:
        """``log_{z0}(z1) = (1 − |z0|²) artanh|w| w / |w|`` with ``w = (−z0) ⊕ z1``."""
        w = _mobius_add(-z0, z1)
        wn = w.norm(dim=-1, keepdim=True)
        unit = w / wn.clamp_min(torch.finfo(w.dtype).tiny)
        return (1.0 - _dot(z0, z0)).unsqueeze(-1) * torch.atanh(wn) * unit
