"""FeatureMetric (Michelis et al. eq. 3–4) against the chain rule with autograd Jacobians."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from torch import Tensor
from torch.distributions import Normal
from torch.func import jvp

import latentgeo
from latentgeo.metrics import FeatureMetric, as_metric
from latentgeo.metrics.feature_diagonal import exact_feature_diagonal
from latentgeo.metrics.jacobians import forward_jacobian
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


class ConvGaussian(torch.nn.Module):
    """A small transposed-convolution Gaussian decoder ``R^3 -> N(μ, σ²)`` on 1×28×28 (784)."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = torch.nn.Sequential(
            torch.nn.Linear(3, 2 * 7 * 7),
            torch.nn.ELU(),
            torch.nn.Unflatten(1, (2, 7, 7)),
            torch.nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1),
            torch.nn.ELU(),
            torch.nn.ConvTranspose2d(2, 1, 4, stride=2, padding=1),
        )
        self.std = torch.nn.Sequential(torch.nn.Linear(3, 784), torch.nn.Softplus())

    def forward(self, z: Tensor) -> Normal:
        return Normal(self.mean(z), self.std(z).reshape(-1, 1, 28, 28) + 1e-3)


def small_cnn(features: int) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, stride=2, padding=1),
        torch.nn.ELU(),
        torch.nn.Conv2d(3, 4, 3, stride=2, padding=1),
        torch.nn.ELU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 7 * 7, features),
    )


def _forward_mode_reference(decoder: ConvGaussian, cnn: torch.nn.Module, z: Tensor) -> Tensor:
    """The metric with diag(M_h) by one forward-mode product per decoder output (784)."""
    n = z.shape[0]

    def flat_cnn(x: Tensor) -> Tensor:
        return cnn(x.reshape(-1, 1, 28, 28))

    def mu(x: Tensor) -> Tensor:
        return decoder(x).mean.reshape(x.shape[0], -1)

    def sigma(x: Tensor) -> Tensor:
        return decoder(x).stddev.reshape(x.shape[0], -1)

    j_mu, j_sigma = forward_jacobian(mu, z), forward_jacobian(sigma, z)  # (N, 784, d)
    mean = mu(z)
    j_h = forward_jacobian(flat_cnn, mean)  # (N, c, 784): 784 products
    diag = (j_h * j_h).sum(1)
    j_composed = j_h @ j_mu
    assert diag.shape == (n, 784)
    return j_composed.mT @ j_composed + j_sigma.mT @ (diag.unsqueeze(-1) * j_sigma)


def test_conv_decoder_and_cnn_match_the_forward_mode_diagonal() -> None:
    """c reverse products give the metric of the 784-product forward-mode diagonal (1e-10)."""
    decoder = ConvGaussian().double().requires_grad_(False)
    cnn = small_cnn(5).double().requires_grad_(False)
    z = torch.randn(4, 3, dtype=torch.float64)
    expected = _forward_mode_reference(decoder, cnn, z)
    metric = FeatureMetric(decoder, cnn, data_shape=(1, 28, 28))
    scale = expected.abs().max()
    assert float((metric.metric_tensor(z) - expected).abs().max() / scale) < 1e-10
    v = torch.randn(4, 3, dtype=torch.float64)
    quad = torch.einsum("ni,nij,nj->n", v, expected, v)
    assert float(((metric.squared_norm(z, v) - quad) / quad).abs().max()) < 1e-10


def _chain_rule_squared_norm(
    decoder: ConvGaussian, cnn: torch.nn.Module, z: Tensor, v: Tensor, *, frozen: bool = False
) -> Tensor:
    """``‖J_{h∘μ} v‖² + Σ_i diag(M_h)_i (J_σ v)_i²`` the long way, differentiable: one JVP of
    ``h ∘ μ`` and ``σ`` together, and ``diag(M_h)`` by forward mode (784 products)."""
    n = z.shape[0]

    def flat_cnn(x: Tensor) -> Tensor:
        return cnn(x.reshape(-1, 1, 28, 28)).reshape(x.shape[0], -1)

    def composed(x: Tensor) -> tuple[Tensor, Tensor]:
        out = decoder(x)
        mean = out.mean.reshape(n, -1)
        return torch.cat([flat_cnn(mean), out.stddev.reshape(n, -1)], -1), mean

    _, jv, mean = jvp(composed, (z,), (v,), has_aux=True)
    jh, js = jv[:, :-784], jv[:, -784:]
    diag = exact_feature_diagonal(flat_cnn, mean, mode="forward")
    diag = diag.detach() if frozen else diag  # ``frozen``: without ∂ diag(M_h) / ∂μ
    return (jh * jh).sum(-1) + (diag * js * js).sum(-1)


def test_squared_norm_and_its_gradient_match_the_chain_rule() -> None:
    """The energy's integrand and its autograd gradient (what the geodesic solvers use) agree
    with the composed JVP and the forward-mode diagonal to 1e-10 in float64; that gradient
    goes through the second derivatives of the CNN (∂ diag(M_h) / ∂μ)."""
    decoder = ConvGaussian().double()
    cnn = small_cnn(5).double()
    z = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    metric = FeatureMetric(decoder, cnn, data_shape=(1, 28, 28))
    got = metric.squared_norm(z, v)
    expected = _chain_rule_squared_norm(decoder, cnn, z, v)
    assert float(((got - expected) / expected).detach().abs().max()) < 1e-10
    weights = torch.rand(3, dtype=torch.float64)
    grads = torch.autograd.grad((weights * got).sum(), (z, v))
    refs = torch.autograd.grad((weights * expected).sum(), (z, v), retain_graph=True)
    for g, r in zip(grads, refs, strict=True):
        assert float((g - r).abs().max() / r.abs().max()) < 1e-10
    # the test sees the second-order term: without it the gradient is visibly different
    frozen = _chain_rule_squared_norm(decoder, cnn, z, v, frozen=True)
    partial = torch.autograd.grad((weights * frozen).sum(), z)[0]
    assert float((partial - refs[0]).abs().max() / refs[0].abs().max()) > 1e-4


def test_float32_metric_matches_float64() -> None:
    """float32 within 1e-3 relative of float64 (ten times the 1000·eps of one rounding-heavy
    step: J_h is three layers deep and diag(M_h), J_hJ_μ sum hundreds of products)."""
    decoder = ConvGaussian().double().requires_grad_(False)
    cnn = small_cnn(5).double().requires_grad_(False)
    z = torch.randn(4, 3, dtype=torch.float64)
    v = torch.randn(4, 3, dtype=torch.float64)
    ref = FeatureMetric(decoder, cnn, data_shape=(1, 28, 28))
    single = FeatureMetric(
        copy.deepcopy(decoder).float(), copy.deepcopy(cnn).float(), data_shape=(1, 28, 28)
    )
    rtol, _ = tolerance(torch.float32, ops=10)
    g64, g32 = ref.metric_tensor(z), single.metric_tensor(z.float())
    assert float((g32.double() - g64).abs().max() / g64.abs().max()) < rtol
    sq64, sq32 = ref.squared_norm(z, v), single.squared_norm(z.float(), v.float())
    assert float(((sq32.double() - sq64) / sq64).abs().max()) < rtol


def _hutchinson(decoder: torch.nn.Module, feature: torch.nn.Module, **kw: object) -> FeatureMetric:
    return FeatureMetric(decoder, feature, diagonal="hutchinson", **kw)  # type: ignore[arg-type]


def test_hutchinson_metric_is_unbiased_over_seeds() -> None:
    """The mean over seeds of squared_norm is the exact one, within 4.5 stated standard errors
    ((2/s)(‖A‖_F² − Σ A_kk²), A = J_h diag((J_σ v)²) J_hᵀ, one draw per seed)."""
    decoder = GaussianMLP(2, 6).double().requires_grad_(False)
    feature = mlp(6, 4).double().requires_grad_(False)
    z = torch.randn(3, 2, dtype=torch.float64)
    v = torch.randn(3, 2, dtype=torch.float64)
    exact = FeatureMetric(decoder, feature).squared_norm(z, v)
    seeds, probes = 300, 2
    draws = torch.stack(
        [
            _hutchinson(decoder, feature, probes=probes, seed=s).squared_norm(z, v)
            for s in range(seeds)
        ]
    )
    j_h = autograd_jacobian(feature, decoder.mu(z))  # (N, c, m)
    w = (autograd_jacobian(decoder.sigma, z) @ v.unsqueeze(-1)).squeeze(-1) ** 2
    a = j_h @ (w.unsqueeze(-1) * j_h.mT)
    var = 2.0 / probes * ((a**2).sum((-1, -2)) - (a.diagonal(dim1=-2, dim2=-1) ** 2).sum(-1))
    z_scores = (draws.mean(0) - exact) / (var / seeds).sqrt()
    assert float(z_scores.abs().max()) < 4.5
    assert float(draws.std(0).min()) > 0  # a real estimator, not the exact value
    ratio = draws.var(0) / var
    assert float(ratio.min()) > 0.7 and float(ratio.max()) < 1.3


def test_hutchinson_metric_tensor_agrees_with_its_squared_norm() -> None:
    decoder = GaussianMLP(2, 6).double()
    feature = mlp(6, 4).double()
    metric = _hutchinson(decoder, feature, probes=3, seed=5)
    z = torch.randn(7, 2, dtype=torch.float64)
    v = torch.randn(7, 2, dtype=torch.float64)
    g = metric.metric_tensor(z)
    torch.testing.assert_close(metric.squared_norm(z, v), torch.einsum("ni,nij,nj->n", v, g, v))
    torch.testing.assert_close(g, _hutchinson(decoder, feature, probes=3, seed=5).metric_tensor(z))
    assert not torch.allclose(g, _hutchinson(decoder, feature, probes=3, seed=6).metric_tensor(z))


def test_hutchinson_on_a_deterministic_decoder_is_the_pullback() -> None:
    decoder = mlp(3, 6).double()
    feature = mlp(6, 2).double()
    z = torch.randn(5, 3, dtype=torch.float64)
    composed = as_metric(lambda x: feature(decoder(x)))
    metric = _hutchinson(decoder, feature, probes=1)
    torch.testing.assert_close(metric.metric_tensor(z), composed.metric_tensor(z))


def test_hutchinson_metric_is_a_fixed_function_of_the_point() -> None:
    """The probes are shared by every point: a point's metric does not depend on the call,
    the batch or its place in it (a solver's energy must not change as pairs drop out)."""
    decoder = GaussianMLP(2, 6).double().requires_grad_(False)
    feature = mlp(6, 4).double().requires_grad_(False)
    metric = _hutchinson(decoder, feature, probes=2, seed=3)
    z = torch.randn(6, 2, dtype=torch.float64)
    v = torch.randn(6, 2, dtype=torch.float64)
    whole, g = metric.squared_norm(z, v), metric.metric_tensor(z)
    for i in range(6):
        torch.testing.assert_close(
            metric.squared_norm(z[i : i + 1], v[i : i + 1]), whole[i : i + 1]
        )
    flipped = metric.metric_tensor(z.flip(0))
    torch.testing.assert_close(flipped.flip(0), g)


def test_hutchinson_by_layers_equals_torch_func() -> None:
    """With an nn.Sequential CNN the probes are pulled back layer by layer; the same metric,
    squared norm and gradient (second derivatives of the CNN) as torch.func's products with
    the same probes (the CNN hidden behind a lambda), float64 at 1e-10."""
    decoder = ConvGaussian().double().requires_grad_(False)
    cnn = small_cnn(5).double().requires_grad_(False)
    layered = FeatureMetric(decoder, cnn, data_shape=(1, 28, 28), diagonal="hutchinson", probes=3)
    generic = FeatureMetric(
        decoder, lambda x: cnn(x), data_shape=(1, 28, 28), diagonal="hutchinson", probes=3
    )
    z = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, 3, dtype=torch.float64)
    g1, g2 = layered.metric_tensor(z.detach()), generic.metric_tensor(z.detach())
    assert float((g1 - g2).abs().max() / g2.abs().max()) < 1e-10
    s1, s2 = layered.squared_norm(z, v), generic.squared_norm(z, v)
    assert float(((s1 - s2) / s2).detach().abs().max()) < 1e-10
    d1, d2 = (torch.autograd.grad(s.sum(), z)[0] for s in (s1, s2))
    assert float((d1 - d2).abs().max() / d2.abs().max()) < 1e-10
    exact = FeatureMetric(decoder, cnn, data_shape=(1, 28, 28)).metric_tensor(z.detach())
    assert float((g1 - exact).abs().max() / exact.abs().max()) > 1e-6  # an estimate


@pytest.mark.parametrize("diagonal", ["exact", "hutchinson"])
@torch.no_grad()  # no graph of the networks' parameters (announced beyond the budget)
def test_chunked_equals_unchunked(diagonal: str) -> None:
    decoder = GaussianMLP(2, 8).double()
    feature = mlp(8, 3).double()
    probes = 2 if diagonal == "hutchinson" else None
    z = torch.randn(100, 2, dtype=torch.float64)
    v = torch.randn(100, 2, dtype=torch.float64)

    def make(**kw: object) -> FeatureMetric:
        return FeatureMetric(decoder, feature, diagonal=diagonal, probes=probes, **kw)  # type: ignore[arg-type]

    whole = make(chunk_size=100)
    for chunked in (make(chunk_size=7), make()):
        calls = _count_chunks(chunked)
        with latentgeo.memory_budget(64 * 2**10):  # 64 KiB: several chunks under the budget
            sq = chunked.squared_norm(z, v)
            g = chunked.metric_tensor(z)
        assert sum(calls) >= 100 and max(calls) < 100  # split (probe chunks come first)
        torch.testing.assert_close(sq, whole.squared_norm(z, v), rtol=1e-12, atol=0)
        torch.testing.assert_close(g, whole.metric_tensor(z), rtol=1e-12, atol=1e-15)


def _count_chunks(metric: FeatureMetric) -> list[int]:
    """Record the points of each chunk of ``metric.squared_norm`` from now on."""
    calls: list[int] = []
    inner = metric._chunk_squared_norm

    def counting(z: Tensor, v: Tensor, probes: Tensor | None) -> Tensor:
        calls.append(z.shape[0])
        return inner(z, v, probes)

    metric._chunk_squared_norm = counting  # type: ignore[method-assign]
    return calls


def test_diagonal_options_are_checked() -> None:
    decoder, feature = GaussianMLP(2, 4), mlp(4, 2)
    with pytest.raises(ValueError, match="diagonal must be one of"):
        FeatureMetric(decoder, feature, diagonal="stochastic")
    with pytest.raises(ValueError, match="probes must be an int >= 1"):
        FeatureMetric(decoder, feature, diagonal="hutchinson")
    with pytest.raises(ValueError, match="probes must be an int >= 1"):
        FeatureMetric(decoder, feature, diagonal="hutchinson", probes=0)
    with pytest.raises(ValueError, match="probes is for diagonal='hutchinson'"):
        FeatureMetric(decoder, feature, probes=4)
    with pytest.raises(TypeError, match="seed must be an int"):
        FeatureMetric(decoder, feature, diagonal="hutchinson", probes=1, seed=1.5)  # type: ignore[arg-type]


def _gaussian_ensemble(members: int) -> latentgeo.models.EnsembleDecoder:
    return latentgeo.models.EnsembleDecoder([GaussianMLP(2, 6) for _ in range(members)]).double()


@pytest.mark.parametrize("kind", ["EnsembleDecoder", "list"])
def test_an_ensemble_is_refused_at_construction_and_named(kind: str) -> None:
    ensemble = _gaussian_ensemble(3)
    decoder = ensemble if kind == "EnsembleDecoder" else list(ensemble.members)
    with pytest.raises(TypeError, match=r"ensemble of 3 .*feature_metric\(decoder, feature"):
        FeatureMetric(decoder, mlp(6, 2))


def test_feature_metric_of_an_ensemble_is_the_mean_of_the_members_chain_rules() -> None:
    ensemble, feature = _gaussian_ensemble(3), mlp(6, 2).double()
    z = torch.randn(5, 2, dtype=torch.float64)
    expected = torch.stack([_chain_rule_reference(m, feature, z) for m in ensemble]).mean(0)
    for decoder in (ensemble, list(ensemble.members), tuple(ensemble.members)):
        metric = latentgeo.metrics.feature_metric(decoder, feature)
        assert isinstance(metric, latentgeo.metrics.MeanMetric) and len(metric) == 3
        torch.testing.assert_close(metric.metric_tensor(z), expected, rtol=1e-10, atol=1e-12)
        v = torch.randn(5, 2, dtype=torch.float64)
        quad = torch.einsum("ni,nij,nj->n", v, expected, v)
        torch.testing.assert_close(metric.squared_norm(z, v), quad, rtol=1e-10, atol=1e-12)
    one = latentgeo.metrics.feature_metric(ensemble.members[0], feature, chunk_size=2)
    assert isinstance(one, FeatureMetric) and one.chunk_size == 2
    torch.testing.assert_close(
        one.metric_tensor(z), _chain_rule_reference(ensemble.members[0], feature, z)
    )
    with pytest.raises(ValueError, match="no members"):
        latentgeo.metrics.feature_metric([], feature)


@pytest.mark.parametrize("which", ["decoder", "feature"])
def test_a_module_in_training_mode_is_refused_at_construction(which: str) -> None:
    # both were accepted: a Dropout feature map gave metrics differing call to call, a
    # BatchNorm one a functorch error about mutating a captured tensor
    decoder = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Dropout(0.2)).eval()
    feature = torch.nn.Sequential(torch.nn.Linear(8, 3), torch.nn.BatchNorm1d(3)).eval()
    (decoder if which == "decoder" else feature).train()
    layer = "1' (Dropout)" if which == "decoder" else "1' (BatchNorm1d)"
    with pytest.raises(ValueError, match=re.escape(f"{which} layer '{layer} is in training mode")):
        FeatureMetric(decoder, feature)
    with pytest.raises(ValueError, match=f"call {which}.eval"):
        latentgeo.metrics.feature_metric([decoder, decoder], feature)
    assert decoder.training == (which == "decoder")  # the modes are left as they were


def test_points_of_another_dtype_get_the_clear_error() -> None:
    # it was torch's "mat1 and mat2 must have the same dtype" (found by review)
    metric = FeatureMetric(mlp(2, 5).eval(), mlp(5, 3))
    for z in (torch.zeros(4, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)):
        with pytest.raises(TypeError, match=r"dtype torch\.float64 but the decoder's parameters"):
            metric.metric_tensor(z)
