"""The metric of an ensemble of decoders: the mean of the members' metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import singledispatch
from typing import Any, cast

import torch
from torch import Tensor, nn

from latentgeo.metrics.base import CompositeMetric, Metric
from latentgeo.metrics.terms import GeodesicTerms

__all__ = ["MeanMetric", "ensemble_members"]


@singledispatch
def ensemble_members(obj: object) -> list[Any] | None:
    """The members of an ensemble of decoders, or ``None`` for anything else.

    A list, tuple or ``nn.ModuleList`` is an ensemble of its items;
    :mod:`latentgeo.models` registers :class:`~latentgeo.models.EnsembleDecoder`
    (``ensemble_members.register``), so this module knows nothing of the models.

    Args:
        obj: a decoder, an ensemble of decoders, or anything else.

    Returns:
        The K members, or ``None`` when ``obj`` is not an ensemble.

    Example:
        >>> ensemble_members([abs, abs]), ensemble_members(abs)
        ([<built-in function abs>, <built-in function abs>], None)
    """
    return None


@ensemble_members.register(list)
@ensemble_members.register(tuple)
@ensemble_members.register(nn.ModuleList)
def _(obj: list[Any] | tuple[Any, ...] | nn.ModuleList) -> list[Any]:
    return list(obj)


class MeanMetric(CompositeMetric):
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

    # ------------------------------------------------- what solvers ask of a metric
    def geodesic_terms(self, z: Tensor, v: Tensor) -> GeodesicTerms:
        terms = GeodesicTerms.total([m.geodesic_terms(z, v) for m in self.metrics()])
        return terms.scaled(1.0 / len(self))

    def geodesic_terms_along(self, z: Tensor, v: Tensor) -> GeodesicTerms:
        if self._own_terms(MeanMetric):
            return Metric.geodesic_terms_along(self, z, v)
        terms = GeodesicTerms.total([m.geodesic_terms_along(z, v) for m in self.metrics()])
        return terms.scaled(1.0 / len(self))

    def flat_embedding(self, z: Tensor) -> Tensor:
        """The members' embeddings side by side, over ``√K``."""
        parts = [m.flat_embedding(z) for m in self.metrics()]
        return torch.cat(parts, dim=-1) / math.sqrt(len(parts))

    def chords(self, pos: Tensor) -> Tensor:
        """The deterministic all-members form ``(1/K) Σ_k ‖f_k(xᵢ₊₁) − f_k(xᵢ)‖²``."""
        return torch.stack([m.chords(pos) for m in self.metrics()]).mean(0)

    def sampled_chords(self, pos: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``‖f_{kᵢ₊₁}(xᵢ₊₁) − f_{kᵢ}(xᵢ)‖²`` with a member ``kᵢ`` drawn at every point.

        The decorrelated estimator of Syrota et al. (2024): stochastic, and biased
        high by the members' disagreement (see :mod:`latentgeo.curves.length`).

        Args:
            pos: points ``(B, N, d)`` along polylines.
            generator: random generator for the draws (on the CPU).

        Returns:
            Tensor of shape ``(B, N − 1)``.
        """
        b, n, d = pos.shape
        flat = pos.reshape(-1, d)
        k = torch.randint(len(self), (b, n), generator=generator).to(pos.device).reshape(-1)
        # each point goes through its drawn member only (K times fewer decoder passes
        # than embedding every point with every member); one loop over members, not points
        rows = [(k == j).nonzero().squeeze(-1) for j in range(len(self))]
        used = [(m, r) for m, r in zip(self.metrics(), rows, strict=True) if r.numel() > 0]
        outs = torch.cat([m.flat_embedding(flat[r]) for m, r in used])
        order = torch.cat([r for _, r in used])
        x = outs[torch.argsort(order)].reshape(b, n, -1)
        diff = x[:, 1:] - x[:, :-1]
        return (diff * diff).sum(-1)
