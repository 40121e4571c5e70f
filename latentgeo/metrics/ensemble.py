"""The metric of an ensemble of decoders: the mean of the members' metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from latentgeo.metrics.base import Metric

__all__ = ["MeanMetric"]


class MeanMetric(Metric):
    """``G(z) = (1/K) Σ_k G_k(z)``, the expected metric of an ensemble (Syrota et al. 2024).

    Args:
        metrics: the K member metrics (at least one).

    Example:
        >>> import torch
        >>> from latentgeo.metrics import PullbackMetric
        >>> g = MeanMetric([PullbackMetric(lambda z: 2 * z), PullbackMetric(lambda z: 0 * z)])
        >>> g.metric_tensor(torch.zeros(2))
        tensor([[2., 0.],
                [0., 2.]])
    """

    def __init__(self, metrics: Sequence[Metric]) -> None:
        super().__init__()
        if len(metrics) == 0:
            raise ValueError("metrics must hold at least one member metric, got none")
        for m in metrics:
            if not isinstance(m, Metric):
                raise TypeError(f"metrics must hold Metric instances, got {type(m).__name__}")
        self.members = nn.ModuleList(metrics)
        dims = {m.latent_dim for m in metrics if m.latent_dim is not None}
        if len(dims) > 1:
            raise ValueError(f"member metrics must share one latent dimension, got {sorted(dims)}")
        self.latent_dim = dims.pop() if dims else None

    def __len__(self) -> int:
        return len(self.members)

    def metrics(self) -> list[Metric]:
        """The member metrics."""
        return cast(list[Metric], list(self.members))

    def member_squared_norms(self, z: Tensor, v: Tensor) -> Tensor:
        """Every member's ``vᵀ G_k(z) v``, shape ``(K, ...)`` (for sampled estimators)."""
        return torch.stack([m._squared_norm(z, v) for m in self.metrics()])

    def _metric_tensor(self, z: Tensor) -> Tensor:
        return torch.stack([m._metric_tensor(z) for m in self.metrics()]).mean(0)

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        return self.member_squared_norms(z, v).mean(0)

    def _inner(self, z: Tensor, u: Tensor, v: Tensor) -> Tensor:
        return torch.stack([m._inner(z, u, v) for m in self.metrics()]).mean(0)
