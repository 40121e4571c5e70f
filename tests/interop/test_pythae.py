"""pythae models (trained here in seconds on generated data) as latentgeo metrics."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.distributions import Bernoulli

from latentgeo.exceptions import PerformanceWarning
from latentgeo.interop import is_pythae_model
from latentgeo.metrics import PullbackMetric, RHVAEMetric, as_metric
from latentgeo.solvers import connecting_geodesic

pythae_models = pytest.importorskip(
    "pythae.models", reason="pythae is not installed (pip install 'latentgeo[pythae]')"
)

torch.set_num_threads(1)
D, LATENT = 6, 2


def _train(model: Any, epochs: int = 2) -> Any:
    """Adam on 48 generated points; ``update()`` after each epoch, as pythae's trainer does."""
    torch.manual_seed(0)
    x = torch.rand(48, D)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        for i in range(0, 48, 16):
            loss = model({"data": x[i : i + 16]}).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        if hasattr(model, "update"):
            model.update()
    return model.eval()


@pytest.fixture(scope="module", params=["mse", "bce"])
def vae(request: pytest.FixtureRequest) -> Any:
    torch.manual_seed(1)
    config = pythae_models.VAEConfig(
        input_dim=(D,), latent_dim=LATENT, reconstruction_loss=request.param
    )
    return _train(pythae_models.VAE(config)).double()


@pytest.fixture(scope="module")
def rhvae() -> Any:
    torch.manual_seed(2)
    config = pythae_models.RHVAEConfig(input_dim=(D,), latent_dim=LATENT, n_lf=1)
    return _train(pythae_models.RHVAE(config))


def _jacobian(f: Any, z: Tensor) -> Tensor:
    return torch.stack([torch.autograd.functional.jacobian(f, zi) for zi in z])


def _expected(vae: Any, z: Tensor) -> Tensor:
    """The metric under the model's likelihood, from autograd Jacobians of the reconstruction."""

    def recon(zi: Tensor) -> Tensor:
        return vae.decoder(zi.unsqueeze(0))["reconstruction"].reshape(-1)

    jac = _jacobian(recon, z)  # (N, D, d)
    if vae.model_config.reconstruction_loss == "mse":  # N(recon, I): Jᵀ J
        return jac.mT @ jac
    p = torch.stack([recon(zi) for zi in z])  # Bernoulli(recon): Jᵀ diag(1/(p(1−p))) J
    return jac.mT @ (jac / (p * (1 - p)).unsqueeze(-1))


def _straight_length(metric: Any, z0: Tensor, z1: Tensor) -> Tensor:
    """The straight line's length under ``metric`` (fine trapezoid rule): a geodesic's bound."""
    t = torch.linspace(0, 1, 513, dtype=z0.dtype)[:, None, None]
    line = z0 + t * (z1 - z0)
    speed = metric.norm(line, (z1 - z0).expand_as(line))
    return torch.trapezoid(speed, dx=1 / 512, dim=0)


def _fast(obj: Any, **options: Any) -> PullbackMetric:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        metric = as_metric(obj, **options)
    assert isinstance(metric, PullbackMetric) and metric._first is not None  # the engine
    assert metric.latent_dim == LATENT
    return metric


def test_vae_metric_matches_autograd_through_every_adapter(vae: Any) -> None:
    assert is_pythae_model(vae) and not is_pythae_model(vae.decoder)
    z = torch.randn(5, LATENT, dtype=torch.float64)
    expected = _expected(vae, z)
    tol = {"rtol": 1e-10, "atol": 1e-10}
    torch.testing.assert_close(_fast(vae).metric_tensor(z), expected, **tol)
    if vae.model_config.reconstruction_loss == "mse":
        for options in ({}, {"output": "reconstruction"}, {"output": lambda o: o.reconstruction}):
            got = _fast(vae.decoder, **options).metric_tensor(z)
            torch.testing.assert_close(got, expected, **tol)
    else:
        pick = {"output": lambda o: Bernoulli(probs=o["reconstruction"])}
        torch.testing.assert_close(_fast(vae.decoder, **pick).metric_tensor(z), expected, **tol)


def test_vae_geodesics_converge(vae: Any) -> None:
    metric = as_metric(vae)
    z0 = torch.tensor([[-1.0, -0.5], [0.3, 1.0]], dtype=torch.float64)
    # pythae's MLP decoder is ReLU: its metric is piecewise constant and the energy settles
    # to ~3e-3 per refinement only, never to the default refine_tol = 1e-4 (max_iter at
    # 55 knots; it used to be reported converged at 64 knots regardless)
    result = connecting_geodesic(metric, z0, -z0, refine_tol=1e-2)
    assert result.all_converged, result.status
    assert bool((result.length <= _straight_length(metric, z0, -z0) * (1 + 1e-6)).all())


def test_wrong_latent_dim_of_a_pythae_model() -> None:
    config = pythae_models.VAEConfig(input_dim=(D,), latent_dim=3)
    model = pythae_models.VAE(config).eval()
    with pytest.raises(ValueError, match="latent dimension 3, got latent_dim=2"):
        as_metric(model, latent_dim=2)
    with pytest.raises(ValueError, match=r"expects latent dimension 3 .*got latent_dim=2"):
        as_metric(model.decoder, latent_dim=2)


def _pythae_in_float64(rhvae: Any) -> Any:
    model = copy.deepcopy(rhvae).double()
    model.M_tens = model.M_tens.double()
    model.centroids_tens = model.centroids_tens.double()
    return model


def test_from_pythae_matches_pythae_g_and_g_inv(rhvae: Any) -> None:
    metric = RHVAEMetric.from_pythae(rhvae, dtype=torch.float64)
    reference = _pythae_in_float64(rhvae)
    assert metric.centroids.shape[0] == rhvae.centroids_tens.shape[0] > 1
    z = torch.cat([reference.centroids_tens, torch.randn(4, LATENT, dtype=torch.float64)])
    with torch.no_grad():
        g, g_inv = reference.G(z), reference.G_inv(z)
    scale = g.abs().amax((-2, -1), keepdim=True)
    inv_scale = g_inv.abs().amax((-2, -1), keepdim=True)
    assert float(((metric.metric_tensor(z) - g).abs() / scale).max()) < 1e-10
    assert float(((metric.inverse_metric_tensor(z) - g_inv).abs() / inv_scale).max()) < 1e-10
    # the default keeps the model's dtype; as_metric(model) is the same learned metric
    assert RHVAEMetric.from_pythae(rhvae).centroids.dtype == torch.float32
    learned = as_metric(rhvae)
    assert isinstance(learned, RHVAEMetric) and not learned.is_pullback
    zf = z.float()
    torch.testing.assert_close(learned.metric_tensor(zf), metric.metric_tensor(z).float())


def test_rhvae_metric_functions_are_not_pulled_back(rhvae: Any) -> None:
    with pytest.raises(TypeError, match=r"model\.G is the pythae RHVAE's metric tensor"):
        as_metric(rhvae.G)
    with pytest.raises(TypeError, match=r"model\.G_inv .*inverse"):
        as_metric(rhvae.G_inv)


def test_rhvae_geodesics_converge(rhvae: Any) -> None:
    metric = RHVAEMetric.from_pythae(rhvae, dtype=torch.float64)
    c = metric.centroids
    z0, z1 = c[:3], c[-3:]
    result = connecting_geodesic(metric, z0, z1)
    assert result.all_converged, result.status
    assert bool((result.length <= _straight_length(metric, z0, z1) * (1 + 1e-6)).all())


def test_unfitted_rhvae_is_refused() -> None:
    model = pythae_models.RHVAE(pythae_models.RHVAEConfig(input_dim=(D,), latent_dim=LATENT))
    with pytest.raises(ValueError, match=r"model\.update\(\)"):
        RHVAEMetric.from_pythae(model.eval())
    with pytest.raises(TypeError, match="needs a pythae RHVAE"):
        RHVAEMetric.from_pythae(torch.nn.Linear(2, 2))
