"""Fields on a latent grid: volume and uncertainty maps against closed forms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentgeo.models import EnsembleDecoder
from latentgeo.testing import StereographicSphere
from latentgeo.viz import (
    decoder_uncertainty,
    latent_grid,
    log_volume_map,
    uncertainty_map,
    volume_map,
)


def test_grid_layout() -> None:
    grid = latent_grid((-1.0, 1.0, 0.0, 2.0), 5)
    assert grid.shape == (5, 5, 2)
    assert torch.equal(grid[0, 0], torch.tensor([-1.0, 0.0]))
    assert torch.equal(grid[-1, 0], torch.tensor([-1.0, 2.0]))  # rows go up in y
    assert torch.equal(grid[0, -1], torch.tensor([1.0, 0.0]))  # columns go right in x


def test_volume_maps_match_the_sphere() -> None:
    grid = latent_grid((-2.0, 2.0, -2.0, 2.0), 7, dtype=torch.float64)
    vol = volume_map(StereographicSphere(), grid)
    expected = 4.0 / (1.0 + grid.pow(2).sum(-1)) ** 2  # sqrt(det(c I_2)) = c
    torch.testing.assert_close(vol, expected)
    torch.testing.assert_close(log_volume_map(StereographicSphere(), grid), expected.log())


def test_uncertainty_of_gaussian_and_ensemble_decoders(gaussian_decoder: nn.Module) -> None:
    z = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(decoder_uncertainty(gaussian_decoder, z), torch.tensor([0.1, 2.1]))
    ens = EnsembleDecoder([nn.Linear(2, 4) for _ in range(3)])
    u = decoder_uncertainty(ens, z)
    stacked = torch.stack([m(z) for m in ens.members]).detach()
    torch.testing.assert_close(u, stacked.std(0, correction=0).mean(-1))
    # a list of decoders is an ensemble too
    torch.testing.assert_close(decoder_uncertainty(list(ens.members), z), u)
    grid = latent_grid((-1.0, 1.0, -1.0, 1.0), 4)
    assert uncertainty_map(ens, grid).shape == (4, 4)


def test_deterministic_decoder_has_no_uncertainty() -> None:
    with pytest.raises(TypeError, match="no uncertainty"):
        decoder_uncertainty(nn.Linear(2, 3), torch.zeros(2, 2))
