"""Latent-space figures: indicatrices, the composed latent plot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from latentgeo.testing import StereographicSphere
from latentgeo.viz import (
    indicatrix_points,
    new_figure,
    plot_indicatrices,
    plot_latent_space,
    save_figure,
)


def test_indicatrices_are_unit_balls_of_the_metric() -> None:
    g = torch.tensor([[[2.0, 0.5], [0.5, 1.0]], [[9.0, 0.0], [0.0, 0.25]]], dtype=torch.float64)
    v = indicatrix_points(g, 3.0, num=17)
    assert v.shape == (2, 17, 2)
    quad = torch.einsum("nti,nij,ntj->nt", v, g, v)
    torch.testing.assert_close(quad, torch.full_like(quad, 9.0))


@pytest.mark.parametrize("background", ["volume", "log_volume", "uncertainty", None])
def test_latent_space_figure_is_written(
    tmp_path: Path,
    background: str | None,
    gaussian_decoder: nn.Module,
    is_png: Callable[[Path], bool],
) -> None:
    decoder = gaussian_decoder
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
    assert is_png(out)
    assert [p.name for p in out.parent.iterdir()] == ["latent.png"]  # no temporary left


def test_indicatrices_on_given_axes(tmp_path: Path, is_png: Callable[[Path], bool]) -> None:
    fig, (ax,) = new_figure()
    lines = plot_indicatrices(ax, StereographicSphere(), torch.randn(6, 2))
    assert len(lines.get_segments()) == 6
    assert is_png(save_figure(fig, tmp_path / "ind.png"))
