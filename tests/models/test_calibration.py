"""Tests of :mod:`latentgeo.models.calibration`."""

from __future__ import annotations

import math

import pytest
import torch

from latentgeo.data import ring
from latentgeo.models import calibrate_rbf, fit, make_rbf_vae


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return ring(256, noise=0.05, seed=0).x


def test_calibrate_rbf_fits_sigma_and_switches_the_likelihood(data: torch.Tensor) -> None:
    vae = make_rbf_vae(2, num_centres=8, hidden=(16,), seed=0)
    fit(vae, data, epochs=10, batch_size=32, lr=3e-3, progress=False)
    mean_before = vae.decoder.mean_net.state_dict()["net.0.weight"].clone()
    nll = calibrate_rbf(vae, data, epochs=50, progress=False)
    assert nll[-1] < nll[0] and vae.obs_std is None
    # the mean network was frozen
    torch.testing.assert_close(vae.decoder.mean_net.state_dict()["net.0.weight"], mean_before)
    with torch.no_grad():
        z = vae.encode(data).mean
        at_data = vae.decoder(z).scale.median()
        far = vae.decoder(torch.full((1, 2), 50.0)).scale.min()
    assert float(far) > 20 * float(at_data)
    assert math.isfinite(float(vae.elbo(data).mean().detach()))
