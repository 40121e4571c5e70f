"""Curves in a 2-d latent space: sampled curves, solver output (converged solid, the
others dashed and counted) and straight segments."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from torch import Tensor

__all__ = ["plot_curves", "plot_solved_curves", "plot_straight_lines"]


def _np(x: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=float)


def plot_curves(
    ax: Axes,
    curves: Tensor | np.ndarray,
    *,
    color: str = "tab:red",
    linewidth: float = 1.6,
    alpha: float = 0.95,
    label: str | None = None,
    endpoints: bool = True,
    linestyle: str = "-",
) -> LineCollection:
    """Curves sampled at T times, shape ``(B, T, 2)`` (or one curve ``(T, 2)``).

    Returns:
        The line collection (one line per curve).
    """
    arr = _np(curves)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != 2:
        raise ValueError(f"curves must have shape (B, T, 2), got {arr.shape}")
    lines = LineCollection(
        list(arr),
        colors=color,
        linewidths=linewidth,
        alpha=alpha,
        label=label,
        zorder=3,
        linestyles=linestyle,
    )
    ax.add_collection(lines)
    if endpoints and arr.shape[0] > 0:
        ends = np.concatenate([arr[:, 0], arr[:, -1]])
        ax.scatter(ends[:, 0], ends[:, 1], s=14, c=color, edgecolors="k", linewidths=0.5, zorder=4)
    return lines


def plot_solved_curves(
    ax: Axes,
    curves: Tensor | np.ndarray,
    converged: Tensor | np.ndarray,
    *,
    color: str = "tab:red",
    what: str = "geodesic",
) -> None:
    """Solver output ``(B, T, 2)``: converged curves solid, the others dashed, both counted.

    The legend says ``"geodesic: k/B converged"`` and, if any did not,
    ``"not converged (dashed): B − k"``.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> plot_solved_curves(ax, np.zeros((3, 5, 2)), np.array([True, False, True]))
        >>> for t in ax.get_legend().get_texts():
        ...     print(t.get_text())
        geodesic: 2/3 converged
        not converged (dashed): 1
        >>> plt.close(fig)
    """
    arr = _np(curves)
    ok = _np(converged).astype(bool).reshape(-1)
    if arr.ndim != 3 or ok.shape[0] != arr.shape[0]:
        raise ValueError(
            f"curves must have shape (B, T, 2) and converged (B,), got {arr.shape} and {ok.shape}"
        )
    n, k = ok.size, int(ok.sum())
    plot_curves(ax, arr[ok], color=color, label=f"{what}: {k}/{n} converged")
    if k < n:
        plot_curves(
            ax, arr[~ok], color=color, linestyle="--", label=f"not converged (dashed): {n - k}"
        )
    ax.legend(loc="upper right", fontsize="small", framealpha=0.7)


def plot_straight_lines(
    ax: Axes,
    z0: Tensor | np.ndarray,
    z1: Tensor | np.ndarray,
    *,
    color: str = "white",
    linewidth: float = 1.0,
    linestyle: str = "--",
    label: str | None = "straight line",
) -> LineCollection:
    """Straight segments from ``z0`` to ``z1``, both ``(B, 2)``."""
    a, b = _np(z0), _np(z1)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"z0 and z1 must both have shape (B, 2), got {a.shape} and {b.shape}")
    lines = LineCollection(
        list(np.stack([a, b], axis=1)),
        colors=color,
        linewidths=linewidth,
        linestyles=linestyle,
        label=label,
        zorder=3,
    )
    ax.add_collection(lines)
    return lines
