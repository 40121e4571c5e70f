"""The VAE presets: the architecture they promise, seeded without touching the global RNG."""

from __future__ import annotations

import torch

from latentgeo.models import (
    MLP,
    EnsembleDecoder,
    GaussianDecoder,
    GaussianEncoder,
    RBFPrecision,
    make_ensemble_vae,
    make_rbf_vae,
)


def test_ensemble_vae_has_independent_members_and_a_mirrored_encoder() -> None:
    vae = make_ensemble_vae(7, 3, num_members=4, hidden=(8, 5), beta=0.5, obs_std=0.2, seed=1)
    assert isinstance(vae.encoder, GaussianEncoder) and isinstance(vae.decoder, EnsembleDecoder)
    assert vae.decoder.num_members == 4 and (vae.beta, vae.obs_std) == (0.5, 0.2)
    member = vae.decoder.members[0]
    assert isinstance(member, MLP) and (member.in_dim, member.hidden, member.out_dim) == (
        3,
        [8, 5],
        7,
    )
    weights = [m.net[0].weight for m in vae.decoder.members]
    assert not torch.equal(weights[0], weights[1])  # own initialisations
    q = vae.encode(torch.zeros(2, 7))
    assert q.mean.shape == (2, 3)


def test_rbf_vae_has_a_gaussian_decoder_with_rbf_precision() -> None:
    vae = make_rbf_vae(6, 2, num_centres=5, hidden=(8,), zeta=0.04, seed=0)
    assert isinstance(vae.decoder, GaussianDecoder)
    rbf = vae.decoder.scale
    assert isinstance(rbf, RBFPrecision) and rbf.num_centres == 5 and rbf.zeta == 0.04


def test_seeds_reproduce_and_leave_the_global_generator_alone() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = make_ensemble_vae(4, num_members=2, hidden=(3,), seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = make_ensemble_vae(4, num_members=2, hidden=(3,), seed=7)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    c = make_rbf_vae(4, hidden=(3,), seed=8)
    d = make_rbf_vae(4, hidden=(3,), seed=8)
    assert all(torch.equal(x, y) for x, y in zip(c.parameters(), d.parameters(), strict=True))
