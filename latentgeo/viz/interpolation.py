"""Decoded interpolations laid out in rows (straight line vs geodesic), as in the papers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

__all__ = ["plot_interpolations"]


def _rows(rows: Tensor | Sequence[Tensor]) -> list[np.ndarray]:
    items = list(rows) if not isinstance(rows, Tensor) or rows.ndim >= 3 else [rows]
    if not items:
        raise ValueError("rows must hold at least one row")
    out = [r.detach().to("cpu", torch.float64).numpy() for r in items]
    t = out[0].shape[0]
    if any(r.shape[0] != t or r.ndim < 2 for r in out):
        raise ValueError("every row must have shape (T, ...) with the same T")
    return [r.reshape(t, -1) for r in out]


def _image_shape(m: int, image_shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if image_shape is not None:
        if math.prod(image_shape) != m:
            raise ValueError(f"image_shape {image_shape} does not hold {m} values")
        return image_shape
    side = math.isqrt(m)
    return (side, side) if m > 3 and side * side == m else None


def plot_interpolations(
    rows: Tensor | Sequence[Tensor],
    *,
    labels: Sequence[str] | None = None,
    image_shape: tuple[int, ...] | None = None,
    cmap: str = "gray",
    size: float = 1.0,
    title: str | None = None,
) -> Figure:
    """Decoded interpolations, one row per curve (e.g. straight line, then geodesic).

    * Images (outputs of ``H·W`` values, a square number, or ``image_shape``
      given): a grid of R rows by T columns, labels on the left.
    * 2-d or 3-d outputs: one panel drawing each row as a line through its
      decoded points (a 3-d axis for 3-d outputs), start and end marked.

    Args:
        rows: R rows of T decoded points: a tensor ``(R, T, ...)`` or a sequence of
            ``(T, ...)`` tensors (e.g. ``decode_curve(...).outputs[i]``).
        labels: one label per row ("straight line", "geodesic").
        image_shape: ``(H, W)`` or ``(H, W, 3)`` of an image output.
        cmap: colour map for single-channel images.
        size: inches per image.
        title: figure title.

    Returns:
        The figure (save it with :func:`latentgeo.viz.save_figure`).

    Example:
        >>> import torch
        >>> fig = plot_interpolations(torch.rand(2, 5, 784), labels=["line", "geodesic"])
        >>> len(fig.axes)
        10
    """
    data = _rows(rows)
    r, t, m = len(data), data[0].shape[0], data[0].shape[1]
    if labels is not None and len(labels) != r:
        raise ValueError(f"labels must have one entry per row ({r}), got {len(labels)}")
    shape = _image_shape(m, image_shape)
    if shape is None and m not in (2, 3):
        raise ValueError(f"outputs of {m} values are neither images nor 2-d/3-d points; "
                         "pass image_shape=(H, W)")  # fmt: skip
    if shape is None:
        fig = Figure(figsize=(5.0, 4.5), layout="constrained")
        ax = fig.add_subplot(1, 1, 1, projection="3d" if m == 3 else None)
        for i, row in enumerate(data):
            name = labels[i] if labels is not None else f"row {i}"
            line = ax.plot(*row.T, "-o", markersize=3, label=name)[0]
            ax.plot(*row[[0, -1]].T, "s", color=line.get_color(), markersize=7)
        ax.legend()
    else:
        fig = Figure(figsize=(size * t + (1.2 if labels else 0.2), size * r + 0.4),
                     layout="constrained")  # fmt: skip
        axes = fig.subplots(r, t, squeeze=False)
        for i, row in enumerate(data):
            for j in range(t):
                ax = axes[i][j]
                ax.imshow(row[j].reshape(shape), cmap=cmap if len(shape) == 2 else None)
                ax.set_xticks([])
                ax.set_yticks([])
            if labels is not None:
                axes[i][0].set_ylabel(labels[i], rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    return fig
