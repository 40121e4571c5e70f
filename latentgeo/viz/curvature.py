"""Curvature maps and densities on a latent grid."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.image import AxesImage
from torch import Tensor

from latentgeo.viz.fields import Extent
from latentgeo.viz.images import grid_values, show_grid

__all__ = ["plot_curvature", "plot_density"]


def plot_curvature(
    ax: Axes,
    values: Tensor | np.ndarray,
    extent: Extent,
    *,
    label: str | None = "scalar curvature",
    cmap: str = "RdBu_r",
    limit: float | None = None,
    quantile: float = 0.98,
    colorbar: bool = True,
) -> AxesImage:
    """A curvature map (e.g. :func:`latentgeo.geometry.curvature_map`) on a diverging scale.

    Zero is the middle colour (red: positive, sphere-like; blue: negative,
    saddle-like). Decoder curvature has heavy tails, so the scale is clipped at
    the ``quantile`` of ``|values|`` unless ``limit`` is given.

    Args:
        ax: where to draw.
        values: ``(R, C)``, row ``i`` at the ``i``-th y (as :func:`latent_grid`).
        extent: ``(xmin, xmax, ymin, ymax)``.
        label: colour-bar label.
        cmap: a diverging matplotlib colour map.
        limit: the colour scale is ``[−limit, limit]``.
        quantile: the clipping quantile when ``limit`` is ``None``.
        colorbar: draw a colour bar.

    Returns:
        The image.

    Example:
        >>> from latentgeo.viz import new_figure
        >>> fig, (ax,) = new_figure()
        >>> image = plot_curvature(ax, np.array([[-1.0, 0.0], [0.5, 2.0]]), (0, 1, 0, 1))
        >>> image.norm.vcenter
        0.0
    """
    arr = grid_values(values)
    finite = np.abs(arr[np.isfinite(arr)])
    if limit is None:
        limit = float(np.quantile(finite, quantile)) if finite.size else 1.0
    limit = max(float(limit), 1e-12)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    clipped = np.clip(arr, -limit, limit)
    return show_grid(ax, clipped, extent, label=label, colorbar=colorbar, cmap=cmap, norm=norm)


def plot_density(
    ax: Axes,
    log_density: Tensor | np.ndarray,
    extent: Extent,
    *,
    label: str | None = "density",
    cmap: str = "magma",
    log_scale: bool = False,
    colorbar: bool = True,
) -> AxesImage:
    """A density on a latent grid from its logarithm (a LAND's, a Gaussian mixture's).

    Args:
        ax: where to draw.
        log_density: ``(R, C)`` log-densities (NaN shown blank).
        extent: ``(xmin, xmax, ymin, ymax)``.
        label: colour-bar label.
        cmap: colour map.
        log_scale: show the log-density instead of the density.
        colorbar: draw a colour bar.

    Returns:
        The image.

    Example:
        >>> from latentgeo.viz import new_figure
        >>> fig, (ax,) = new_figure()
        >>> plot_density(ax, np.zeros((3, 3)), (0, 1, 0, 1)).get_array().max()
        np.float64(1.0)
    """
    arr = grid_values(log_density)
    shown = arr if log_scale else np.exp(arr)
    return show_grid(ax, shown, extent, label=label, colorbar=colorbar, cmap=cmap)
