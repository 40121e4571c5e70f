"""ContinuousBernoulli outputs: Var(η), its series and closed form, the embedding, the metric.

The reference is the definition: the Fisher information of one output in its
logit is the variance of ``x`` under the density ``p(x | η) ∝ e^(ηx)`` on
``[0, 1]`` (and ``Var′`` its third central moment), computed here by 160-point
Gauss–Legendre quadrature of the density (two-pass, no cancellation), with
Jacobians of the logits from ``torch.func``.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy import integrate
from torch import Tensor, nn
from torch.distributions import ContinuousBernoulli, Independent
from torch.func import jacfwd, jvp, vmap

from latentgeo.exceptions import PerformanceWarning
from latentgeo.metrics import PullbackMetric, as_metric
from latentgeo.metrics.continuous_bernoulli import (
    SERIES,
    SWITCH,
    _variance_closed,
    _variance_series,
    continuous_bernoulli_embedding,
    continuous_bernoulli_variance,
    continuous_bernoulli_variance_slope,
)
from latentgeo.solvers import Status, connecting_geodesic

torch.set_num_threads(1)

_NODES, _WEIGHTS = (a.astype(np.longdouble) for a in np.polynomial.legendre.leggauss(160))
_X = 0.5 * (1.0 + _NODES)  # nodes on [0, 1]; sums in extended precision


def central_moments(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(Var, E[(x − μ)³])`` of ``x ~ ContinuousBernoulli(logits=η)``, by quadrature."""
    eta = np.asarray(eta, dtype=np.longdouble).reshape(-1, 1)
    logw = eta * _X - np.maximum(eta, 0.0)  # density up to a constant, scaled to ≤ 1
    w = _WEIGHTS * np.exp(logw)
    z = w.sum(-1, keepdims=True)
    mu = (w * _X).sum(-1, keepdims=True) / z
    c = _X - mu
    var, skew = (w * c * c).sum(-1) / z[:, 0], (w * c**3).sum(-1) / z[:, 0]
    return var.astype(np.float64), skew.astype(np.float64)


LOGITS = np.concatenate(
    [[0.0, 1e-9, -1e-6, 3e-4, -9e-4], np.linspace(-8, 8, 161), [-30.0, 30.0, 29.9, -45.0, 60.0]]
)


def test_series_coefficients_are_the_derivatives_of_the_log_normaliser() -> None:
    known = [Fraction(1, 12), Fraction(-1, 240), Fraction(1, 6048), Fraction(-1, 172800)]
    known.append(Fraction(1, 5322240))
    for got, want in zip(SERIES, known, strict=False):
        assert got == float(want)


@pytest.mark.parametrize("dtype, ulps", [(torch.float64, 8), (torch.float32, 8)])
def test_variance_is_the_fisher_information(dtype: torch.dtype, ulps: int) -> None:
    eta = torch.tensor(LOGITS, dtype=dtype)
    want, _ = central_moments(eta.double().numpy())
    got = continuous_bernoulli_variance(eta).double().numpy()
    rel = np.abs(got - want) / want
    # the quadrature reference is good to ~1e-14 (its nodes); against 40-digit mpmath the
    # variance was measured at 3.6 ulp (float64) and 3.2 ulp (float32)
    assert rel.max() <= ulps * torch.finfo(dtype).eps + 2e-14, rel.max()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_variance_slope_is_the_third_central_moment(dtype: torch.dtype) -> None:
    eta = torch.tensor(LOGITS, dtype=dtype)
    _, want = central_moments(eta.double().numpy())
    got = continuous_bernoulli_variance_slope(eta).double().numpy()
    scale = np.abs(want) + 1e-3 * central_moments(eta.double().numpy())[0]  # Var′(0) = 0
    # the closed form cancels as 240 ε/η⁴ just above the switch (measured 22 ulp)
    assert (np.abs(got - want) / scale).max() <= 64 * torch.finfo(dtype).eps + 1e-14


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_series_and_closed_form_agree_across_the_switch(dtype: torch.dtype) -> None:
    a = torch.linspace(SWITCH - 0.5, SWITCH, 101, dtype=dtype)
    series, closed = _variance_series(a), _variance_closed(a)
    # the closed form loses 12/a² ulp to cancellation (≤ 5.4 at 1.5), the series ≤ 1 ulp
    assert ((series - closed).abs() / closed).max() <= 8 * torch.finfo(dtype).eps
    # and the variance is continuous at the switch (both sides within a few ulp)
    edge = torch.tensor([SWITCH], dtype=dtype)
    below = continuous_bernoulli_variance(torch.nextafter(edge, edge - 1))
    above = continuous_bernoulli_variance(edge)
    assert ((below - above).abs() / above).item() <= 8 * torch.finfo(dtype).eps


def test_embedding_is_the_integral_of_the_square_root_of_the_variance() -> None:
    def sqrt_var(s: float) -> float:
        return math.sqrt(float(central_moments(np.array([s]))[0][0]))

    for eta in (1e-4, 0.5, 2.0, 5.9, 6.0, 6.1, 12.0, 30.0, -30.0):
        a = abs(eta)
        want, _ = integrate.quad(sqrt_var, 0.0, a, epsabs=0.0, epsrel=2e-14, limit=200)
        got = continuous_bernoulli_embedding(torch.tensor(eta, dtype=torch.float64)).item()
        assert got == pytest.approx(math.copysign(want, eta), rel=1e-13)
    # large logits: e(η) = log η + K + O(η e^(−η)), so differences are exact logs
    big = continuous_bernoulli_embedding(torch.tensor([100.0, 1e4, 1e30], dtype=torch.float64))
    assert (big[1] - big[0]).item() == pytest.approx(math.log(100.0), rel=1e-15)
    assert (big[2] - big[1]).item() == pytest.approx(math.log(1e26), rel=1e-15)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 2e-12), (torch.float32, 1e-6)])
def test_embedding_derivatives_through_torch_func(dtype: torch.dtype, tol: float) -> None:
    """Differentiating the quadrature (the untraced path) agrees with the closed forms."""
    eta = torch.tensor(LOGITS, dtype=dtype)
    one = torch.ones_like(eta)
    root = continuous_bernoulli_variance(eta).sqrt()
    first = jvp(continuous_bernoulli_embedding, (eta,), (one,))[1]
    assert ((first - root).abs() / root).max() <= tol

    def slope(x: Tensor) -> Tensor:
        return jvp(continuous_bernoulli_embedding, (x,), (torch.ones_like(x),))[1]

    second = jvp(slope, (eta,), (one,))[1]
    want = continuous_bernoulli_variance_slope(eta) / (2 * root)
    assert ((second - want).abs() / (want.abs() + 1e-3 * root)).max() <= 50 * tol


class CBDecoder(nn.Module):
    """A tanh MLP whose logits reach 0 (|η| < 1e-3), ±30 and moderate values at z ≈ 0."""

    def __init__(self, d: int = 3, m: int = 8, *, probs: bool = False, independent: bool = False):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, m))
        with torch.no_grad():
            self.net[2].weight[:3] *= 1e-3  # the first outputs stay near their bias
            self.net[2].bias[:3] = torch.tensor([30.0, -30.0, 0.0])
        self.probs, self.independent = probs, independent

    def logits(self, z: Tensor) -> Tensor:
        return self.net(z)

    def forward(self, z: Tensor) -> ContinuousBernoulli | Independent:
        h = self.net(z)
        out = (
            ContinuousBernoulli(probs=torch.sigmoid(h))
            if self.probs
            else ContinuousBernoulli(logits=h)
        )
        return Independent(out, 1) if self.independent else out


def _decoder(dtype: torch.dtype, **options: bool) -> CBDecoder:
    torch.manual_seed(0)
    return CBDecoder(**options).to(dtype).eval().requires_grad_(False)


def fisher_reference(decoder: CBDecoder, z: Tensor) -> Tensor:
    """``J_ηᵀ diag(Var(η)) J_η`` in float64, Var by quadrature of the density."""
    dec64 = _decoder(torch.float64)
    dec64.load_state_dict({k: v.double() for k, v in decoder.state_dict().items()})
    z64 = z.double()
    jac = vmap(jacfwd(dec64.logits))(z64)
    eta = dec64.logits(z64)
    var = torch.from_numpy(central_moments(eta.numpy().ravel())[0]).reshape(eta.shape)
    return jac.mT @ (var.unsqueeze(-1) * jac)


def _fast(decoder: object) -> PullbackMetric:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        metric = as_metric(decoder)
    assert isinstance(metric, PullbackMetric) and metric._first is not None  # traced
    return metric


# float32: G sums 8 outputs of products of float32 Jacobians (~10 ulp each) against a
# float64 reference; measured 2e-7 relative to max |G|
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 2e-6)])
@pytest.mark.parametrize("probs, independent", [(False, False), (False, True), (True, False)])
def test_metric_is_the_fisher_information(
    dtype: torch.dtype, tol: float, probs: bool, independent: bool
) -> None:
    decoder = _decoder(dtype, probs=probs, independent=independent)
    z = 0.3 * torch.randn(6, 3, dtype=dtype, generator=torch.Generator().manual_seed(1))
    eta = decoder.logits(z)
    assert eta[:, 2].abs().max() < 1e-3 and eta[:, 0].min() > 29.9 and eta[:, 1].max() < -29.9
    got = _fast(decoder).metric_tensor(z).double()
    if probs:  # probabilities are clamped to [eps, 1 − eps] as torch does: logits saturate
        eps = torch.finfo(dtype).eps
        p = torch.sigmoid(eta).clamp(eps, 1 - eps)
        eta = torch.log(p) - torch.log1p(-p)
        jac = vmap(jacfwd(lambda x: decoder.logits(x)))(z).double()
        saturated = (torch.sigmoid(decoder.logits(z)) != p).double()  # clamped: no derivative
        jac = jac * (1 - saturated).unsqueeze(-1)
        var = torch.from_numpy(central_moments(eta.double().numpy().ravel())[0])
        want = jac.mT @ (var.reshape(eta.shape).unsqueeze(-1) * jac)
    else:
        want = fisher_reference(decoder, z)
    err = ((got - want).abs().max() / want.abs().max()).item()
    assert err <= tol, err


def test_untraceable_decoder_uses_torch_func_and_agrees() -> None:
    decoder = _decoder(torch.float64)

    def branchy(z: Tensor) -> ContinuousBernoulli:
        h = decoder.logits(z)
        return ContinuousBernoulli(logits=h if bool(z.sum() < 1e9) else -h)

    z = 0.3 * torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with pytest.warns(PerformanceWarning):
        metric = as_metric(branchy)
    want = fisher_reference(decoder, z)
    err = ((metric.metric_tensor(z) - want).abs().max() / want.abs().max()).item()
    assert err <= 1e-10, err


def test_geodesic_terms_match_the_nested_jvp_of_the_embedding() -> None:
    decoder = _decoder(torch.float64)
    metric = _fast(decoder)
    assert metric._second is not None
    gen = torch.Generator().manual_seed(3)
    z = 0.3 * torch.randn(5, 3, dtype=torch.float64, generator=gen)
    v = torch.randn(5, 3, dtype=torch.float64, generator=gen)
    terms = metric.geodesic_terms(z, v)

    def embed(x: Tensor) -> Tensor:
        return continuous_bernoulli_embedding(decoder.logits(x))

    def push(x: Tensor) -> Tensor:
        return jvp(embed, (x,), (v,))[1]

    second = jvp(push, (z,), (v,))[1]  # ∂²f[v, v], through the quadrature's derivatives
    jac = vmap(jacfwd(embed))(z)
    torch.testing.assert_close(terms.g, jac.mT @ jac, rtol=1e-10, atol=1e-14)
    want_b = (jac.mT @ second.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(terms.b, want_b, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("method", ["spline", "shooting"])
def test_connecting_geodesic_converges(method: str) -> None:
    decoder = _decoder(torch.float64)
    gen = torch.Generator().manual_seed(4)
    z0 = 0.5 * torch.randn(3, 3, dtype=torch.float64, generator=gen)
    z1 = 0.5 * torch.randn(3, 3, dtype=torch.float64, generator=gen)
    result = connecting_geodesic(decoder, z0, z1, method=method)
    assert all(s is Status.CONVERGED for s in result.status), result.status
    straight = (z1 - z0).norm(dim=-1)
    assert torch.isfinite(result.length).all() and (result.length > 0).all()
    assert straight.min() > 0
