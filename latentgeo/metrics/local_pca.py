"""The local diagonal PCA metric learned from data (Arvanitidis, Hansen, Hauberg 2016)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from latentgeo._validation import check_points
from latentgeo.metrics.base import Metric

__all__ = ["LocalPCAMetric"]

# at most this many numbers in one (points × data × d) block of differences
_BLOCK = 1 << 22


class LocalPCAMetric(Metric):
    """``M(x) = diag(Σ_n w_n(x) (x_n − x)² + ρ)⁻¹`` with ``w_n(x) = exp(−|x_n − x|² / (2σ²))``.

    The metric of the LAND paper, learned from data alone: small along the
    directions in which nearby data spread (the data's local principal
    directions, restricted to the axes), large across them and far from the
    data (where it tends to ``1/ρ``). Geodesics follow the data.

    It is a closed form, so every derivative (Christoffel symbols, curvature)
    is exact by automatic differentiation; ``squared_norm`` and ``inner`` use the
    diagonal directly (``Σ_i v_i² M_ii``), never a ``d × d`` matrix.

    Args:
        data: the points ``x_n``, shape ``(N, d)`` (a buffer: ``.to()``/``.double()`` move it).
        sigma: ``σ > 0``, the width of the Gaussian neighbourhood.
        rho: ``ρ > 0``, the floor of the local variances (bounds the metric by ``1/ρ``).

    Example:
        >>> import torch
        >>> data = torch.tensor([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
        >>> g = LocalPCAMetric(data, sigma=1.0, rho=0.01)
        >>> m = g.diagonal(torch.zeros(1, 2, dtype=torch.float64))  # data spread along x only
        >>> bool(m[0, 0] < m[0, 1]), float(m[0, 1])
        (True, 100.0)
    """

    data: Tensor

    def __init__(self, data: Tensor, *, sigma: float, rho: float = 1e-3) -> None:
        super().__init__()
        data = check_points(data, "data")
        if data.ndim != 2:
            raise ValueError(f"data must have shape (N, d), got {tuple(data.shape)}")
        for name, value in (("sigma", sigma), ("rho", rho)):
            if not isinstance(value, (int, float)) or not (0 < value < math.inf):
                raise ValueError(f"{name} must be a finite positive number, got {value!r}")
        self.register_buffer("data", data.detach().clone())
        self.sigma = float(sigma)
        self.rho = float(rho)
        self.latent_dim = int(data.shape[1])

    def extra_repr(self) -> str:
        n, d = self.data.shape
        return f"num_data={n}, d={d}, sigma={self.sigma}, rho={self.rho}"

    def diagonal(self, z: Tensor) -> Tensor:
        """The diagonal of ``M(z)``.

        Args:
            z: points ``(..., d)``.

        Returns:
            Tensor ``(..., d)``.
        """
        return self._diagonal(check_points(z, "z", dim=self.latent_dim))

    def _diagonal(self, z: Tensor) -> Tensor:
        if z.dtype != self.data.dtype or z.device != self.data.device:
            raise TypeError(
                f"z has dtype {z.dtype} on {z.device} but the metric's data is {self.data.dtype} "
                f"on {self.data.device}; convert one of them (e.g. metric.to(z.dtype))"
            )
        batch, d = z.shape[:-1], z.shape[-1]
        flat = z.reshape(-1, d)
        rows = max(1, _BLOCK // max(1, self.data.numel()))
        parts = []
        for start in range(0, flat.shape[0], rows):
            diff = self.data - flat[start : start + rows, None, :]  # (n, N, d)
            sq = diff * diff
            w = torch.exp(-sq.sum(-1) / (2.0 * self.sigma**2))  # (n, N)
            parts.append(1.0 / (torch.einsum("nk,nkd->nd", w, sq) + self.rho))
        out = torch.cat(parts) if len(parts) > 1 else parts[0]
        return out.reshape(*batch, d)

    def _metric_tensor(self, z: Tensor) -> Tensor:
        return torch.diag_embed(self._diagonal(z))

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        z, v = torch.broadcast_tensors(z, v)
        return (v * v * self._diagonal(z)).sum(-1)

    def _inner(self, z: Tensor, u: Tensor, v: Tensor) -> Tensor:
        z, u, v = torch.broadcast_tensors(z, u, v)
        return (u * v * self._diagonal(z)).sum(-1)
