"""Output embeddings: a decoder's output distribution as the map pulled back to the metric."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Independent, Normal

from latentgeo.metrics import (
    expected_metric,
    output_embedding,
)

from .reference import GaussianMLP, mlp


def test_output_embedding_is_extensible() -> None:
    class Doubled:
        def __init__(self, x: Tensor) -> None:
            self.x = x

    @output_embedding.register(Doubled)
    def _(output: Doubled, batch: int) -> Tensor:
        return 2 * output.x.reshape(batch, -1)

    g = expected_metric(lambda z: Doubled(z), torch.zeros(1, 2))
    torch.testing.assert_close(g, 4 * torch.eye(2).unsqueeze(0))


def test_independent_normal_and_normal_agree() -> None:
    decoder = GaussianMLP(2, 3).double()
    z = torch.randn(3, 2, dtype=torch.float64)
    plain = expected_metric(decoder, z)
    wrapped = expected_metric(lambda x: Independent(decoder(x), 1), z)
    torch.testing.assert_close(plain, wrapped)


def test_constant_scale_adds_nothing() -> None:
    """A Normal with fixed σ has the metric of its mean."""
    net = mlp(2, 4).double()
    z = torch.randn(3, 2, dtype=torch.float64)
    g_normal = expected_metric(lambda x: Normal(net(x), torch.ones(())), z)
    torch.testing.assert_close(g_normal, expected_metric(net, z))
