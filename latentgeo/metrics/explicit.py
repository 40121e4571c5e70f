"""Metrics given by a closed-form metric tensor ``G(z)``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from latentgeo.metrics.base import Metric

__all__ = ["ExplicitMetric"]


class ExplicitMetric(Metric):
    """A metric from a closed-form tensor field ``z ↦ G(z)``.

    Use it for conformal metrics, learned metrics such as the RHVAE's and
    analytic test manifolds. ``tensor_fn`` must be differentiable with torch
    (so that Christoffel symbols and gradients through lengths work) and map
    ``(..., d)`` to ``(..., d, d)``.

    Args:
        tensor_fn: the metric tensor field.
        latent_dim: ``d``, if known (used to check inputs).

    Example:
        >>> import torch
        >>> def poincare(z):  # 4 / (1 - |z|²)² I
        ...     s = 4.0 / (1.0 - (z * z).sum(-1)) ** 2
        ...     return s[..., None, None] * torch.eye(z.shape[-1], dtype=z.dtype)
        >>> g = ExplicitMetric(poincare, latent_dim=2)
        >>> g.metric_tensor(torch.zeros(2))
        tensor([[4., 0.],
                [0., 4.]])
    """

    def __init__(
        self, tensor_fn: Callable[[Tensor], Tensor], *, latent_dim: int | None = None
    ) -> None:
        super().__init__()
        if not callable(tensor_fn):
            raise TypeError(f"tensor_fn must be callable, got {type(tensor_fn).__name__}")
        self.tensor_fn = tensor_fn
        self.latent_dim = latent_dim

    def _metric_tensor(self, z: Tensor) -> Tensor:
        g = self.tensor_fn(z)
        d = z.shape[-1]
        if not isinstance(g, Tensor) or g.shape[-2:] != (d, d):
            got = tuple(g.shape) if isinstance(g, Tensor) else type(g).__name__
            raise ValueError(f"tensor_fn must return a tensor of shape (..., {d}, {d}), got {got}")
        return g.expand(*z.shape[:-1], d, d) if g.ndim < z.ndim + 1 else g

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        z, v = torch.broadcast_tensors(z, v)
        return torch.einsum("...i,...ij,...j->...", v, self._metric_tensor(z), v)

    def _inner(self, z: Tensor, u: Tensor, v: Tensor) -> Tensor:
        z, u, v = torch.broadcast_tensors(z, u, v)
        return torch.einsum("...i,...ij,...j->...", u, self._metric_tensor(z), v)
