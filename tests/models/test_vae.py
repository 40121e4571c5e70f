"""The VAE: its API with every decoder kind, image-shaped data with flat decoders."""

from __future__ import annotations

import math

import torch

from latentgeo.data import digits
from latentgeo.models import (
    MLP,
    VAE,
    BernoulliDecoder,
    EnsembleDecoder,
    GaussianDecoder,
    GaussianEncoder,
    RBFPrecision,
    fit,
    make_ensemble_vae,
)


def test_vae_api_with_every_decoder() -> None:
    x = torch.rand(12, 3)
    decoders = {
        "mlp": MLP(2, 3, hidden=(8,)),
        "gaussian": GaussianDecoder(MLP(2, 3, hidden=(8,)), RBFPrecision(2, 3, num_centres=2)),
        "bernoulli": BernoulliDecoder(MLP(2, 3, hidden=(8,))),
        "ensemble": EnsembleDecoder([MLP(2, 3, hidden=(8,)) for _ in range(3)]),
        "gaussian_ensemble": EnsembleDecoder(
            [GaussianDecoder(MLP(2, 3, hidden=(8,)), 0.2) for _ in range(2)]
        ),
    }
    for name, dec in decoders.items():
        vae = VAE(GaussianEncoder(3, 2, hidden=(8,)), dec, beta=0.5)
        assert vae.encode(x).mean.shape == (12, 2), name
        assert vae.elbo(x).shape == (12,), name
        assert vae(x).shape == (12, 3), name
        g = torch.Generator().manual_seed(0)
        s1 = vae.sample(5, generator=g)
        s2 = vae.sample(5, generator=torch.Generator().manual_seed(0))
        assert s1.shape == (5, 3) and torch.equal(s1, s2), name
        assert vae.sample(4, mean=True).shape == (4, 3), name
        h = fit(vae, x, epochs=1, batch_size=6, progress=False)
        assert math.isfinite(h.train_loss[0]), name


def test_image_shaped_data_with_flat_decoders() -> None:
    x = digits(classes=(0, 1)).x[:64].reshape(-1, 1, 8, 8)
    vae = make_ensemble_vae(64, num_members=2, hidden=(16,), seed=0)
    h = fit(vae, x, epochs=3, batch_size=16, lr=3e-3, progress=False)
    assert h.train_loss[-1] < h.train_loss[0]
    assert vae.elbo(x).shape == (64,) and vae.sample(3).shape == (3, 64)
