"""Scalar fields on a latent grid drawn as images, one way: row 0 at the bottom,
stretched over the grid's extent, non-finite values blank, an optional colour bar."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.image import AxesImage
from torch import Tensor

from latentgeo.viz.curves import _np
from latentgeo.viz.fields import Extent

__all__ = ["grid_values", "show_grid"]


def grid_values(values: Tensor | np.ndarray) -> np.ndarray:
    """``values`` as a float64 ``(R, C)`` array, NaN (shown blank) where not finite.

    Raises:
        ValueError: ``values`` is not two-dimensional.

    Example:
        >>> grid_values(np.array([[1.0, np.inf]])).tolist()
        [[1.0, nan]]
    """
    arr = _np(values)
    if arr.ndim != 2:
        raise ValueError(f"values must have shape (R, C), got {arr.shape}")
    return np.where(np.isfinite(arr), arr, np.nan)


def show_grid(
    ax: Axes,
    arr: np.ndarray,
    extent: Extent,
    *,
    label: str | None,
    colorbar: bool,
    extend: str | None = None,
    **style: Any,
) -> AxesImage:
    """Draw ``arr (R, C)`` (row ``i`` at the ``i``-th y) over ``extent``, with its colour bar.

    Args:
        ax: where to draw.
        arr: the values, as :func:`grid_values` gives them.
        extent: ``(xmin, xmax, ymin, ymax)``; the axes are limited to it.
        label: colour-bar label (``None``: none).
        colorbar: draw a colour bar.
        extend: the colour bar's arrows at clipped ends (``None``: the colour map's own).
        **style: ``imshow`` keywords (``cmap``, ``norm``, ``vmin``, ``vmax``).

    Returns:
        The image.
    """
    image = ax.imshow(arr, extent=extent, origin="lower", aspect="auto", **style)
    if colorbar and ax.figure is not None:
        arrows: dict[str, Any] = {} if extend is None else {"extend": extend}
        bar = ax.figure.colorbar(image, ax=ax, shrink=0.85, **arrows)
        if label:
            bar.set_label(label)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    return image
