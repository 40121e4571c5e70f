"""Scalar fields on a 2-d latent grid: volume element, log-volume, decoder uncertainty."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Independent, Normal

from latentgeo.metrics import MetricLike, log_volume_element, volume_element
from latentgeo.models import EnsembleDecoder
from latentgeo.models.decoders import output_mean

__all__ = [
    "Extent",
    "bounds_around",
    "decoder_uncertainty",
    "evaluate_on_grid",
    "latent_grid",
    "log_volume_map",
    "uncertainty_map",
    "volume_map",
]

Extent = tuple[float, float, float, float]
"""``(xmin, xmax, ymin, ymax)`` of a 2-d latent window (matplotlib's ``extent``)."""


def bounds_around(z: Tensor, *, margin: float = 0.15) -> Extent:
    """A square-ish window around 2-d points, padded by ``margin`` of their range.

    Args:
        z: points of shape ``(N, 2)``.
        margin: padding as a fraction of the larger side.

    Returns:
        ``(xmin, xmax, ymin, ymax)``.

    Example:
        >>> bounds_around(torch.tensor([[0.0, 0.0], [1.0, 2.0]]), margin=0.5)
        (-1.0, 2.0, -1.0, 3.0)
    """
    if z.ndim != 2 or z.shape[-1] != 2:
        raise ValueError(f"z must have shape (N, 2), got {tuple(z.shape)}")
    lo, hi = z.detach().amin(0), z.detach().amax(0)
    pad = margin * float((hi - lo).max().clamp_min(1e-6))
    return (float(lo[0]) - pad, float(hi[0]) + pad, float(lo[1]) - pad, float(hi[1]) + pad)


def latent_grid(
    extent: Extent,
    resolution: int = 100,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """A regular grid over a 2-d window.

    Args:
        extent: ``(xmin, xmax, ymin, ymax)``.
        resolution: points per side.
        dtype: dtype of the grid.
        device: device of the grid.

    Returns:
        Tensor of shape ``(resolution, resolution, 2)``; ``grid[i, j]`` is the
        point in row ``i`` (y, increasing) and column ``j`` (x, increasing), as
        ``imshow(..., origin="lower")`` expects.

    Example:
        >>> latent_grid((0.0, 1.0, 0.0, 2.0), 3)[2, 1]
        tensor([0.5000, 2.0000])
    """
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    xmin, xmax, ymin, ymax = extent
    if not (xmax > xmin and ymax > ymin):
        raise ValueError(f"extent must be (xmin, xmax, ymin, ymax) with min < max, got {extent}")
    xs = torch.linspace(xmin, xmax, resolution, dtype=dtype, device=device)
    ys = torch.linspace(ymin, ymax, resolution, dtype=dtype, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)


def evaluate_on_grid(
    fn: Callable[[Tensor], Tensor], grid: Tensor, *, chunk_size: int = 4096
) -> Tensor:
    """``fn`` on every grid point, in chunks of at most ``chunk_size`` points.

    Args:
        fn: maps points ``(N, 2)`` to values ``(N,)``.
        grid: shape ``(R, C, 2)``.
        chunk_size: points per call (bounds memory).

    Returns:
        Detached tensor of shape ``(R, C)``.
    """
    flat = grid.reshape(-1, grid.shape[-1])
    parts = [fn(flat[i : i + chunk_size]).detach() for i in range(0, flat.shape[0], chunk_size)]
    return torch.cat(parts).reshape(grid.shape[:-1])


def volume_map(metric_or_decoder: MetricLike, grid: Tensor, *, chunk_size: int = 4096) -> Tensor:
    """The volume element ``sqrt(det G)`` on a grid ``(R, C, 2)`` -> ``(R, C)``."""
    return evaluate_on_grid(
        lambda z: volume_element(metric_or_decoder, z), grid, chunk_size=chunk_size
    )


def log_volume_map(
    metric_or_decoder: MetricLike, grid: Tensor, *, chunk_size: int = 4096
) -> Tensor:
    """``log sqrt(det G)`` on a grid ``(R, C, 2)`` -> ``(R, C)`` (more contrast than the volume)."""
    return evaluate_on_grid(
        lambda z: log_volume_element(metric_or_decoder, z), grid, chunk_size=chunk_size
    )


def _normal_scale(output: Any) -> Tensor | None:
    if isinstance(output, Independent):
        output = output.base_dist
    if isinstance(output, Normal):
        return output.scale
    return None


def decoder_uncertainty(decoder: Any, z: Tensor) -> Tensor:
    """How unsure a decoder is at ``z``: mean over outputs of a standard deviation.

    * an ensemble (:class:`~latentgeo.models.EnsembleDecoder`, a list, tuple or
      ``nn.ModuleList`` of decoders): the members' disagreement, the standard
      deviation over members of their mean outputs (Syrota et al., Fig. 2);
    * a Gaussian decoder (returns ``Normal`` / ``Independent(Normal)``, e.g. the
      RBF-precision decoder): its mean ``σ(z)``.

    Args:
        decoder: the decoder.
        z: points of shape ``(N, d)``.

    Returns:
        Tensor of shape ``(N,)`` (no gradient).

    Raises:
        TypeError: a deterministic decoder (it has no uncertainty).

    Example:
        >>> dec = lambda z: Normal(z, torch.full_like(z, 0.5))
        >>> decoder_uncertainty(dec, torch.zeros(3, 2))
        tensor([0.5000, 0.5000, 0.5000])
    """
    if z.ndim != 2:
        raise ValueError(f"z must have shape (N, d), got {tuple(z.shape)}")
    n = z.shape[0]
    with torch.no_grad():
        if isinstance(decoder, EnsembleDecoder):
            decoder = list(decoder.members)
        if isinstance(decoder, (list, tuple, nn.ModuleList)):
            means = torch.stack([output_mean(m(z)).reshape(n, -1) for m in decoder])
            return means.std(0, correction=0).mean(-1)
        scale = _normal_scale(decoder(z))
        if scale is None:
            raise TypeError(
                "decoder_uncertainty needs an ensemble of decoders or a decoder returning "
                "Normal / Independent(Normal); a deterministic decoder has no uncertainty"
            )
        return scale.expand(n, *scale.shape[1:]).reshape(n, -1).mean(-1)


def uncertainty_map(decoder: Any, grid: Tensor, *, chunk_size: int = 4096) -> Tensor:
    """:func:`decoder_uncertainty` on a grid ``(R, C, 2)`` -> ``(R, C)``."""
    return evaluate_on_grid(lambda z: decoder_uncertainty(decoder, z), grid, chunk_size=chunk_size)
