"""The LAND: Gaussians on flat metrics, normalising constants on the sphere and the hyperbolic
plane in closed form, EM against scikit-learn's Gaussian mixture."""

from __future__ import annotations

import math
import re

import pytest
import torch
from scipy.integrate import quad

from latentgeo.exceptions import NumericsWarning
from latentgeo.geometry import LAND, fit_land, standard_draws
from latentgeo.geometry.land import STEPS_LOG_TOL
from latentgeo.testing import LinearMap, PoincareDisk, StereographicSphere

A = torch.tensor([[2.0, 0.0], [1.0, 1.0]], dtype=torch.float64)


def flat_log(base: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return target - base


def gaussian(mean: torch.Tensor, cov: torch.Tensor) -> torch.distributions.MultivariateNormal:
    return torch.distributions.MultivariateNormal(mean, cov)


def test_standard_draws() -> None:
    e = standard_draws(64, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(e.mean(0), torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-14)
    torch.testing.assert_close(e.T @ e / 64, torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="even int"):
        standard_draws(5, 2)


def test_flat_land_is_a_gaussian_mixture(dtype: torch.dtype) -> None:
    flat = LinearMap(A.to(dtype))
    means = torch.tensor([[0.0, 0.0], [1.0, -2.0]], dtype=dtype)
    second = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=dtype)
    covs = torch.stack([torch.eye(2, dtype=dtype), second])
    weights = torch.tensor([0.3, 0.7], dtype=dtype)
    land = LAND(flat, means, covs, weights, num_samples=32, log_method=flat_log)
    x = torch.randn(64, 2, dtype=dtype)
    comps = torch.stack([gaussian(means[k], covs[k]).log_prob(x) for k in range(2)])
    expected = torch.logsumexp(comps + weights.log()[:, None], 0)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(land.log_prob(x, measure="lebesgue"), expected, rtol=tol, atol=tol)
    # w.r.t. the Riemannian volume √det G = |det A|
    riem = expected - torch.linalg.det(A).abs().log().to(dtype)
    torch.testing.assert_close(land.log_prob(x), riem, rtol=tol, atol=tol)
    samples = land.sample((3, 4))
    assert samples.shape == (3, 4, 2) and samples.dtype == dtype


def normal_integral(s: float, curvature: int) -> float:
    """``log ∫ exp(−r²/2s²) dA`` over the unit sphere (+1) or the hyperbolic plane (−1)."""
    sn = math.sin if curvature > 0 else math.sinh
    top = math.pi if curvature > 0 else 30 * s
    return math.log(2 * math.pi * quad(lambda r: math.exp(-r * r / (2 * s * s)) * sn(r), 0, top)[0])


@pytest.mark.parametrize("curvature", [1, -1])
def test_normalising_constant_in_closed_form(curvature: int) -> None:
    """An isotropic LAND (Σ = s² G(μ)⁻¹) has C = ∫ exp(−d(μ, x)²/2s²) dM: the exact volume
    matches it to Monte Carlo accuracy, the paper's approximation does not."""
    s = 0.8 if curvature > 0 else 0.5
    metric = StereographicSphere() if curvature > 0 else PoincareDisk()
    mu = torch.tensor([0.5, -0.3] if curvature > 0 else [0.2, 0.1], dtype=torch.float64)
    g = (4 / (1 + mu.pow(2).sum()) ** 2) if curvature > 0 else (4 / (1 - mu.pow(2).sum()) ** 2)
    cov = (s**2 / g) * torch.eye(2, dtype=torch.float64)
    exact = normal_integral(s, curvature)
    gen = torch.Generator().manual_seed(0)
    land = LAND(metric, mu, cov, num_samples=256, generator=gen)
    assert abs(float(land.log_normalizers[0]) - exact) < 5e-3
    paper = LAND(metric, mu, cov, num_samples=256, volume="paper", generator=gen)
    assert abs(float(paper.log_normalizers[0]) - exact) > 1e-2


def test_sampling_a_flat_land_gives_its_gaussian() -> None:
    cov = torch.tensor([[1.0, 0.4], [0.4, 0.5]], dtype=torch.float64)
    land = LAND(LinearMap(A), torch.tensor([1.0, 2.0]).double(), cov, num_samples=32,
                log_method=flat_log)  # fmt: skip
    x = land.sample((2000,), oversample=2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x.mean(0), torch.tensor([1.0, 2.0]).double(), rtol=0, atol=0.07)
    torch.testing.assert_close(torch.cov(x.T), cov, rtol=0, atol=0.08)


def test_bad_input() -> None:
    flat = LinearMap(A)
    mu = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="positive definite"):
        LAND(flat, mu, torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"covariances must have shape \(1, 2, 2\)"):
        LAND(flat, mu, torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="weights"):
        LAND(flat, mu, torch.eye(2).double(), torch.tensor([-1.0]).double())
    with pytest.raises(ValueError, match="volume"):
        LAND(flat, mu, torch.eye(2).double(), volume="approx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="measure"):
        LAND(flat, mu, torch.eye(2).double(), num_samples=8).log_prob(mu, measure="dx")
    with pytest.raises(ValueError, match="num_components"):
        fit_land(flat, torch.zeros(3, 2, dtype=torch.float64), num_components=4)


def test_a_normalising_constant_resting_on_few_samples_is_announced() -> None:
    """An audit: on the stereographic sphere at tangent spread 1.0 (samples near the
    conjugate point, |v| = π) 20 of 2048 samples carried the estimate and ``log C`` was
    0.27 off, without a word. The effective sample size says so, and the LAND warns;
    at spread 0.5 it is close to all the samples and says nothing."""
    mu = torch.tensor([0.5, -0.3], dtype=torch.float64)
    g = 4 / (1 + mu.pow(2).sum()) ** 2
    eye = torch.eye(2, dtype=torch.float64)
    with pytest.warns(NumericsWarning) as record:
        wide = LAND(StereographicSphere(), mu, eye / g, num_samples=2048,
                    generator=torch.Generator().manual_seed(0))  # fmt: skip
    said = " ".join(str(w.message) for w in record)
    assert re.search(r"effective sample size \d+ of 2048", said)
    assert "RK4 steps were halved (16 -> 8" in said  # and its 16 steps are too few there
    assert float(wide.mc.effective_samples[0]) < 0.05 * 2048
    assert "raise num_samples" in wide.mc.few_samples_note()
    narrow = LAND(StereographicSphere(), mu, 0.25 * eye / g, num_samples=2048,
                  generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert float(narrow.mc.effective_samples[0]) > 0.9 * 2048
    assert narrow.mc.few_samples_note() == ""
    assert abs(float(narrow.log_normalizers[0]) - normal_integral(0.5, 1)) < 5e-3


def test_too_few_rk4_steps_are_announced() -> None:
    """The normalising constant comes from fixed-step RK4 exponential maps: its change when
    the steps are halved is kept as evidence and, above ``STEPS_LOG_TOL``, announced.
    On the sphere at spread 0.8, 4 steps are 0.04 off the constant at 64 steps and say
    so; 16 steps are within their own estimate of it and say nothing; flat is exact."""
    mu = torch.tensor([0.5, -0.3], dtype=torch.float64)
    cov = (0.8**2 / (4 / (1 + mu.pow(2).sum()) ** 2)) * torch.eye(2, dtype=torch.float64)

    def land(steps: int) -> LAND:
        return LAND(StereographicSphere(), mu, cov, num_samples=256, steps=steps,
                    generator=torch.Generator().manual_seed(0))  # fmt: skip

    fine = land(64).log_normalizers
    with pytest.warns(NumericsWarning, match=r"changed by 4\.\de-02 in log C when the "
                      r"exponential maps' RK4 steps were halved \(4 -> 2"):  # fmt: skip
        coarse = land(4)
    error = (coarse.log_normalizers - fine).abs()
    assert float(error[0]) > STEPS_LOG_TOL
    assert "raise steps" in coarse.few_steps_note()
    enough = land(16)
    assert enough.few_steps_note() == ""
    assert (
        float((enough.log_normalizers - fine).abs()[0])
        <= float(enough.log_normalizer_step_error[0])
        <= STEPS_LOG_TOL
    )
    assert torch.isnan(land(1).log_normalizer_step_error).all()
    flat = LinearMap(torch.eye(2, dtype=torch.float64))
    exact = LAND(flat, mu, torch.eye(2, dtype=torch.float64), num_samples=64, steps=2)
    assert float(exact.log_normalizer_step_error[0]) < 1e-12
