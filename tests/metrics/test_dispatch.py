"""as_metric / expected_metric for every decoder kind, against autograd references."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.distributions import Bernoulli, Categorical

from latentgeo.metrics import (
    Metric,
    PullbackMetric,
    as_metric,
    expected_metric,
)
from latentgeo.testing import tolerance

from .reference import GaussianMLP, autograd_jacobian, mlp


@pytest.mark.parametrize("independent", [False, True])
def test_gaussian_expected_metric_matches_autograd(dtype: torch.dtype, independent: bool) -> None:
    decoder = GaussianMLP(3, 6, independent=independent).to(dtype)
    z = torch.randn(5, 3, dtype=dtype)
    j_mu = autograd_jacobian(decoder.mu, z)
    j_sigma = autograd_jacobian(decoder.sigma, z)
    expected = j_mu.mT @ j_mu + j_sigma.mT @ j_sigma
    rtol, atol = tolerance(dtype, ops=10)
    torch.testing.assert_close(expected_metric(decoder, z), expected, rtol=rtol, atol=atol)


def test_gaussian_expected_metric_is_monte_carlo_mean_of_sampled_pullbacks() -> None:
    """E_ε[J_fᵀ J_f] for f = μ + σ ⊙ ε equals J_μᵀ J_μ + J_σᵀ J_σ (Arvanitidis et al.)."""
    decoder = GaussianMLP(2, 5).double()
    z0 = torch.randn(1, 2, dtype=torch.float64)
    samples = 200_000
    eps = torch.randn(samples, 5, dtype=torch.float64)
    eps = torch.cat([eps, -eps])  # antithetic: cancels the odd (cross) terms exactly
    # (row n uses eps[n]: not batch-separable, so all points go in one chunk)
    sampled = PullbackMetric(
        lambda z: decoder.mu(z) + decoder.sigma(z) * eps, chunk_size=2 * samples
    )
    per_sample = sampled.metric_tensor(z0.expand(2 * samples, 2))
    estimate = per_sample.mean(0)
    std_err = per_sample.std(0) / (2 * samples) ** 0.5
    exact = expected_metric(decoder, z0)[0]
    assert ((estimate - exact).abs() <= 5 * std_err + 1e-12).all(), (estimate, exact, std_err)


def test_bernoulli_gives_fisher_rao(dtype: torch.dtype) -> None:
    net = mlp(2, 6).to(dtype)
    z = torch.randn(4, 2, dtype=dtype)

    def probs(x: Tensor) -> Tensor:
        return torch.sigmoid(net(x))

    j_p = autograd_jacobian(probs, z)
    p = probs(z)
    expected = j_p.mT @ (j_p / (p * (1 - p)).unsqueeze(-1))
    rtol, atol = tolerance(dtype, ops=100)
    got = expected_metric(lambda x: Bernoulli(logits=net(x)), z)
    torch.testing.assert_close(got, expected, rtol=rtol, atol=atol)


def test_bernoulli_saturated_logits_stay_finite() -> None:
    decoder = lambda x: Bernoulli(logits=200.0 * x)  # noqa: E731
    g = expected_metric(decoder, torch.ones(3, 2))
    assert torch.isfinite(g).all()


def test_categorical_gives_fisher_rao(dtype: torch.dtype) -> None:
    net = mlp(3, 5).to(dtype)
    z = torch.randn(4, 3, dtype=dtype)

    def probs(x: Tensor) -> Tensor:
        return torch.softmax(net(x), -1)

    j_p = autograd_jacobian(probs, z)
    p = probs(z)
    expected = j_p.mT @ (j_p / p.unsqueeze(-1))
    rtol, atol = tolerance(dtype, ops=100)
    got = expected_metric(lambda x: Categorical(logits=net(x)), z)
    torch.testing.assert_close(got, expected, rtol=rtol, atol=atol)


def test_metric_is_returned_as_is() -> None:
    metric = as_metric(mlp(2, 3))
    assert as_metric(metric) is metric


def test_unsupported_decoder_output_raises_type_error() -> None:
    with pytest.raises(TypeError, match=r"returned str.*supported outputs are Tensor, Normal"):
        as_metric(lambda z: "not a tensor").metric_tensor(torch.zeros(1, 2))
    with pytest.raises(TypeError, match="Poisson"):
        as_metric(lambda z: torch.distributions.Poisson(z.exp())).metric_tensor(torch.zeros(1, 2))


def test_non_callable_raises_type_error() -> None:
    with pytest.raises(TypeError, match="cannot make a metric from int"):
        as_metric(3)
    with pytest.raises(ValueError, match="at least one member"):
        as_metric([])


def test_metric_module_moves_with_to() -> None:
    metric = as_metric(mlp(2, 3))
    assert isinstance(metric, Metric)
    metric = metric.double()
    assert metric.metric_tensor(torch.zeros(1, 2, dtype=torch.float64)).dtype == torch.float64
