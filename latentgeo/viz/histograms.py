"""Histograms of the seed papers: CVs of geodesic distances and relative improvements."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from latentgeo.viz.latent import new_figure

__all__ = ["plot_cv_histograms", "plot_relative_improvement"]


def _np1(x: Tensor | np.ndarray, name: str) -> np.ndarray:
    arr = x.detach().to("cpu", torch.float64).numpy() if isinstance(x, Tensor) else np.asarray(x)
    arr = np.asarray(arr, dtype=float).reshape(-1)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise ValueError(f"{name} holds no finite values")
    return arr


def plot_cv_histograms(
    cv_ensemble: Tensor | np.ndarray,
    cv_rbf: Tensor | np.ndarray,
    *,
    bins: int = 20,
    title: str | None = "CV of geodesic distances over retrainings",
    ax: Axes | None = None,
    labels: tuple[str, str] = ("ensemble", "RBF"),
    note: str | None = None,
) -> Figure:
    """Densities of per-pair coefficients of variation, ensemble vs RBF (Syrota et al., Fig. 5).

    Args:
        cv_ensemble: per-pair CVs of the ensemble-decoder VAEs, shape ``(P,)``.
        cv_rbf: per-pair CVs of the RBF-precision VAEs, shape ``(P,)``.
        bins: histogram bins (shared by both).
        title: axes title.
        ax: draw here instead of on a new figure.
        labels: legend names of the two families.
        note: a line of evidence under the axes (converged counts, budget, seed...).

    Returns:
        The figure.

    Example:
        >>> fig = plot_cv_histograms(np.array([0.05, 0.06, 0.07]), np.array([0.1, 0.3, 0.2]))
    """
    ens, rbf = _np1(cv_ensemble, "cv_ensemble"), _np1(cv_rbf, "cv_rbf")
    fig, ax = _figure(ax)
    lo, hi = min(ens.min(), rbf.min()), max(ens.max(), rbf.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-3, bins + 1).tolist()
    ax.hist(
        ens,
        bins=edges,
        density=True,
        alpha=0.6,
        color="tab:blue",
        label=f"{labels[0]} (median {np.median(ens):.3f})",
    )
    ax.hist(
        rbf,
        bins=edges,
        density=True,
        alpha=0.6,
        color="tab:orange",
        label=f"{labels[1]} (median {np.median(rbf):.3f})",
    )
    _finish(ax, "coefficient of variation of the geodesic distance", "density", title, note)
    return fig


def _figure(ax: Axes | None) -> tuple[Figure, Axes]:
    """A new 6 × 4 in figure and its axes, or ``ax`` and its figure."""
    if ax is None:
        fig, (ax,) = new_figure(1, size=(6.0, 4.0))
        return fig, ax
    return ax.figure, ax  # type: ignore[return-value]


def _finish(ax: Axes, xlabel: str, ylabel: str, title: str | None, note: str | None) -> None:
    """Axis labels, legend, title, and a note under the axes: the evidence a figure carries."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    if title:
        ax.set_title(title)
    if note:
        ax.annotate(
            note,
            xy=(0.0, -0.2),
            xycoords="axes fraction",
            fontsize=7,
            va="top",
            ha="left",
            wrap=True,
        )


def plot_relative_improvement(
    relative_improvement: Tensor | np.ndarray,
    *,
    bins: int = 30,
    percent: bool = True,
    title: str | None = "Geodesic vs straight line",
    ax: Axes | None = None,
    note: str | None = None,
) -> Figure:
    """Histogram of relative improvements ``(L_line − L_geodesic) / L_line`` (Michelis et al.).

    Args:
        relative_improvement: values (mostly in ``[0, 1)``; an independent score may
            give negative ones), shape ``(P,)``.
        bins: histogram bins.
        percent: show percentages.
        title: axes title.
        ax: draw here instead of on a new figure.
        note: a line of evidence under the axes (converged counts, budget, seed...).

    Returns:
        The figure.

    Example:
        >>> fig = plot_relative_improvement(np.array([0.02, 0.03, 0.05]))
    """
    rel = _np1(relative_improvement, "relative_improvement")
    scale = 100.0 if percent else 1.0
    fig, ax = _figure(ax)
    ax.hist(rel * scale, bins=bins, color="tab:green", alpha=0.8)
    mean = rel.mean() * scale
    ax.axvline(mean, color="k", linestyle="--", label=f"mean {mean:.2f}{' %' if percent else ''}")
    _finish(ax, "relative improvement" + (" (%)" if percent else ""), "pairs", title, note)
    return fig
