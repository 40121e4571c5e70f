"""Fitting LAND mixtures: on a flat metric, the Gaussian MLE and scikit-learn's mixture."""

from __future__ import annotations

import pytest
import torch

from latentgeo.exceptions import NumericsWarning
from latentgeo.geometry import fit_land
from latentgeo.metrics import as_metric
from latentgeo.solvers import ShootingError, Status
from latentgeo.testing import LinearMap

from .geometries import record_budgets

A = torch.tensor([[2.0, 0.0], [1.0, 1.0]], dtype=torch.float64)


def flat_log(base: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The log map of a flat metric, exactly."""
    return target - base


def test_fit_on_a_flat_metric_is_the_gaussian_mle(dtype: torch.dtype) -> None:
    x = torch.randn(200, 2, dtype=dtype) @ torch.tensor([[1.0, 0.3], [0.0, 0.5]], dtype=dtype) + 1
    fit = fit_land(LinearMap(A.to(dtype)), x, num_samples=32, log_method=flat_log)
    assert fit.status == [Status.CONVERGED] and fit.failed_points == 0
    assert fit.point_status == [Status.CONVERGED] * 200
    fit.raise_if_failed()
    land = fit.distribution
    centred = x - x.mean(0)
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(land.means[0], x.mean(0), rtol=tol, atol=tol)
    torch.testing.assert_close(land.covariances[0], centred.T @ centred / 200, rtol=tol, atol=tol)
    assert bool((fit.log_likelihood[1:] >= fit.log_likelihood[:-1] - tol).all())


def test_memory_budget_is_in_force_for_the_fit_and_the_normaliser() -> None:
    metric = as_metric(LinearMap(A))
    seen = record_budgets(metric)
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    fit = fit_land(metric, x, num_samples=16, log_method="energy", memory_budget=7_654_321)
    assert fit.status == [Status.CONVERGED] and seen == {7_654_321}
    with pytest.raises(ValueError, match="memory_budget"):
        fit_land(metric, x, memory_budget=-1)


def test_progress_is_shown_only_when_asked(capsys: pytest.CaptureFixture) -> None:
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    quiet = fit_land(LinearMap(A), x, num_samples=16, log_method=flat_log)
    assert capsys.readouterr() == ("", "")
    shown = fit_land(LinearMap(A), x, num_samples=16, log_method=flat_log, progress=True)
    err = capsys.readouterr().err
    assert "LAND (EM)" in err and "log_likelihood=" in err
    assert torch.equal(shown.log_likelihood, quiet.log_likelihood)
    with pytest.raises(TypeError, match="progress must be a bool"):
        fit_land(LinearMap(A), x, progress=1)  # type: ignore[arg-type]


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


def test_points_left_out_are_named_warned_and_fail_throw() -> None:
    """Found by a user: with 86 % of the log maps failing, the fit said ``converged`` and
    ``throw=True`` passed, with the mean far from the data's. A point whose log map fails
    is now named in ``point_status``, announced, and fails ``raise_if_failed``."""
    x = torch.randn(60, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lost = x[:, 0] > 1.0

    def flaky_log(base: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.where((target[:, 0] > 1.0)[:, None], torch.nan, target - base)

    flat = LinearMap(torch.eye(2, dtype=torch.float64))
    with pytest.warns(NumericsWarning, match=rf"{int(lost.sum())} of 60 points .*\(nonfinite"):
        fit = fit_land(flat, x, num_samples=32, log_method=flaky_log)
    assert fit.failed_points == int(lost.sum()) > 0
    assert [s is Status.NON_FINITE for s in fit.point_status] == lost.tolist()
    # the EM itself converged, on the other points: the Gaussian MLE of those
    assert fit.status == [Status.CONVERGED]
    torch.testing.assert_close(fit.distribution.means[0], x[~lost].mean(0), rtol=0, atol=1e-8)
    with pytest.raises(ShootingError, match=r"without \d+ of 60 points"):
        fit.raise_if_failed()
    with pytest.raises(ShootingError, match=r"without \d+ of 60 points"):
        fit_land(flat, x, num_samples=32, log_method=flaky_log, throw=True)


def test_a_fit_without_any_point_is_refused_clearly() -> None:
    """Every log map failing left nothing to fit: it failed deep inside with 'weights must
    be non-negative ... with a positive sum', naming neither the points nor the log maps."""
    x = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    flat = LinearMap(torch.eye(2, dtype=torch.float64))
    with pytest.raises(
        ShootingError, match=r"the log maps of all 20 points failed \(nonfinite 20\)"
    ):
        fit_land(flat, x, num_samples=32, log_method=lambda b, t: torch.full_like(t, torch.nan))


def test_a_fit_whose_normaliser_rests_on_few_samples_says_so() -> None:
    """A conformal metric ``e^{20 z₀} I``: the volume weights of the Monte Carlo samples
    differ by orders of magnitude, a few carry the normalising constant; the fitted
    LAND warns and the fit's message says it (its EM status is about the likelihood)."""
    from latentgeo.metrics import ExplicitMetric

    conformal = ExplicitMetric(
        lambda z: torch.exp(20.0 * z[..., :1, None]) * torch.eye(2, dtype=z.dtype), latent_dim=2
    )
    x = torch.randn(60, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.warns(NumericsWarning) as record:
        fit = fit_land(conformal, x, num_samples=64, max_iter=1, log_method=flat_log)
    said = " ".join(str(w.message) for w in record)
    assert "rests on few Monte Carlo samples" in said
    assert "effective sample size" in fit.message[0]
    # and its exponential maps need more than 16 RK4 steps: log C moved by 4 when halved
    assert "RK4 steps were halved (16 -> 8" in said and "raise steps" in fit.message[0]
    assert float(fit.distribution.mc.effective_samples[0]) < 0.05 * 64
