"""Latent-space pictures: a background field, data points and indicatrices (curves in
:mod:`latentgeo.viz.curves`).

Every function draws on a matplotlib ``Axes`` and returns what it drew, so
pictures compose::

    fig, ax = new_figure()
    plot_background(ax, log_volume_map(metric, grid), extent, label="log volume")
    plot_points(ax, codes, labels)
    plot_curves(ax, result.curve(torch.linspace(0, 1, 64)))
    save_figure(fig, "latent.png")

Nothing here calls ``pyplot``: figures are plain ``matplotlib.figure.Figure``
objects rendered by the Agg backend, safe on headless machines and in tests.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from torch import Tensor

from latentgeo.metrics import MetricLike, as_metric
from latentgeo.viz.curves import _np, plot_curves, plot_solved_curves, plot_straight_lines
from latentgeo.viz.fields import (
    Extent,
    bounds_around,
    latent_grid,
    log_volume_map,
    uncertainty_map,
    volume_map,
)
from latentgeo.viz.images import grid_values, show_grid

__all__ = [
    "indicatrix_points",
    "new_figure",
    "plot_background",
    "plot_indicatrices",
    "plot_latent_space",
    "plot_points",
]


def new_figure(
    ncols: int = 1, *, size: tuple[float, float] = (5.0, 4.5)
) -> tuple[Figure, list[Axes]]:
    """A figure with ``ncols`` axes side by side (no pyplot state).

    Returns:
        ``(figure, axes)``; ``axes`` is a list of length ``ncols``.

    Example:
        >>> fig, axes = new_figure(2)
        >>> len(axes)
        2
    """
    fig = Figure(figsize=(size[0] * ncols, size[1]), layout="constrained")
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def plot_background(
    ax: Axes,
    values: Tensor | np.ndarray,
    extent: Extent,
    *,
    cmap: str = "viridis",
    label: str | None = None,
    colorbar: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
) -> AxesImage:
    """A scalar field on a latent grid as an image.

    Colours span ``[vmin, vmax]`` (default: the field's range). Where the field
    goes beyond them the colour bar says so: an arrow at the clipped end and
    ``(clipped at ...)`` in its label; a clipped field is never shown silently.

    Args:
        ax: where to draw.
        values: shape ``(R, C)``, row ``i`` at the ``i``-th y (as :func:`latent_grid`).
        extent: ``(xmin, xmax, ymin, ymax)`` of the grid.
        cmap: matplotlib colour map.
        label: colour-bar label.
        colorbar: draw a colour bar.
        vmin: value of the lowest colour (``None``: the field's minimum).
        vmax: value of the highest colour (``None``: the field's maximum).

    Returns:
        The image.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> values = np.arange(4.0).reshape(2, 2)
        >>> im = plot_background(ax, values, (0, 1, 0, 1), label="u", vmax=2.0)
        >>> fig.axes[-1].get_ylabel()
        'u (clipped above 2)'
        >>> plt.close(fig)
    """
    arr = grid_values(values)
    finite = arr[np.isfinite(arr)]
    low = vmin is not None and finite.size > 0 and bool((finite < vmin).any())
    high = vmax is not None and finite.size > 0 and bool((finite > vmax).any())
    extend = {(False, False): "neither", (True, False): "min", (False, True): "max"}.get(
        (low, high), "both"
    )
    clipped = [f"below {vmin:.3g}"] if low else []
    clipped += [f"above {vmax:.3g}"] if high else []
    text = f"{label or ''} (clipped {' and '.join(clipped)})".strip() if clipped else label
    return show_grid(
        ax, arr, extent, label=text, colorbar=colorbar, extend=extend,
        cmap=cmap, vmin=vmin, vmax=vmax,
    )  # fmt: skip


def plot_points(
    ax: Axes,
    z: Tensor | np.ndarray,
    labels: Tensor | np.ndarray | None = None,
    *,
    size: float = 6.0,
    alpha: float = 0.7,
    cmap: str = "tab10",
    legend: bool = True,
) -> Any:
    """Latent codes ``(N, 2)``, coloured by ``labels`` ``(N,)`` when given."""
    pts = _np(z)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"z must have shape (N, 2), got {pts.shape}")
    if labels is None:
        return ax.scatter(
            pts[:, 0],
            pts[:, 1],
            s=size,
            c="white",
            edgecolors="k",
            linewidths=0.2,
            alpha=alpha,
            zorder=2,
        )
    lab = _np(labels).reshape(-1)
    if lab.shape[0] != pts.shape[0]:
        raise ValueError(f"labels must have shape ({pts.shape[0]},), got {lab.shape}")
    classes = np.unique(lab)
    cm = mpl.colormaps[cmap]
    handles = []
    for i, c in enumerate(classes):
        sel = lab == c
        handles.append(
            ax.scatter(
                pts[sel, 0],
                pts[sel, 1],
                s=size,
                color=cm(i % cm.N),
                alpha=alpha,
                edgecolors="none",
                label=_label_text(c),
                zorder=2,
            )
        )
    if legend and 1 < len(classes) <= 12:
        ax.legend(loc="upper right", fontsize="small", markerscale=2.0, framealpha=0.7)
    return handles


def _label_text(c: Any) -> str:
    f = float(c)
    return str(int(f)) if f.is_integer() else f"{f:g}"


def indicatrix_points(g: Tensor, radius: float = 1.0, *, num: int = 64) -> Tensor:
    """Points on the indicatrices ``{v : vᵀ G v = r²}`` of metric tensors.

    With ``G = U Λ Uᵀ`` the ellipse is ``v(θ) = r U Λ^{-1/2} (cos θ, sin θ)``.

    Args:
        g: metric tensors of shape ``(N, 2, 2)``.
        radius: ``r``.
        num: points per ellipse.

    Returns:
        Tangent vectors of shape ``(N, num, 2)``; singular directions get infinite length.

    Example:
        >>> v = indicatrix_points(torch.diag(torch.tensor([4.0, 1.0]))[None], num=4)
        >>> torch.einsum("nti,ij,ntj->nt", v, torch.diag(torch.tensor([4.0, 1.0])), v).round()
        tensor([[1., 1., 1., 1.]])
    """
    if g.ndim != 3 or g.shape[-2:] != (2, 2):
        raise ValueError(f"g must have shape (N, 2, 2), got {tuple(g.shape)}")
    vals, vecs = torch.linalg.eigh(0.5 * (g + g.mT))
    theta = torch.linspace(0.0, 2.0 * math.pi, num, dtype=g.dtype, device=g.device)
    circle = torch.stack([theta.cos(), theta.sin()], dim=-1)  # (num, 2)
    scaled = circle[None] * vals.clamp_min(0.0).rsqrt()[:, None, :]  # (N, num, 2)
    return radius * scaled @ vecs.mT


def plot_indicatrices(
    ax: Axes,
    metric_or_decoder: MetricLike,
    centres: Tensor,
    *,
    radius: float | None = None,
    color: str = "white",
    linewidth: float = 0.8,
) -> LineCollection:
    """Indicatrices (unit balls of the metric) at ``centres`` ``(N, 2)``.

    Args:
        ax: where to draw.
        metric_or_decoder: the metric.
        centres: points of shape ``(N, 2)``.
        radius: ``r`` in ``vᵀ G v = r²``; ``None`` picks one so that the median
            ellipse's longest semi-axis is 40 % of the typical spacing of the centres
            (sizes stay comparable between ellipses: small ellipses = expensive regions).
        color: line colour.
        linewidth: line width.

    Returns:
        The line collection of ellipses.
    """
    g = as_metric(metric_or_decoder).metric_tensor(centres).detach()
    unit = indicatrix_points(g, 1.0)
    if radius is None:
        semi = unit.norm(dim=-1).amax(-1)
        semi = semi[torch.isfinite(semi)]
        span = (centres.amax(0) - centres.amin(0)).max().clamp_min(1e-6)
        spacing = float(span) / max(math.sqrt(centres.shape[0]), 1.0)
        radius = 0.4 * spacing / float(semi.median()) if semi.numel() else 1.0
    pts = centres.detach()[:, None, :] + radius * unit
    arr = _np(pts)
    arr = np.where(np.isfinite(arr), arr, np.nan)
    lines = LineCollection(list(arr), colors=color, linewidths=linewidth, zorder=3)
    ax.add_collection(lines)
    return lines


def plot_latent_space(
    *,
    decoder: Any | None = None,
    metric: MetricLike | None = None,
    background: str | None = "log_volume",
    codes: Tensor | None = None,
    labels: Tensor | None = None,
    curves: Tensor | None = None,
    straight: tuple[Tensor, Tensor] | None = None,
    indicatrix_centres: Tensor | None = None,
    extent: Extent | None = None,
    resolution: int = 80,
    title: str | None = None,
    ax: Axes | None = None,
    converged: Tensor | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """One picture of a 2-d latent space: background, codes, curves, straight lines.

    Args:
        decoder: the decoder (needed for ``background="uncertainty"``; its metric
            is used when ``metric`` is not given).
        metric: the metric for ``"volume"`` / ``"log_volume"`` and indicatrices.
        background: ``"volume"``, ``"log_volume"``, ``"uncertainty"`` or ``None``.
        codes: latent codes ``(N, 2)`` to scatter.
        labels: their labels ``(N,)``.
        curves: curves ``(B, T, 2)`` (e.g. geodesics).
        straight: ``(z0, z1)``, each ``(B, 2)``: straight lines to compare with.
        indicatrix_centres: ``(M, 2)`` points where to draw indicatrices.
        extent: the window; by default around the codes, curves and end points.
        resolution: grid points per side of the background.
        title: axes title.
        ax: draw here instead of on a new figure.
        converged: ``(B,)`` bool, the solver's verdict per curve: converged curves
            are drawn solid, the others dashed, both counted in the legend
            (:func:`plot_solved_curves`).
        vmin: lowest colour of the background (``None``: its minimum).
        vmax: highest colour of the background; the colour bar says when it clips.

    Returns:
        The figure.

    Example:
        >>> fig = plot_latent_space(metric=lambda z: 2 * z, background="volume",
        ...                         codes=torch.randn(20, 2), resolution=8)
        >>> len(fig.axes)  # the picture and its colour bar
        2
    """
    if ax is None:
        fig, (ax,) = new_figure(1)
    else:
        fig = ax.figure  # type: ignore[assignment]
    geometry = metric if metric is not None else decoder
    if extent is None:
        parts = [t.detach().reshape(-1, 2) for t in (codes, curves) if t is not None]
        if straight is not None:
            parts += [straight[0].detach(), straight[1].detach()]
        if indicatrix_centres is not None:
            parts.append(indicatrix_centres.detach())
        if not parts:
            raise ValueError("give extent, or something to plot (codes, curves or straight)")
        extent = bounds_around(torch.cat([p.to("cpu", torch.float64) for p in parts]))
    if background is not None:
        ref = codes if codes is not None else curves
        dtype = ref.dtype if ref is not None else torch.float32
        device = ref.device if ref is not None else None
        grid = latent_grid(extent, resolution, dtype=dtype, device=device)
        if background == "uncertainty":
            if decoder is None:
                raise ValueError('background="uncertainty" needs the decoder')
            values, label, cmap = uncertainty_map(decoder, grid), "decoder uncertainty", "magma"
        elif background in ("volume", "log_volume"):
            if geometry is None:
                raise ValueError(f"background={background!r} needs a metric or a decoder")
            fn = volume_map if background == "volume" else log_volume_map
            label = "volume element" if background == "volume" else "log volume element"
            values, cmap = fn(geometry, grid), "viridis"
        else:
            raise ValueError(
                "background must be 'volume', 'log_volume', 'uncertainty' or None, "
                f"got {background!r}"
            )
        plot_background(ax, values, extent, cmap=cmap, label=label, vmin=vmin, vmax=vmax)
    if codes is not None:
        plot_points(ax, codes, labels)
    if straight is not None:  # a colour that shows on dark and light backgrounds alike
        plot_straight_lines(ax, straight[0], straight[1], color="deepskyblue")
    if curves is not None and converged is not None:
        plot_solved_curves(ax, curves, converged)
    elif curves is not None:
        plot_curves(ax, curves, label="geodesic")
    if indicatrix_centres is not None:
        if geometry is None:
            raise ValueError("indicatrices need a metric or a decoder")
        plot_indicatrices(ax, geometry, indicatrix_centres)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return fig
