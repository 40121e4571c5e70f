"""Fitting LAND mixtures: on a flat metric, the Gaussian MLE and scikit-learn's mixture."""

from __future__ import annotations

import torch

from latentgeo.geometry import fit_land
from latentgeo.solvers import Status
from latentgeo.testing import LinearMap

A = torch.tensor([[2.0, 0.0], [1.0, 1.0]], dtype=torch.float64)


def flat_log(base: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The log map of a flat metric, exactly."""
    return target - base


def test_fit_on_a_flat_metric_is_the_gaussian_mle(dtype: torch.dtype) -> None:
    x = torch.randn(200, 2, dtype=dtype) @ torch.tensor([[1.0, 0.3], [0.0, 0.5]], dtype=dtype) + 1
    fit = fit_land(LinearMap(A.to(dtype)), x, num_samples=32, log_method=flat_log)
    assert fit.status == [Status.CONVERGED] and fit.failed_points == 0
    land = fit.distribution
    centred = x - x.mean(0)
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(land.means[0], x.mean(0), rtol=tol, atol=tol)
    torch.testing.assert_close(land.covariances[0], centred.T @ centred / 200, rtol=tol, atol=tol)
    assert bool((fit.log_likelihood[1:] >= fit.log_likelihood[:-1] - tol).all())


def test_mixture_fit_matches_scikit_learn() -> None:
    from sklearn.mixture import GaussianMixture

    gen = torch.Generator().manual_seed(1)
    x = torch.cat([
        torch.randn(120, 2, generator=gen, dtype=torch.float64) * 0.5,
        torch.randn(80, 2, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 0.3]) + 4,
    ])  # fmt: skip
    fit = fit_land(LinearMap(A), x, num_components=2, num_samples=32, log_method=flat_log,
                   tol=1e-12, max_iter=100)  # fmt: skip
    assert fit.status == [Status.CONVERGED]
    gmm = GaussianMixture(2, reg_covar=0.0, tol=1e-12, max_iter=500, random_state=0).fit(x.numpy())
    order = torch.as_tensor(gmm.means_[:, 0]).argsort()
    mine = fit.distribution.means[:, 0].argsort()
    land = fit.distribution
    torch.testing.assert_close(land.means[mine], torch.as_tensor(gmm.means_)[order],
                               rtol=0, atol=1e-6)  # fmt: skip
    torch.testing.assert_close(land.covariances[mine], torch.as_tensor(gmm.covariances_)[order],
                               rtol=0, atol=1e-6)  # fmt: skip
    torch.testing.assert_close(land.weights[mine], torch.as_tensor(gmm.weights_)[order],
                               rtol=0, atol=1e-6)  # fmt: skip
    assert fit.responsibilities.shape == (200, 2)
