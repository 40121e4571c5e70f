"""Decoded interpolations: a curve decoded at evenly spaced arc length.

The papers' figures decode the straight line and the geodesic between two
codes at points equally spaced along the *curve* (in arc length under the
metric, so in decoded space for a pull-back), not at equal parameter steps: a
curve that dawdles in one place and rushes elsewhere would otherwise show
repeated and skipped images. :func:`decode_curve` reparametrises by arc
length (:func:`latentgeo.curves.constant_speed`) and decodes there;
:func:`straight_line` gives the line to compare with, and
:func:`latentgeo.viz.plot_interpolations` lays the rows out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor
from torch.distributions import Distribution

from latentgeo.curves import Curve, DiscreteCurve, constant_speed, curve_length
from latentgeo.metrics import MetricLike, as_metric
from latentgeo.models import EnsembleDecoder

__all__ = ["Interpolation", "decode_curve", "decoded_mean", "straight_line"]


@dataclass
class Interpolation:
    """B curves decoded at T points each.

    Attributes:
        latents: the latent points, ``(B, T, d)``.
        outputs: the decoded points, ``(B, T, ...)`` (e.g. ``(B, T, 784)`` for MNIST).
        times: the curve parameter of each point, ``(B, T)``.
        length: each curve's length under the metric, ``(B,)``.
    """

    latents: Tensor
    outputs: Tensor
    times: Tensor
    length: Tensor


def straight_line(z0: Tensor, z1: Tensor) -> DiscreteCurve:
    """The straight lines from ``z0`` to ``z1`` (``(B, d)`` each) as a curve module.

    Example:
        >>> import torch
        >>> straight_line(torch.zeros(1, 2), torch.ones(1, 2))(torch.tensor([0.25]))
        tensor([[[0.2500, 0.2500]]])
    """
    line = DiscreteCurve(z0, z1, num_points=2)
    line.requires_grad_(False)  # nothing to optimise: no vertex between the ends
    return line


def decoded_mean(decoder: Any, z: Tensor) -> Tensor:
    """What a decoder "shows" at ``z`` ``(N, d)``: its output, the mean of a returned
    distribution, or the members' mean output for an ensemble; ``(N, ...)``."""
    if isinstance(decoder, EnsembleDecoder):
        return torch.stack([decoded_mean(m, z) for m in decoder.members]).mean(0)
    out = decoder(z)
    if isinstance(out, Distribution):
        out = out.mean
    if not isinstance(out, Tensor):
        raise TypeError(
            "decoder must return a Tensor or a torch.distributions object, "
            f"got {type(out).__name__}"
        )
    return out


def decode_curve(
    decoder: Any,
    curve: Curve,
    num_points: int = 10,
    *,
    metric: MetricLike | None = None,
    spacing: Literal["arc_length", "time"] = "arc_length",
    decode: Callable[[Tensor], Tensor] | None = None,
    min_pieces: int = 32,
) -> Interpolation:
    """Decode B curves at ``num_points`` points evenly spaced in arc length (or in time).

    Args:
        decoder: the decoder (a module or callable; for distributions the mean is shown).
        curve: the curves, e.g. ``connecting_geodesic(...).curve`` or :func:`straight_line`.
        num_points: T, including both ends.
        metric: the metric measuring arc length (default ``as_metric(decoder)``).
        spacing: ``"arc_length"`` (equal lengths between consecutive points) or
            ``"time"`` (equal steps of the curve's parameter).
        decode: how to decode latents ``(N, d)``; default :func:`decoded_mean`.
        min_pieces: pieces of the arc-length table (accuracy of the spacing).

    Returns:
        An :class:`Interpolation`.

    Example:
        >>> import torch
        >>> from latentgeo.testing import StereographicSphere
        >>> sphere = StereographicSphere()
        >>> z0, z1 = torch.tensor([[-2.0, 0.0]]).double(), torch.tensor([[0.5, 0.0]]).double()
        >>> out = decode_curve(sphere, straight_line(z0, z1), 5).outputs  # points on the sphere
        >>> steps = (out[0, 1:] - out[0, :-1]).norm(dim=-1)  # equal chords: equal arcs
        >>> bool((steps / steps.mean() - 1).abs().max() < 1e-4)
        True
    """
    if not isinstance(num_points, int) or num_points < 2:
        raise ValueError(f"num_points must be an int >= 2, got {num_points!r}")
    if spacing not in ("arc_length", "time"):
        raise ValueError(f"spacing must be 'arc_length' or 'time', got {spacing!r}")
    m = as_metric(decoder if metric is None else metric)
    dtype, device = curve.z0.dtype, curve.z0.device
    t = torch.linspace(0.0, 1.0, num_points, dtype=dtype, device=device)
    with torch.no_grad():
        length = curve_length(m, curve).detach()
        if spacing == "arc_length":
            even = constant_speed(m, curve, min_pieces=min_pieces)
            times = even.time_map(t.expand(curve.num_curves, -1))[0]
            latents = even(t)
        else:
            times = t.expand(curve.num_curves, -1)
            latents = curve(t)
        b, n, d = latents.shape
        flat = (decode or (lambda z: decoded_mean(decoder, z)))(latents.reshape(-1, d))
    return Interpolation(latents, flat.reshape(b, n, *flat.shape[1:]), times, length)
