"""Figures are made headlessly and written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal

from latentgeo.models import EnsembleDecoder
from latentgeo.testing import StereographicSphere
from latentgeo.viz import (
    decoder_uncertainty,
    indicatrix_points,
    latent_grid,
    log_volume_map,
    new_figure,
    plot_cv_histograms,
    plot_indicatrices,
    plot_latent_space,
    plot_relative_improvement,
    save_figure,
    uncertainty_map,
    volume_map,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


class GaussianDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mu = nn.Linear(2, 5)

    def forward(self, z: torch.Tensor) -> Independent:
        sigma = 0.1 + z.pow(2).sum(-1, keepdim=True).expand(-1, 5)
        return Independent(Normal(self.mu(z), sigma), 1)


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


def test_uncertainty_of_gaussian_and_ensemble_decoders() -> None:
    z = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(decoder_uncertainty(GaussianDecoder(), z), torch.tensor([0.1, 2.1]))
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


def test_indicatrices_are_unit_balls_of_the_metric() -> None:
    g = torch.tensor([[[2.0, 0.5], [0.5, 1.0]], [[9.0, 0.0], [0.0, 0.25]]], dtype=torch.float64)
    v = indicatrix_points(g, 3.0, num=17)
    assert v.shape == (2, 17, 2)
    quad = torch.einsum("nti,nij,ntj->nt", v, g, v)
    torch.testing.assert_close(quad, torch.full_like(quad, 9.0))


@pytest.mark.parametrize("background", ["volume", "log_volume", "uncertainty", None])
def test_latent_space_figure_is_written(tmp_path: Path, background: str | None) -> None:
    decoder = GaussianDecoder()
    codes = torch.randn(30, 2)
    labels = torch.randint(0, 3, (30,))
    t = torch.linspace(0, 1, 10)
    z0, z1 = torch.randn(4, 2), torch.randn(4, 2)
    curves = z0[:, None] + t[None, :, None] * (z1 - z0)[:, None]
    fig = plot_latent_space(
        decoder=decoder,
        background=background,
        codes=codes,
        labels=labels,
        curves=curves,
        straight=(z0, z1),
        indicatrix_centres=torch.randn(5, 2),
        resolution=12,
        title="test",
    )
    out = save_figure(fig, tmp_path / "sub" / "latent.png")
    assert _is_png(out)
    assert [p.name for p in out.parent.iterdir()] == ["latent.png"]  # no temporary left


def test_indicatrices_on_given_axes(tmp_path: Path) -> None:
    fig, (ax,) = new_figure()
    lines = plot_indicatrices(ax, StereographicSphere(), torch.randn(6, 2))
    assert len(lines.get_segments()) == 6
    assert _is_png(save_figure(fig, tmp_path / "ind.png"))


def test_histograms(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    fig = plot_cv_histograms(rng.uniform(0.04, 0.1, 50), torch.rand(50) * 0.5)
    assert _is_png(save_figure(fig, tmp_path / "cv.png"))
    fig = plot_relative_improvement(torch.rand(40) * 0.1)
    assert _is_png(save_figure(fig, tmp_path / "rel.png"))
    with pytest.raises(ValueError, match="no finite"):
        plot_relative_improvement(np.array([np.nan]))


def test_failed_save_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "fig.png"
    target.write_bytes(b"old")
    fig, _ = new_figure()
    with pytest.raises(ValueError):
        save_figure(fig, target.with_suffix(".nosuchformat"))
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["fig.png"]
