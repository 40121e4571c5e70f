"""The decoder's (μ, σ), JVPs and Jacobians for the feature metric: by the forward engine
where the decoder's traced embedding is (μ, σ), else by torch.func, the same numbers."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import Independent, Normal

from latentgeo.exceptions import PerformanceWarning
from latentgeo.metrics.feature_decoder import DecoderJets, jets_module, mean_and_scale
from latentgeo.models import GaussianDecoder


def _conv_mean() -> nn.Module:
    return nn.Sequential(
        nn.Linear(3, 8 * 4 * 4), nn.ELU(), nn.Unflatten(1, (8, 4, 4)),
        nn.ConvTranspose2d(8, 8, 4, 2, 1), nn.ELU(), nn.ConvTranspose2d(8, 1, 4, 2, 1),
        nn.Flatten(),
    )  # fmt: skip


def _reference(decoder: object, z: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``cat(μ, σ)``, its JVP along ``v`` and its Jacobian, by torch.func."""

    def flat(x: Tensor) -> Tensor:
        mean, scale = mean_and_scale(decoder(x), x.shape[0])  # type: ignore[operator]
        return mean if scale is None else torch.cat([mean, scale], -1)

    value, tangent = torch.func.jvp(flat, (z,), (v,))
    jac = torch.func.vmap(torch.func.jacfwd(lambda x: flat(x[None])[0]))(z)
    return value, tangent, jac


def _check(jets: DecoderJets, decoder: object, engine: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    v = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    values, tangents = jets.values_and_jvp(z, v)
    assert (jets._propagator is not None) is engine
    value, tangent, jac = _reference(decoder, z, v)
    torch.testing.assert_close(torch.cat(values, -1), value, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.cat(tangents, -1), tangent, rtol=1e-10, atol=1e-12)
    again, jacobian = jets.values_and_jacobian(z)
    torch.testing.assert_close(torch.cat(again, -1), value, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(jacobian, jac, rtol=1e-10, atol=1e-12)


def test_a_gaussian_decoder_goes_through_the_engine() -> None:
    torch.manual_seed(1)
    scale = nn.Sequential(nn.Linear(3, 256), nn.Softplus())
    decoder = GaussianDecoder(_conv_mean(), scale).double().eval()
    jets = DecoderJets(decoder)
    _check(jets, decoder, engine=True)
    assert len(jets.decoded(torch.zeros(2, 3, dtype=torch.float64))) == 2


def test_a_decoder_with_nan_outputs_is_compared_with_its_engine_all_the_same() -> None:
    """A NaN in the decoder's output (a diverged training step) made the tolerance of the
    engine's check NaN, and ``allclose`` raised "atol must be greater than or equal to
    zero"; the finite outputs set it, and the NaN ones must match as NaN."""
    torch.manual_seed(2)
    decoder = _conv_mean().double().eval()
    with torch.no_grad():
        next(m for m in decoder.modules() if isinstance(m, nn.Linear)).bias[0] = float("nan")
    jets = DecoderJets(decoder)
    values, _ = jets.values_and_jvp(torch.zeros(2, 3, dtype=torch.float64),
                                    torch.ones(2, 3, dtype=torch.float64))  # fmt: skip
    assert jets._propagator is not None  # the engine matched, NaN for NaN
    assert bool(values[0].isnan().any()) and bool(values[0].isfinite().any())


def test_a_deterministic_module_goes_through_the_engine() -> None:
    torch.manual_seed(2)
    decoder = _conv_mean().double().eval()
    jets = DecoderJets(decoder)
    _check(jets, decoder, engine=True)
    values, tangents = jets.values_and_jvp(torch.zeros(2, 3, dtype=torch.float64),
                                           torch.ones(2, 3, dtype=torch.float64))  # fmt: skip
    assert len(values) == len(tangents) == 1


def test_a_constant_scale_goes_through_the_engine() -> None:
    """A constant σ's metric embedding is the mean alone; its registered (μ, σ) module
    (``jets_module``) keeps the feature metric on the engine."""
    torch.manual_seed(3)
    decoder = GaussianDecoder(_conv_mean(), 0.3).double().eval()
    _check(DecoderJets(decoder), decoder, engine=True)


def test_a_function_goes_through_the_engine() -> None:
    """A function returning a distribution: the engine traces its
    ``DecoderEmbedding`` (the modules it calls), whose ``Normal`` embedding is (μ, σ)."""
    torch.manual_seed(3)
    mean = _conv_mean().double().eval()
    softplus = nn.Softplus()

    def decoder(z: Tensor) -> Independent:
        return Independent(Normal(mean(z), softplus(z.sum(-1, keepdim=True))), 1)

    _check(DecoderJets(decoder), decoder, engine=True)


class _Branching(nn.Module):
    """``torch.fx`` cannot turn a traced size into a Python ``int``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _conv_mean()

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).reshape(int(z.shape[0]), -1)


def test_an_untraceable_module_is_announced_when_built() -> None:
    decoder = _Branching().double().eval()
    with pytest.warns(PerformanceWarning, match=r"_Branching: no traced fast path \(torch.fx"):
        jets = DecoderJets(decoder)
    with warnings.catch_warnings():
        # once per decoder: neither again nor at the first call
        warnings.simplefilter("error", PerformanceWarning)
        DecoderJets(decoder)
        _check(jets, decoder, engine=False)


class _Mislabelled(nn.Module):
    """Returns ``Normal(μ, σ)``; its registered module computes ``(μ, 2σ)``."""

    def __init__(self) -> None:
        super().__init__()
        self.mean, self.scale = nn.Linear(3, 4), nn.Sequential(nn.Linear(3, 4), nn.Softplus())

    def forward(self, z: Tensor) -> Normal:
        return Normal(self.mean(z), self.scale(z))


class _Wrong(nn.Module):
    def __init__(self, decoder: _Mislabelled) -> None:
        super().__init__()
        self.mean, self.scale = decoder.mean, decoder.scale

    def forward(self, z: Tensor) -> Tensor:
        return torch.cat([self.mean(z), 2 * self.scale(z)], -1)


@jets_module.register
def _(decoder: _Mislabelled) -> nn.Module:
    return _Wrong(decoder)


def test_a_module_that_is_not_mu_sigma_is_announced_at_the_check() -> None:
    torch.manual_seed(4)
    decoder = _Mislabelled().double().eval()
    jets = DecoderJets(decoder)  # nothing to say yet: the check needs points
    with pytest.warns(PerformanceWarning, match="does not match the"):
        _check(jets, decoder, engine=False)


def test_a_function_calling_a_training_module_is_announced_not_refused() -> None:
    # the traced embedding refuses modules in training mode (as_metric does too); the
    # feature metric differentiates the function by torch.func instead, and says why
    net = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.0)).double()  # training mode

    def decoder(z: Tensor) -> Tensor:
        return net(z)

    with pytest.warns(PerformanceWarning, match="no traced fast path"):
        jets = DecoderJets(decoder)
    _check(jets, decoder, engine=False)
