"""FeatureMetric (Michelis et al. eq. 3–4) against the chain rule with autograd Jacobians."""

from __future__ import annotations

import torch
from torch import Tensor

from latentgeo.metrics import FeatureMetric, as_metric
from latentgeo.testing import tolerance

from .reference import GaussianMLP, autograd_jacobian, mlp


def _chain_rule_reference(decoder: GaussianMLP, feature: torch.nn.Module, z: Tensor) -> Tensor:
    j_mu = autograd_jacobian(decoder.mu, z)  # (N, m, d)
    j_sigma = autograd_jacobian(decoder.sigma, z)
    j_h = autograd_jacobian(feature, decoder.mu(z).detach())  # (N, c, m)
    m_h = j_h.mT @ j_h
    diag = torch.diagonal(m_h, dim1=-2, dim2=-1)
    return j_mu.mT @ m_h @ j_mu + j_sigma.mT @ (diag.unsqueeze(-1) * j_sigma)


def test_gaussian_decoder_with_narrow_feature_map(dtype: torch.dtype) -> None:
    decoder = GaussianMLP(2, 8).to(dtype)
    feature = mlp(8, 3).to(dtype)  # a 3-class classifier: reverse mode for diag(M_h)
    z = torch.randn(4, 2, dtype=dtype)
    expected = _chain_rule_reference(decoder, feature, z)
    metric = FeatureMetric(decoder, feature)
    rtol, atol = tolerance(dtype, ops=100)
    torch.testing.assert_close(metric.metric_tensor(z), expected, rtol=rtol, atol=atol)
    v = torch.randn(4, 2, dtype=dtype)
    quad = torch.einsum("ni,nij,nj->n", v, expected, v)
    torch.testing.assert_close(metric.squared_norm(z, v), quad, rtol=rtol, atol=atol)


def test_gaussian_decoder_with_wide_feature_map() -> None:
    decoder = GaussianMLP(2, 4).double()
    feature = mlp(4, 9).double()  # wider than its input: forward mode for diag(M_h)
    z = torch.randn(3, 2, dtype=torch.float64)
    expected = _chain_rule_reference(decoder, feature, z)
    metric = FeatureMetric(decoder, feature, chunk_size=2)
    torch.testing.assert_close(metric.metric_tensor(z), expected)


def test_deterministic_decoder_is_pullback_of_composition() -> None:
    decoder = mlp(3, 6).double()
    feature = mlp(6, 2).double()
    z = torch.randn(5, 3, dtype=torch.float64)
    composed = as_metric(lambda x: feature(decoder(x)))
    metric = FeatureMetric(decoder, feature)
    torch.testing.assert_close(metric.metric_tensor(z), composed.metric_tensor(z))
    v = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(metric.squared_norm(z, v), composed.squared_norm(z, v))


def test_identity_feature_map_gives_expected_metric() -> None:
    decoder = GaussianMLP(2, 5).double()
    z = torch.randn(3, 2, dtype=torch.float64)
    torch.testing.assert_close(
        FeatureMetric(decoder, lambda x: x).metric_tensor(z), as_metric(decoder).metric_tensor(z)
    )


def test_data_shape_reshapes_for_the_feature_map() -> None:
    decoder = mlp(2, 12).double()
    seen: list[tuple[int, ...]] = []

    def feature(x: Tensor) -> Tensor:
        seen.append(tuple(x.shape[1:]))
        return x.sum((-1, -2))

    FeatureMetric(decoder, feature, data_shape=(1, 3, 4)).metric_tensor(
        torch.zeros(2, 2, dtype=torch.float64)
    )
    assert seen and all(s == (1, 3, 4) for s in seen)
