"""Curvature maps and densities on a latent grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentgeo.viz import (
    new_figure,
    plot_curvature,
    plot_density,
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
