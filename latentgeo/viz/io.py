"""Saving figures atomically."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from latentgeo._atomic import atomic_path

__all__ = ["save_figure"]


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Save ``fig`` to ``path`` atomically (temporary file in the same folder, then ``os.replace``).

    The format follows the suffix (``.png``, ``.pdf``, ``.svg``). A failure
    leaves any earlier file at ``path`` untouched.

    Args:
        fig: the figure.
        path: destination; parent folders are created.
        dpi: resolution of raster formats.

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> from latentgeo.viz import new_figure
        >>> fig, (ax,) = new_figure()
        >>> _ = ax.plot([0, 1], [0, 1])
        >>> save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "line.png").exists()
        True
    """
    final = Path(path)
    fmt = final.suffix.lstrip(".").lower() or "png"
    with atomic_path(final) as tmp:
        fig.savefig(tmp, dpi=dpi, format=fmt)
    return final
