"""Scalar fields drawn as images: the values' checks, orientation, limits and colour bar."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentgeo.viz import new_figure
from latentgeo.viz.images import grid_values, show_grid


def test_grid_values_blank_the_non_finite_and_refuse_other_shapes() -> None:
    arr = grid_values(torch.tensor([[1.0, float("inf")], [float("nan"), -2.0]]))
    assert arr.dtype == np.float64
    assert np.array_equal(np.isnan(arr), [[False, True], [True, False]])
    with pytest.raises(ValueError, match=r"values must have shape \(R, C\), got \(3,\)"):
        grid_values(np.zeros(3))


def test_show_grid_puts_row_zero_at_the_bottom_within_the_extent() -> None:
    fig, (ax,) = new_figure()
    image = show_grid(
        ax, np.arange(6.0).reshape(2, 3), (-1, 2, 0, 4), label="u", colorbar=True, extend="max"
    )
    assert image.origin == "lower" and tuple(image.get_extent()) == (-1, 2, 0, 4)
    assert ax.get_xlim() == (-1, 2) and ax.get_ylim() == (0, 4)
    bar = fig.axes[-1]
    assert bar is not ax and bar.get_ylabel() == "u"
    assert image.colorbar is not None and image.colorbar.extend == "max"


def test_show_grid_without_a_colour_bar_adds_no_axes() -> None:
    fig, (ax,) = new_figure()
    show_grid(ax, np.zeros((2, 2)), (0, 1, 0, 1), label="u", colorbar=False, cmap="magma")
    assert fig.axes == [ax]


def test_the_colour_maps_own_arrows_unless_told() -> None:
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"].with_extremes(under="k", over="w")
    cmap.colorbar_extend = "both"
    _, (ax,) = new_figure()
    own = show_grid(ax, np.zeros((2, 2)), (0, 1, 0, 1), label=None, colorbar=True, cmap=cmap)
    told = show_grid(
        ax, np.zeros((2, 2)), (0, 1, 0, 1), label=None, colorbar=True, cmap=cmap, extend="min"
    )
    assert own.colorbar is not None and own.colorbar.extend == "both"
    assert told.colorbar is not None and told.colorbar.extend == "min"
