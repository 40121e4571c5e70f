"""Traceable metric embeddings of latentgeo's decoders (fast forward mode).

A :class:`~latentgeo.models.GaussianDecoder` returns a ``Normal``, which
``torch.fx`` cannot trace; its metric is the pull-back of ``z ↦ (μ(z), σ(z))``,
which it can. Registering that module with
:func:`latentgeo.metrics.embedding_module` lets ``as_metric`` use the traced
forward mode. The tests check that both paths give the same metric.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from latentgeo.metrics.embeddings import ConcatEmbedding, embedding_module
from latentgeo.models.decoders import BernoulliDecoder, GaussianDecoder

__all__ = ["FisherRaoBernoulliEmbedding"]


class FisherRaoBernoulliEmbedding(nn.Module):
    """``z ↦ 2 atan(tanh(logits(z) / 4))``: the Fisher–Rao embedding of Bernoulli outputs."""

    def __init__(self, logits: nn.Module) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, z: Tensor) -> Tensor:
        """``(N, d) -> (N, D)``."""
        return 2.0 * torch.atan(torch.tanh(self.logits(z) / 4.0)).flatten(1)


@embedding_module.register
def _(decoder: GaussianDecoder) -> nn.Module | None:
    if decoder.scale is None:  # constant σ: J_σ = 0
        return ConcatEmbedding(decoder.mean_net)
    return ConcatEmbedding(decoder.mean_net, decoder.scale)


@embedding_module.register
def _(decoder: BernoulliDecoder) -> nn.Module | None:
    return FisherRaoBernoulliEmbedding(decoder.logits)
