"""The geometry figures of latentgeo.viz (curvature maps, densities, interpolation rows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from latentgeo.viz import (
    new_figure,
    plot_curvature,
    plot_density,
    plot_interpolations,
    save_figure,
)


def test_curvature_scale_is_symmetric_and_clipped() -> None:
    values = torch.tensor([[-1.0, 0.0, float("nan")], [0.5, 2.0, 100.0]])
    _, (ax,) = new_figure()
    image = plot_curvature(ax, values, (0, 1, 0, 1), quantile=0.75)
    assert image.norm.vmin == -image.norm.vmax and image.norm.vmax < 100
    fixed = plot_curvature(ax, values, (0, 1, 0, 1), limit=3.0, colorbar=False)
    assert fixed.norm.vmax == 3.0


def test_density_is_the_exponential_unless_log_scale() -> None:
    _, (ax,) = new_figure()
    logp = np.log(np.array([[0.5, 1.0], [2.0, 4.0]]))
    assert np.allclose(plot_density(ax, logp, (0, 1, 0, 1)).get_array(), np.exp(logp))
    assert np.allclose(plot_density(ax, logp, (0, 1, 0, 1), log_scale=True).get_array(), logp)
    with pytest.raises(ValueError, match=r"\(R, C\)"):
        plot_density(ax, np.zeros(3), (0, 1, 0, 1))


def test_interpolation_rows(tmp_path: Path) -> None:
    images = plot_interpolations([torch.rand(6, 784), torch.rand(6, 784)],
                                 labels=["straight line", "geodesic"], title="0 to 1")  # fmt: skip
    assert len(images.axes) == 12
    assert save_figure(images, tmp_path / "rows.png").stat().st_size > 0
    small = plot_interpolations(torch.rand(1, 4, 8, 8))
    assert len(small.axes) == 4
    flat = plot_interpolations(torch.rand(2, 5, 2), labels=["a", "b"])
    assert len(flat.axes) == 1 and len(flat.axes[0].lines) == 4
    space = plot_interpolations(torch.rand(2, 5, 3))
    assert space.axes[0].name == "3d"
    with pytest.raises(ValueError, match="neither images"):
        plot_interpolations(torch.rand(2, 5, 7))
    with pytest.raises(ValueError, match="one entry per row"):
        plot_interpolations(torch.rand(2, 5, 2), labels=["a"])
    with pytest.raises(ValueError, match="does not hold"):
        plot_interpolations(torch.rand(2, 5, 10), image_shape=(3, 3))
