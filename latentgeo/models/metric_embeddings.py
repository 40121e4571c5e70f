"""How latentgeo's decoders become metrics: registered into :mod:`latentgeo.metrics`.

:mod:`latentgeo.metrics` knows nothing of the models (the layers are one-way):
importing :mod:`latentgeo.models` registers here that an
:class:`~latentgeo.models.EnsembleDecoder`'s metric is the mean of its members'
metrics (and that it is an ensemble, for :func:`~latentgeo.metrics.feature_metric`),
the traceable metric embeddings of the stochastic decoders, and the traceable
``(μ, σ)`` of a Gaussian decoder for the feature metric
(:func:`latentgeo.metrics.feature_decoder.jets_module`).

A :class:`~latentgeo.models.GaussianDecoder` returns a ``Normal``, which
``torch.fx`` cannot trace; its metric is the pull-back of ``z ↦ (μ(z), σ(z))``,
which it can. Registering that module with
:func:`latentgeo.metrics.embedding_module` lets ``as_metric`` use the traced
forward mode. The tests check that both paths give the same metric.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from latentgeo.metrics import Metric, as_metric
from latentgeo.metrics.dispatch import ensemble_metric
from latentgeo.metrics.embeddings import ConcatEmbedding, embedding_module
from latentgeo.metrics.ensemble import ensemble_members
from latentgeo.metrics.feature_decoder import jets_module
from latentgeo.models.decoders import BernoulliDecoder, GaussianDecoder
from latentgeo.models.ensemble import EnsembleDecoder

__all__ = ["FisherRaoBernoulliEmbedding", "MeanAndConstantScale"]


class FisherRaoBernoulliEmbedding(nn.Module):
    """``z ↦ 2 atan(tanh(logits(z) / 4))``: the Fisher–Rao embedding of Bernoulli outputs."""

    def __init__(self, logits: nn.Module) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, z: Tensor) -> Tensor:
        """``(N, d) -> (N, D)``."""
        return 2.0 * torch.atan(torch.tanh(self.logits(z) / 4.0)).flatten(1)


class MeanAndConstantScale(nn.Module):
    """``z ↦ (μ(z), σ)`` flattened and concatenated, for a constant ``σ``: a Gaussian
    decoder's ``(μ, σ)`` for the feature metric (whose ``σ`` block has zero JVP).

    Args:
        mean_net: the mean network.
        scale: the constant ``σ``.
    """

    def __init__(self, mean_net: nn.Module, scale: float) -> None:
        super().__init__()
        self.mean_net = mean_net
        self.scale = float(scale)

    def forward(self, z: Tensor) -> Tensor:
        """``(N, d) -> (N, 2m)``."""
        mean = self.mean_net(z).flatten(1)
        return torch.cat([mean, mean * 0.0 + self.scale], dim=-1)


@jets_module.register
def _(decoder: GaussianDecoder) -> nn.Module | None:
    if decoder.scale is not None:
        return ConcatEmbedding(decoder.mean_net, decoder.scale)
    assert decoder.constant_scale is not None
    return MeanAndConstantScale(decoder.mean_net, decoder.constant_scale)


@embedding_module.register
def _(decoder: GaussianDecoder) -> nn.Module | None:
    if decoder.scale is None:  # constant σ: J_σ = 0
        return ConcatEmbedding(decoder.mean_net)
    return ConcatEmbedding(decoder.mean_net, decoder.scale)


@embedding_module.register
def _(decoder: BernoulliDecoder) -> nn.Module | None:
    return FisherRaoBernoulliEmbedding(decoder.logits)


@as_metric.register
def _(decoder: EnsembleDecoder, **options: Any) -> Metric:
    return ensemble_metric(list(decoder.members), **options)


@ensemble_members.register
def _(decoder: EnsembleDecoder) -> list[Any]:
    return list(decoder.members)
