"""RBF precision: k-means centres, bandwidth rules, σ far from vs. at the data, fitting."""

from __future__ import annotations

import math

import pytest
import torch

from latentgeo.models import MLP, GaussianDecoder, RBFPrecision, fit_rbf_precision


def _blobs(n_per: int = 40, spread: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    means = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    z = means.repeat_interleave(n_per, 0) + spread * torch.randn(3 * n_per, 2, dtype=torch.float64)
    return z, means


def test_kmeans_centres_land_on_the_data() -> None:
    z, means = _blobs()
    rbf = RBFPrecision(2, 1, num_centres=3).double()
    labels = rbf.fit_centres(z, seed=0)
    # every centre sits on a blob, every blob has a centre
    dist = torch.cdist(rbf.centres, means)
    assert float(dist.min(1).values.max()) < 0.05
    assert sorted(dist.argmin(1).tolist()) == [0, 1, 2]
    # every centre is close to some data point, and the labels index the centres
    assert float(torch.cdist(rbf.centres, z).min(1).values.max()) < 0.1
    assert labels.shape == (z.shape[0],) and set(labels.tolist()) == {0, 1, 2}


@pytest.mark.parametrize("rule", ["mean_dist", "mean_sq_dist"])
def test_bandwidth_rules(rule: str) -> None:
    z, _ = _blobs()
    a = 2.0
    rbf = RBFPrecision(2, 1, num_centres=3, bandwidth=rule, a=a).double()
    labels = rbf.fit_centres(z, seed=0)
    for k in range(3):
        d = (z[labels == k] - rbf.centres[k]).norm(dim=1)
        spread = (d**2).mean() if rule == "mean_sq_dist" else d.mean()
        assert math.isclose(float(rbf.bandwidths[k]), 0.5 / float(a * spread) ** 2, rel_tol=1e-9)


@pytest.mark.parametrize("positivity", ["softplus", "projection"])
def test_sigma_far_from_data_is_much_larger_than_at_the_data(positivity: str) -> None:
    # data x = f(z) + noise with a known noise level, on a ring of codes
    n, noise = 400, 0.05
    theta = torch.rand(n, dtype=torch.float64) * 2 * math.pi
    z = torch.stack([theta.cos(), theta.sin()], 1)
    mean = torch.cat([z, z[:, :1] * z[:, 1:]], 1)
    x = mean + noise * torch.randn_like(mean)
    zeta = 1e-2
    rbf = RBFPrecision(2, 3, num_centres=12, zeta=zeta, positivity=positivity).double()
    nll = fit_rbf_precision(rbf, z, mean, x, epochs=150, lr=0.05, progress=False)
    assert nll[-1] <= nll[0]
    assert bool((rbf.weight >= 0).all())
    far = torch.tensor([[6.0, 6.0], [-8.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    with torch.no_grad():
        sigma_data, sigma_far, sigma_hole = rbf(z), rbf(far[:2]), rbf(far[2:])
    # at the data σ matches the noise; far away σ -> ζ^(-1/2) = 10
    assert abs(float(sigma_data.median()) - noise) < 0.5 * noise
    torch.testing.assert_close(sigma_far, torch.full_like(sigma_far, zeta**-0.5), rtol=1e-3, atol=0)
    assert float(sigma_far.min()) > 50 * float(sigma_data.max())
    # the hole of the ring (far from every code) is uncertain too
    assert float(sigma_hole.min()) > 10 * float(sigma_data.max())


def test_minibatch_fitting_and_decoder_use() -> None:
    z = torch.randn(200, 2)
    mean_net = MLP(2, 4, hidden=(8,))
    with torch.no_grad():
        mean = mean_net(z)
    x = mean + 0.1 * torch.randn_like(mean)
    rbf = RBFPrecision(2, 4, num_centres=6)
    nll = fit_rbf_precision(rbf, z, mean, x, epochs=5, batch_size=32, progress=False)
    assert len(nll) == 5 and all(math.isfinite(v) for v in nll)
    dec = GaussianDecoder(mean_net, rbf)
    assert bool((rbf.weight >= 0).all())
    assert dec(z).scale.shape == (200, 4)


def test_unfitted_rbf_is_constant_and_bad_arguments_fail() -> None:
    rbf = RBFPrecision(2, 3, num_centres=4, zeta=0.25)
    torch.testing.assert_close(rbf(torch.randn(5, 2)), torch.full((5, 3), 2.0))
    with pytest.raises(ValueError, match="bandwidth"):
        RBFPrecision(2, 3, bandwidth="median")
    with pytest.raises(ValueError, match="positivity"):
        RBFPrecision(2, 3, positivity="abs")
    with pytest.raises(ValueError, match="zeta"):
        RBFPrecision(2, 3, zeta=0.0)
    with pytest.raises(ValueError, match="num_centres"):
        RBFPrecision(2, 3, num_centres=0)
    with pytest.raises(ValueError, match="at least num_centres"):
        rbf.fit_centres(torch.randn(3, 2))
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        rbf.fit_centres(torch.randn(10, 3))
    with pytest.raises(ValueError, match="mean and x"):
        fit_rbf_precision(rbf, torch.randn(10, 2), torch.randn(10, 3), torch.randn(10, 2))
