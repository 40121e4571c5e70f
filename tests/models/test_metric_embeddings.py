"""The traced embeddings of latentgeo's decoders give the same metric as the generic path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentgeo.exceptions import PerformanceWarning
from latentgeo.metrics import DecoderEmbedding, PullbackMetric, as_metric
from latentgeo.metrics.forward import try_tangent_propagator
from latentgeo.models import MLP, BernoulliDecoder, GaussianDecoder, RBFPrecision


def _decoders() -> list[nn.Module]:
    return [
        GaussianDecoder(MLP(2, 6, hidden=(8,)), RBFPrecision(2, 6, num_centres=3)),
        GaussianDecoder(
            MLP(2, 6, hidden=(8,)), MLP(2, 6, hidden=(8,), output_activation="softplus")
        ),
        GaussianDecoder(MLP(2, 6, hidden=(8,)), 0.3),
        BernoulliDecoder(MLP(2, 6, hidden=(8,))),
    ]


@pytest.mark.parametrize("index", range(4))
def test_traced_embedding_equals_generic(index: int) -> None:
    decoder = _decoders()[index].double()
    with torch.no_grad():  # make the RBF weights non-trivial
        for p in decoder.parameters():
            p.add_(0.1 * torch.randn_like(p))
    fast = as_metric(decoder)
    assert isinstance(fast, PullbackMetric)
    assert not isinstance(fast.embed, DecoderEmbedding)
    assert try_tangent_propagator(fast.embed) is not None
    slow = PullbackMetric(DecoderEmbedding(decoder))
    z = torch.randn(7, 2, dtype=torch.float64)
    v = torch.randn(7, 2, dtype=torch.float64)
    torch.testing.assert_close(fast.metric_tensor(z), slow.metric_tensor(z))
    torch.testing.assert_close(fast.squared_norm(z, v), slow.squared_norm(z, v))


def test_plain_traceable_decoder_is_used_directly() -> None:
    """as_metric on an nn.Sequential takes the traced path, with the same metric."""
    decoder = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 12)).double()
    fast = as_metric(decoder)
    assert isinstance(fast, PullbackMetric) and fast.embed is decoder
    slow = PullbackMetric(lambda x: decoder(x))  # a function: the generic torch.func path
    assert slow._get_propagator() is None
    z = torch.randn(6, 2, dtype=torch.float64)
    v = torch.randn(6, 2, dtype=torch.float64)
    torch.testing.assert_close(fast.metric_tensor(z), slow.metric_tensor(z))
    torch.testing.assert_close(fast.squared_norm(z, v), slow.squared_norm(z, v))


def test_untraceable_decoder_keeps_the_generic_path() -> None:
    class Branchy(nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return z if z.sum() > 0 else -z

    with pytest.warns(PerformanceWarning, match="Branchy: no traced fast path"):
        metric = as_metric(Branchy())
    assert isinstance(metric.embed, DecoderEmbedding)  # type: ignore[attr-defined]
