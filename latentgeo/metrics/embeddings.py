"""What a decoder's output contributes to the metric: its *embedding*.

Every supported decoder induces a pull-back metric ``Jᵀ J`` of some map
``z ↦ e(decoder(z))`` into a flat space, where ``e`` depends on the type of
what the decoder returns:

* a ``Tensor`` ``x``: ``e = x``, the plain pull-back;
* ``Normal(μ, σ)`` (or ``Independent(Normal)``): ``e = (μ, σ)``, whose
  pull-back is the expected metric ``J_μᵀ J_μ + J_σᵀ J_σ`` of Arvanitidis et
  al. (2018);
* ``Bernoulli(p)``: ``e = 2 asin(√p)`` per output, whose pull-back is the
  Fisher–Rao metric ``Σ_k (∂p_k)² / (p_k (1 − p_k))``. It is evaluated as
  ``2 atan(tanh(logit/4))`` (equal up to the constant ``π/2``), stable for
  saturated logits;
* ``Categorical(p)``: ``e = 2 √p`` per category (Fisher–Rao on the simplex),
  evaluated as ``2 exp(log p / 2)``.

The map is open to extension: register a new output type with
``output_embedding.register(MyDistribution)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import singledispatch

import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli, Categorical, Independent, Normal

__all__ = ["DecoderEmbedding", "output_embedding"]

SUPPORTED_OUTPUTS = "Tensor, Normal, Independent(Normal), Bernoulli, Categorical"


@singledispatch
def output_embedding(output: object, batch: int) -> Tensor:
    """Flatten a decoder's output into the embedding whose pull-back is its metric.

    Args:
        output: what the decoder returned for ``batch`` latent points.
        batch: the number of latent points ``N`` (the output's leading size).

    Returns:
        Tensor of shape ``(N, m)``.

    Raises:
        TypeError: the output type has no registered embedding.
    """
    raise TypeError(
        f"the decoder returned {type(output).__name__}, which has no metric; supported "
        f"outputs are {SUPPORTED_OUTPUTS} (register more with "
        "latentgeo.metrics.output_embedding.register)"
    )


@output_embedding.register
def _(output: Tensor, batch: int) -> Tensor:
    return output.reshape(batch, -1)


@output_embedding.register
def _(output: Normal, batch: int) -> Tensor:
    loc, scale = torch.broadcast_tensors(output.loc, output.scale)
    return torch.cat([loc.reshape(batch, -1), scale.reshape(batch, -1)], dim=-1)


@output_embedding.register
def _(output: Independent, batch: int) -> Tensor:
    return output_embedding(output.base_dist, batch)


@output_embedding.register
def _(output: Bernoulli, batch: int) -> Tensor:
    return 2.0 * torch.atan(torch.tanh(output.logits / 4.0)).reshape(batch, -1)


@output_embedding.register
def _(output: Categorical, batch: int) -> Tensor:
    return 2.0 * torch.exp(0.5 * output.logits).reshape(batch, -1)


class DecoderEmbedding(nn.Module):
    """``z ↦ output_embedding(decoder(z))``: the map whose pull-back is a decoder's metric.

    Args:
        decoder: a module or function taking latent points ``(N, d)``.
    """

    def __init__(self, decoder: Callable[[Tensor], object]) -> None:
        super().__init__()
        if not callable(decoder):
            raise TypeError(f"decoder must be callable, got {type(decoder).__name__}")
        self.decoder = decoder

    def forward(self, z: Tensor) -> Tensor:
        """Embed the decoder's output at ``z`` of shape ``(N, d)`` into ``(N, m)``."""
        return output_embedding(self.decoder(z), z.shape[0])
